"""Primal-dual updates as an Optax transformation: multipliers in the optimizer state.

``update`` takes the dual step on the batch's rows (O(B)), then the wrapped optimizer's step; the
caller differentiates ``f + reduce(λ_B · g_B)`` with the multipliers read by :func:`multipliers`.
It composes with ``optax.chain``, ``inject_hyperparams``, ``MultiSteps`` (put the transformation
*around* it so that every micro-batch takes its dual step) and ``nnx.Optimizer``. Other schemes
call :func:`dual_update` before the gradient (``"dual_then_primal"``) or after ``update``
(``"primal_then_dual"``). A step with non-finite values or out-of-range indices is skipped: zero
updates, state unchanged, ``state.skipped`` incremented.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from feasjax.core import checks, defaults, dual_step
from feasjax.core.formulations import Formulation, lagrangian
from feasjax.core.implicit import ImplicitState
from feasjax.core.problem import ConstraintGroup
from feasjax.core.rows import gather_rows

__all__ = ["SAMPLES", "ConstrainedState", "constrained", "feasible", "constrained_state",
           "multipliers", "dual_update"]

SAMPLES = "samples"  # name of Feasible Learning's per-sample constraint group
SCHEMES = ("simultaneous", "dual_then_primal", "primal_then_dual")


class ConstrainedState(NamedTuple):
    """State of :func:`constrained` and :func:`feasible`."""

    inner_state: optax.OptState  # the wrapped (primal) optimizer's state
    multipliers: dict  # name -> (size,) float multipliers (stored groups only)
    dual_states: dict  # name -> dual state (IndexedState: indexed, ImplicitState: implicit)
    formulation_states: dict  # name -> formulation state
    count: jax.Array  # shape=(), int32: primal updates taken (skipped ones included)
    skipped: jax.Array  # shape=(), int32: steps skipped (non-finite values, bad indices)


def check_scheme(scheme: str) -> None:
    """Raise ``ValueError`` unless ``scheme`` is one of :data:`SCHEMES`."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme=}")


def primal_step(primal: optax.GradientTransformationExtraArgs, grads: Any, inner_state: Any,
                params: Any, ok: jax.Array, axis_name: str | None, extra: dict, *,
                zero_skipped: bool = True) -> tuple[Any, Any, jax.Array]:
    """``(updates, inner_state, ok)`` of the wrapped optimizer, skipped (old state, and zero
    updates unless ``zero_skipped=False``) unless ``ok`` and gradients and updates are finite.
    With ``axis_name``, one all-reduce averages the gradients and carries every device's ``ok``."""
    if axis_name is not None:
        grads, bad = jax.lax.pmean((grads, (~ok).astype(jnp.float32)), axis_name)
        ok = bad == 0
    updates, new_inner = primal.update(grads, inner_state, params, **extra)
    ok = ok & dual_step.all_finite(grads, updates)
    if zero_skipped:
        updates = jax.tree.map(lambda u: jnp.where(ok, u, jnp.zeros_like(u)), updates)
    return updates, dual_step.select(ok, new_inner, inner_state), ok


def _as_group_dict(value: Any, groups: Mapping, name: str) -> dict | None:
    if value is None or isinstance(value, Mapping):
        return value
    if len(groups) != 1:
        raise ValueError(f"{name} must be a dict name -> array with several constraint groups "
                         f"{sorted(groups)}")
    return {next(iter(groups)): value}


