"""The closed primal-dual solver, Cooper's ``roll()`` for users who hand over the forward pass.

``step`` does one forward pass with ``jax.vjp``, the dual step of every group
(:mod:`feasjax.core.dual_step`) and the primal step on ``objective + Σ_groups
reduce(primal_term(λ, g))`` through the same ``vjp``. A step with non-finite values or
out-of-range indices is skipped at O(B) cost. Under ``jax.jit``, donate the state.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.experimental import checkify

from feasjax.core import checks, defaults, dual_step
from feasjax.core.problem import ConstraintGroup, ConstraintValue, ProblemOutput
from feasjax.core.transform import check_scheme, primal_step
from feasjax.core.weighting import weighted_sum

__all__ = ["PrimalDual", "PrimalDualState", "StepInfo", "primal_dual"]


class PrimalDualState(NamedTuple):
    """Everything a primal-dual run carries from step to step."""

    params: Any  # model parameters (pytree)
    primal_state: Any  # primal optimizer state
    multipliers: dict  # name -> (size,) multipliers
    dual_states: dict  # name -> dual optimizer state (IndexedState for indexed groups)
    formulation_states: dict  # name -> formulation state (e.g. the penalty ρ)
    step: jax.Array  # shape=(), int32: steps taken (skipped ones included)
    skipped: jax.Array  # shape=(), int32: steps skipped for non-finite values or bad indices
    model_state: Any = ()  # non-parameter model state (batch statistics, RNG), or ()

    @property
    def inner_state(self) -> Any:
        """``primal_state``, named as :class:`feasjax.ConstrainedState` and optax's wrappers do."""
        return self.primal_state

    @property
    def count(self) -> jax.Array:
        """Steps taken, as :class:`feasjax.ConstrainedState` and optax name it (``step``)."""
        return self.step


class StepInfo(NamedTuple):
    """What one step reports (stacked over steps by ``lax.scan``)."""

    objective: jax.Array  # shape=(), objective on the batch before the step
    measurements: dict  # name -> violations used by the dual step
    aux: Any  # the problem's aux output (e.g. per-sample losses)
    ok: jax.Array  # shape=(), bool: the step was applied
    finite: jax.Array  # shape=(), bool: losses, violations and gradients were finite
    indices_valid: jax.Array  # shape=(), bool: every index was in range


class PrimalDual(NamedTuple):
    """A pair of pure functions, like an optax ``GradientTransformation``."""

    init: Callable[..., PrimalDualState]
    step: Callable[..., tuple[PrimalDualState, StepInfo]]
    checked: bool = False  # the step emits checkify checks (fj.train then runs it checkified)