def constrained(
    primal_optimizer: optax.GradientTransformation,
    constraints: Mapping[str, ConstraintGroup],
    *,
    scheme: str = defaults.SCHEME,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Wrap an optax optimizer so that its state also holds multipliers and takes dual steps.

    .. math::
      \\lambda_B \\leftarrow \\mathrm{proj}(\\lambda_B + \\mathrm{dual}(g_B)), \\qquad
      \\theta \\leftarrow \\theta + \\mathrm{primal}(\\nabla_\\theta [f + \\mathrm{reduce}
      (\\lambda_B g_B)])

    Args:
      primal_optimizer: any optax optimizer for the parameters (extra args are forwarded).
      constraints: name -> :class:`feasjax.ConstraintGroup` with a Lagrangian or resilient
        formulation (penalty formulations need :func:`feasjax.primal_dual`).
      scheme: ``"simultaneous"`` (default), ``"dual_then_primal"`` or ``"primal_then_dual"``.
      axis_name: inside ``shard_map``, the data axis: gradients (and dense groups' violations)
        are averaged over it; per-sample multipliers stay local to their shard.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with ``update(grads, state, params, *,
      violations, measurements=None, indices, features=None, unique_indices=False, **extra)``:
      ``violations`` (name -> ``(B,)`` or ``(size,)``; one array for one group), or
      ``measurements`` when given, drive the dual step; ``indices`` name indexed groups' rows,
      ``features`` (one pytree, or a dict by name) are implicit groups' batch;
      ``unique_indices=True`` promises no repeated index. Other schemes take no violations.

    Example:
      >>> import jax, jax.numpy as jnp, optax, feasjax as fj
      >>> # min x^2 s.t. 1 - x <= 0: x* = 1, lambda* = 2
      >>> tx = fj.constrained(optax.sgd(0.1), {"c": fj.ConstraintGroup(size=1)})
      >>> x, state = jnp.zeros(()), tx.init(jnp.zeros(()))
      >>> @jax.jit
      ... def step(x, state):
      ...     lam = fj.multipliers(state)
      ...     grad = jax.grad(lambda x: x**2 + jnp.mean(lam * (1 - x)))(x)
      ...     violations = jnp.array([1 - x])
      ...     updates, state = tx.update(grad, state, x, violations=violations)
      ...     return optax.apply_updates(x, updates), state
      >>> for _ in range(500):
      ...     x, state = step(x, state)
      >>> round(float(x), 3), round(float(fj.multipliers(state)[0]), 3)
      (1.0, 2.0)
    """
    check_scheme(scheme)
    groups = dict(constraints)
    for name, g in groups.items():
        g.validate(name)
        if g.formulation.name not in ("lagrangian", "resilient"):
            raise ValueError(f"constraint group {name!r}: the optax transformation supports the "
                             f"lagrangian and resilient formulations (primal weight λ), got "
                             f"{g.formulation.name!r}; use fj.primal_dual for penalty "
                             f"formulations")
    primal = optax.with_extra_args_support(primal_optimizer)

    def init_fn(params):
        # Two counters, not one: a donated state may not hold the same buffer twice.
        return ConstrainedState(primal.init(params), *dual_step.init_parts(groups),
                                dual_step.zero_count(), dual_step.zero_count())

    def dual(state, violations, measurements, indices, features, unique_indices):
        idx, valid = dual_step.batch_indices(groups, indices, features)
        violations = _as_group_dict(violations, groups, "violations")
        measured = _as_group_dict(measurements, groups, "measurements") or violations
        dual_step.check_violations(groups, measured, idx)
        measured = dual_step.pmean_dense(groups, jax.lax.stop_gradient(measured), axis_name)
        rows = dual_step.read_rows(groups, state.multipliers, idx)
        proposal = dual_step.propose(groups, state.dual_states, state.formulation_states, rows,
                                     measured, idx, unique_indices=unique_indices,
                                     axis_name=axis_name)
        models = {k: proposal.dual[k] for k, g in groups.items() if g.implicit}
        return proposal, idx, valid & dual_step.all_finite(measured, models)

    def finish(state, proposal, idx, ok, inner_state, counted):
        lam, duals, forms = (state.multipliers, state.dual_states, state.formulation_states)
        if proposal is not None:
            lam, duals, forms = dual_step.commit(groups, lam, duals, forms, proposal, idx, ok)
        return ConstrainedState(inner_state, lam, duals, forms,
                                state.count + counted, state.skipped + (~ok).astype(jnp.int32))

    def update_fn(updates, state, params=None, *, violations=None, measurements=None,
                  indices=None, features=None, dual_only=False, unique_indices=False,
                  **extra_args):
        extra = {k: v for k, v in extra_args.items() if k != "losses"}  # the rest are keywords
        given = violations is not None or measurements is not None
        if dual_only and not given:  # fj.dual_update: the dual step alone
            raise ValueError("dual_update needs the batch's violations (or losses)")
        if scheme == "simultaneous" and not given:
            raise ValueError("scheme 'simultaneous' takes its dual step in update: pass "
                             "violations= (losses= for fj.feasible) and indices= (features= "
                             "for implicit multipliers)")
        if given and not dual_only and scheme != "simultaneous":
            when = "before the gradient" if scheme == "dual_then_primal" else "after the update"
            raise ValueError(f"under scheme {scheme!r} update takes the primal step only: "
                             f"pass the violations (losses) to fj.dual_update(tx, state, "
                             f"...) {when}")
        proposal, idx, ok = None, {}, jnp.array(True)
        if given:
            proposal, idx, ok = dual(state, violations, measurements, indices, features,
                                     unique_indices)
        if dual_only:
            return updates, finish(state, proposal, idx, dual_step.everywhere(ok, axis_name),
                                   state.inner_state, 0)
        updates, inner_state, ok = primal_step(primal, updates, state.inner_state, params, ok,
                                               axis_name, extra)
        return updates, finish(state, proposal, idx, ok, inner_state, 1)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def feasible(
    primal_optimizer: optax.GradientTransformation,
    *,
    num_samples: int | None = None,
    epsilon: float,
    multipliers: Any = None,
    dual_optimizer: optax.GradientTransformation | None = None,
    formulation: Formulation | None = None,
    scheme: str = defaults.SCHEME,
    init_multiplier: float = defaults.INIT_MULTIPLIER,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Feasible Learning as an optax transformation: one multiplier per training sample.

    .. math::
      \\lambda_i \\leftarrow \\max(0, \\lambda_i + \\eta\\,(\\ell_i - \\epsilon))\\ (i \\in B),
      \\qquad \\theta \\leftarrow \\theta + \\mathrm{primal}(\\nabla_\\theta
      \\tfrac1B \\textstyle\\sum_{i \\in B} \\lambda_i (\\ell_i(\\theta) - \\epsilon))

    The caller weights each sample's loss by ``fj.multipliers(state, indices)`` (the README's
    train step); the example shows the dual step alone.

    Args:
      primal_optimizer: any optax optimizer.
      num_samples: ``N``, the number of training samples (per device under ``axis_name``);
        not with ``multipliers``.
      epsilon: the loss bound ``ε >= 0``.
      multipliers: :func:`feasjax.implicit_multipliers` instead of one stored per sample:
        ``update`` takes ``features=`` (no ``indices``); its optimizer replaces
        ``dual_optimizer`` and ``init_multiplier`` (:func:`constrained` with
        ``{"samples": fj.ConstraintGroup(multipliers=...)}``).
      dual_optimizer: ascent optimizer for the batch's multipliers (default
        ``fj.ascent(optax.sgd(0.1))``).
      formulation: :func:`feasjax.lagrangian` (FL, default) or :func:`feasjax.resilient` (RFL).
      scheme, axis_name: see :func:`constrained`.
      init_multiplier: initial ``λ_i`` (1.0: the first step is an ERM step).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update(grads, state, params, *,
      losses, indices, measurements=None, **extra)`` takes the batch's ``(B,)`` losses (and
      ``features=`` instead of ``indices`` with implicit multipliers).

    Example:
      >>> import jax.numpy as jnp, optax, feasjax as fj
      >>> tx = fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=0.5)
      >>> w = jnp.zeros(2)
      >>> loss, rows = jnp.array([2.5, 0.0]), jnp.array([2, 0])
      >>> _, state = tx.update(jnp.ones(2), tx.init(w), w, losses=loss, indices=rows)
      >>> # λ_i ← max(0, λ_i + 0.1 (ℓ_i − 0.5)) on the batch's rows 2 and 0
      >>> [round(float(v), 6) for v in fj.multipliers(state)]
      [0.95, 1.0, 1.2]
    """
    checks.check_positive(epsilon, "epsilon", allow_zero=True)
    formulation = formulation or lagrangian()
    if multipliers is not None:
        if num_samples is not None or dual_optimizer is not None or \
                init_multiplier != defaults.INIT_MULTIPLIER:
            raise ValueError("with implicit multipliers, num_samples, dual_optimizer and "
                             "init_multiplier do not apply: the multiplier model, its "
                             "parameters and fj.implicit_multipliers(..., optimizer=) replace "
                             "them")
        group = ConstraintGroup(formulation=formulation, multipliers=multipliers)
    elif num_samples is None:
        raise ValueError("num_samples is required (the number of training samples, one "
                         "multiplier each), or pass multipliers=fj.implicit_multipliers(...)")
    else:
        group = ConstraintGroup(
            size=checks.check_count(num_samples, "num_samples"), formulation=formulation,
            dual_optimizer=dual_optimizer or defaults.dual_optimizer(),
            indexed=True, init_multiplier=init_multiplier)
    inner = constrained(primal_optimizer, {SAMPLES: group}, scheme=scheme, axis_name=axis_name)

    def update_fn(updates, state, params=None, *, losses=None, measurements=None,
                  indices=None, **extra):
        return inner.update(updates, state, params,
                            violations=_violations(losses, epsilon, indices, "losses"),
                            measurements=_violations(measurements, epsilon, indices,
                                                     "measurements"),
                            indices=indices, **extra)

    return optax.GradientTransformationExtraArgs(inner.init, update_fn)


def _violations(values: Any, epsilon: Any, indices: Any, name: str) -> jax.Array | None:
    """``values - epsilon`` once checked to be one float per index (``None`` stays ``None``)."""
    if values is None:
        return None
    values = jnp.asarray(values)
    if values.ndim != 1 or not jnp.issubdtype(values.dtype, jnp.floating):
        raise ValueError(f"{name} must be a 1-D float array of per-sample values (B,), got "
                         f"shape {values.shape} dtype {values.dtype}")
    if indices is not None and jnp.shape(indices) != values.shape:
        raise ValueError(f"{name} must have shape {jnp.shape(indices)} (one per index), got "
                         f"{values.shape}")
    return values - jnp.asarray(epsilon, values.dtype)


def _is_state(x: Any) -> bool:
    return isinstance(x, ConstrainedState)


def _pure(tree: Any) -> Any:
    """``tree`` with the nnx Variables of an ``nnx.Optimizer``'s state read as their values."""
    def is_variable(v):
        return hasattr(v, "get_value")
    return jax.tree.map(lambda v: v.get_value() if is_variable(v) else v, tree,
                        is_leaf=is_variable)


def constrained_state(opt_state: Any) -> ConstrainedState:
    """The :class:`ConstrainedState` inside any optax (or ``nnx.Optimizer``) state, as plain arrays.

    Raises ``ValueError`` unless ``opt_state`` (nested in ``optax.chain``,
    ``inject_hyperparams``, ``MultiSteps``, ..., or an ``nnx.Optimizer``) holds exactly one.

    Example:
      >>> import jax.numpy as jnp, optax, feasjax as fj
      >>> tx = optax.chain(optax.clip(1.0), fj.feasible(optax.sgd(0.1), num_samples=3,
      ...                                               epsilon=0.1))
      >>> fj.constrained_state(tx.init(jnp.zeros(2))).multipliers["samples"].shape
      (3,)
    """
    opt_state = getattr(opt_state, "opt_state", opt_state)  # an nnx.Optimizer
    found = [x for x in jax.tree.leaves(opt_state, is_leaf=_is_state) if _is_state(x)]
    if len(found) != 1:
        raise ValueError(f"opt_state must hold exactly one fj.constrained/fj.feasible state, "
                         f"found {len(found)}")
    return _pure(found[0])


def multipliers(opt_state: Any, indices: Any = None, *, group: str | None = None,
                features: Any = None) -> jax.Array:
    """The multipliers of one group without gradient: the batch's rows, or all of them.

    Args:
      opt_state: any state holding a :class:`ConstrainedState` (see :func:`constrained_state`).
      indices: the batch's ``(B,)`` sample indices, or ``None`` for the whole vector
        (concrete out-of-range ones raise; traced ones, negative ones too, read NaN).
      group: the group's name; default the only one (``"samples"`` for :func:`feasible`), or
        with ``features`` the only implicit one.
      features: instead of ``indices``, for implicit multipliers: the ``(B, ...)`` features of
        the samples (seen or not) whose ``λ`` to predict.

    Example:
      >>> import jax.numpy as jnp, optax, feasjax as fj
      >>> tx = fj.feasible(optax.sgd(0.1), num_samples=4, epsilon=0.1,
      ...                  init_multiplier=2.0)
      >>> fj.multipliers(tx.init(jnp.zeros(1)), jnp.array([3, 0])).tolist()
      [2.0, 2.0]
    """
    state = constrained_state(opt_state)
    models = {k: d for k, d in state.dual_states.items() if isinstance(d, ImplicitState)}
    if group is None:
        names = sorted(models) if features is not None and len(models) == 1 else \
            sorted(state.dual_states)
        if len(names) != 1:
            raise ValueError(f"group is required with several constraint groups {names}")
        group = names[0]
    if group not in state.dual_states:
        raise ValueError(f"group must be one of {sorted(state.dual_states)}, got {group=}")
    if group in models:
        if features is None or indices is not None:
            raise ValueError("implicit multipliers are read with features= (the samples' (B, "
                             "...) features), not indices: there is no stored vector to index")
        return jax.lax.stop_gradient(models[group].predict(models[group].params, features))
    if features is not None:
        raise ValueError(f"features= reads implicit multipliers (fj.implicit_multipliers); "
                         f"group {group!r} stores one per sample: pass indices= instead")
    lam = state.multipliers[group]
    if indices is not None:
        indices = checks.check_indices(indices, lam.shape[0], "indices")
        lam = gather_rows(lam, indices)
    return jax.lax.stop_gradient(lam)


def dual_update(tx: optax.GradientTransformationExtraArgs, opt_state: Any, **batch: Any) -> Any:
    """The dual step alone, for the ``"dual_then_primal"`` and ``"primal_then_dual"`` schemes.

    Args:
      tx: the transformation built by :func:`constrained` or :func:`feasible` (not a chain).
      opt_state: any state that holds its :class:`ConstrainedState`, or an ``nnx.Optimizer``
        (updated in place and returned).
      **batch: ``losses=`` (:func:`feasible`) or ``violations=``, ``indices=`` (``features=``
        for implicit multipliers), optionally ``measurements=`` and ``unique_indices=``.

    Returns:
      ``opt_state`` with the dual step taken.

    Example:
      >>> import jax.numpy as jnp, optax, feasjax as fj
      >>> fl = fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=0.5,
      ...                  scheme="dual_then_primal")
      >>> state = fj.dual_update(fl, fl.init(jnp.zeros(1)), losses=jnp.array([2.5]),
      ...                        indices=jnp.array([1]))
      >>> # 1 + 0.1 * (2.5 - 0.5)
      >>> [round(float(v), 6) for v in fj.multipliers(state)]
      [1.0, 1.2, 1.0]
    """
    def step(node):
        if not _is_state(node):
            return node
        return tx.update(None, _pure(node), None, dual_only=True, **batch)[1]

    if not hasattr(opt_state, "opt_state"):
        constrained_state(opt_state)  # exactly one
        return jax.tree.map(step, opt_state, is_leaf=_is_state)
    from flax import nnx  # only for nnx.Optimizer

    new = jax.tree.map(step, _pure(opt_state.opt_state), is_leaf=_is_state)
    nnx.update(opt_state.opt_state, nnx.state(new))
    return opt_state