def primal_dual(
    problem_fn: Callable[..., Any],
    primal_optimizer: optax.GradientTransformation,
    constraints: dict[str, ConstraintGroup] | None = None,
    *,
    scheme: str = defaults.SCHEME,
    axis_name: str | None = None,
    checked: bool = False,
    on_nonfinite: str = "skip",
    stateful: bool | None = None,
) -> PrimalDual:
    """Build a primal-dual solver for ``min_θ f(θ)`` s.t. the constraint groups hold.

    Args:
      problem_fn: ``(params, batch) -> ProblemOutput``; indexed groups return ``(B,)``
        violations for the batch's indices, dense groups ``(size,)``. With a model state
        (``init(params, model_state=...)`` with leaves): ``(params, batch, model_state) ->
        (ProblemOutput, new_model_state)``.
      primal_optimizer: any optax optimizer for the parameters.
      constraints: name -> :class:`ConstraintGroup`; empty or ``None`` gives plain ERM.
      scheme: ``"simultaneous"`` (default), ``"dual_then_primal"`` or ``"primal_then_dual"``.
      axis_name: inside ``jax.shard_map(..., check_vma=False)`` or ``jax.pmap``, the data axis:
        gradients (and dense measurements) are averaged over it in one all-reduce that also
        carries the skip decision; indexed multipliers stay local to their shard.
      checked: (deprecated) also emit ``checkify`` checks.
      on_nonfinite: (deprecated) ``"raise"`` raises ``ValueError`` naming the non-finite samples
        when called eagerly; use ``fj.train(..., on_nonfinite="raise")``. A step with
        non-finite values is always skipped and counted.
      stateful: (deprecated) the state is threaded whenever ``init`` is given one.

    Returns:
      A :class:`PrimalDual` with ``init(params, multipliers=None, model_state=())`` and
      ``step(state, batch, indices=None, *, unique_indices=False, padded=False)``: ``indices``
      (one int array, or a dict by indexed group); ``unique_indices=True`` promises no repeated
      index (skips an O(B log B) combine); ``padded=True`` accepts per-sample multipliers with
      more rows than ``num_samples`` (the padding :func:`feasjax.train` adds on a mesh).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import primal_dual, ConstraintGroup, ConstraintValue
      >>> from feasjax import ProblemOutput
      >>> def problem(x, batch):  # min ||x||^2  s.t.  x_0 + x_1 = 1
      ...     eq = ConstraintValue(x[:1] + x[1:] - 1)
      ...     return ProblemOutput(jnp.sum(x**2), {"eq": eq})
      >>> groups = {"eq": ConstraintGroup(size=1, kind="equality")}
      >>> solver = primal_dual(problem, optax.sgd(0.1), groups)
      >>> state, step = solver.init(jnp.zeros(2)), jax.jit(solver.step)
      >>> for _ in range(1000):
      ...     state, info = step(state, None)
      >>> lam = state.multipliers["eq"][0]
      >>> [round(float(v), 3) for v in state.params], round(float(lam), 3)
      ([0.5, 0.5], -1.0)
    """
    groups = dict(constraints or {})
    if on_nonfinite not in ("skip", "raise"):
        raise ValueError(f"on_nonfinite must be 'skip' or 'raise', got {on_nonfinite=}")
    if stateful is not None:
        warnings.warn("stateful= is deprecated and will be removed in 0.3: the solver threads "
                      "the model state whenever init is given one (init(params, "
                      "model_state=...))", DeprecationWarning, stacklevel=3)
    if checked or on_nonfinite == "raise":  # one policy: the step skips, the engine raises
        warnings.warn("checked=True and on_nonfinite='raise' of the solver are deprecated and "
                      "will be removed in 0.3: the step always skips and counts a bad step; "
                      "pass on_nonfinite='raise' to fj.train to stop on one, naming the step "
                      "and its samples", DeprecationWarning, stacklevel=3)
    check_scheme(scheme)
    for name, group in groups.items():
        group.validate(name)
        if group.implicit:  # its step would need the batch's features: no argument for them
            raise ValueError(f"constraint group {name!r}: implicit multipliers plug into "
                             f"fj.constrained / fj.feasible (update(..., features=)), not "
                             f"fj.primal_dual")
    primal = optax.with_extra_args_support(primal_optimizer)

    def init(params: Any, multipliers: dict | None = None, model_state: Any = ()
             ) -> PrimalDualState:
        if stateful and not jax.tree.leaves(model_state):
            raise ValueError("a stateful solver needs init(params, model_state=...): the "
                             "non-parameter state of the model (batch statistics, RNG)")
        lam, dual, form = dual_step.init_parts(groups, multipliers)
        return PrimalDualState(params, primal.init(params), lam, dual, form,
                               dual_step.zero_count(), dual_step.zero_count(), model_state)

    def evaluate(params, batch, model_state):
        """``((objective, values), vjp_fn, (measured, aux, new_model_state))`` at ``params``."""
        def split(p):
            with_state = bool(stateful) or bool(jax.tree.leaves(model_state))
            out = problem_fn(p, batch, model_state) if with_state else problem_fn(p, batch)
            out, new_model_state = out if with_state else (out, model_state)
            if not isinstance(out, ProblemOutput):
                raise TypeError(f"problem_fn must return a ProblemOutput, got {type(out)}")
            if set(out.constraints) != set(groups):
                raise ValueError(f"problem_fn returned constraint groups "
                                 f"{sorted(out.constraints)}, expected {sorted(groups)}")
            values = {k: _violation(c) for k, c in out.constraints.items()}
            measured = jax.lax.stop_gradient({k: values[k] if c.measurement is None
                                              else c.measurement
                                              for k, c in out.constraints.items()})
            return (out.objective, values), (measured, out.aux, new_model_state)

        return jax.vjp(split, params, has_aux=True)

    def raise_if_nonfinite(objective, measured, idx):
        checks.check_finite(objective, "objective")
        for name, g in groups.items():
            bad = ~jnp.isfinite(measured[name])
            if checks.is_concrete(bad) and bool(jnp.any(bad)):
                where = idx[name][bad] if g.indexed else jnp.flatnonzero(bad)
                label = "sample indices" if g.indexed else "constraints"
                raise ValueError(f"constraint group {name!r}: non-finite losses/violations at "
                                 f"{label} {where[:10].tolist()}")

    def penalty_sum(values, rows, form_states):  # its gradient in values is their cotangent
        terms = {k: g.formulation.primal_term(rows[k], values[k], form_states[k], g.kind)
                 for k, g in groups.items()}
        return sum((weighted_sum(t, jnp.ones_like(t), groups[k].resolved_reduction())
                    for k, t in terms.items()), 0.0)

    def step(state: PrimalDualState, batch: Any, indices: Any = None, *,
             unique_indices: bool = False, padded: bool = False):
        dual_step.check_multipliers(groups, state.multipliers, values=False, padded=padded)
        idx, indices_valid = dual_step.batch_indices(groups, indices)
        (objective, values), vjp_fn, (measured, aux, model_state) = evaluate(
            state.params, batch, state.model_state)
        dual_step.check_violations(groups, values, idx)
        measured = dual_step.pmean_dense(groups, measured, axis_name)
        if on_nonfinite == "raise":
            raise_if_nonfinite(objective, measured, idx)
        rows = dual_step.read_rows(groups, state.multipliers, idx)
        proposal = None
        if scheme != "primal_then_dual":
            proposal = dual_step.propose(groups, state.dual_states, state.formulation_states,
                                         rows, measured, idx, unique_indices=unique_indices)
        primal_rows = proposal.rows if scheme == "dual_then_primal" else rows
        (grads,) = vjp_fn((jnp.ones_like(objective),
                           jax.grad(penalty_sum)(values, primal_rows, state.formulation_states)))
        if on_nonfinite == "raise":
            checks.check_finite_tree(grads, "gradients (the losses were finite)")
        inputs_finite = dual_step.all_finite((objective, values, measured))
        updates, primal_state, ok = primal_step(primal, grads, state.primal_state,
                                                state.params, inputs_finite & indices_valid,
                                                axis_name, {}, zero_skipped=False)
        params = optax.apply_updates(state.params, updates)
        if proposal is None:  # primal_then_dual: the dual step sees the new parameters
            _, _, (measured, _, _) = evaluate(params, batch, model_state)
            ok = ok & dual_step.everywhere(dual_step.all_finite(measured), axis_name)
            measured = dual_step.pmean_dense(groups, measured, axis_name)
            primal_state = dual_step.select(ok, primal_state, state.primal_state)
            proposal = dual_step.propose(groups, state.dual_states, state.formulation_states,
                                         rows, measured, idx, unique_indices=unique_indices)
        indices_valid = dual_step.everywhere(indices_valid, axis_name)
        finite = ok | ~indices_valid  # values are not judged on a step with bad indices
        if checked:
            checkify.check(indices_valid, "indices out of range at step {s}", s=state.step)
            checkify.check(finite, "non-finite losses or gradients at step {s}", s=state.step)
        multipliers, dual_states, form_states = dual_step.commit(
            groups, state.multipliers, state.dual_states, state.formulation_states, proposal,
            idx, ok)
        new_state = PrimalDualState(
            params=dual_step.select(ok, params, state.params),
            primal_state=primal_state,  # selected by primal_step (and above, after remeasuring)
            multipliers=multipliers, dual_states=dual_states, formulation_states=form_states,
            step=state.step + 1, skipped=state.skipped + (~ok).astype(jnp.int32),
            model_state=dual_step.select(ok, model_state, state.model_state))
        return new_state, StepInfo(objective=objective, measurements=measured, aux=aux, ok=ok,
                                   finite=finite, indices_valid=indices_valid)

    return PrimalDual(init=init, step=step, checked=checked)


def _violation(value: ConstraintValue) -> jax.Array:
    if not isinstance(value, ConstraintValue):
        raise TypeError(f"constraints must map names to fj.ConstraintValue, got "
                        f"{type(value).__name__}")
    return value.violation
