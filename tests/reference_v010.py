"""The feasjax 0.1.0 primal-dual solver, frozen as a reference for equivalence tests.

Frozen means self-contained: the row, check, weighting and formulation code it needs is copied
below as it stood in 0.1.0 (pure jax/optax, no feasjax import), so that a regression in the
library cannot move the oracle along with it. Only the Lagrangian formulation is kept, the one
the equivalence tests use; a :class:`feasjax.ConstraintGroup` is read as plain configuration
(size, kind, indexed, reduction, init_multiplier, dual_optimizer).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import checkify

SCHEMES = ("simultaneous", "dual_then_primal", "primal_then_dual")


class PrimalDualState(NamedTuple):
    """Everything a primal-dual run carries from step to step."""

    params: Any  # model parameters (pytree)
    primal_state: Any  # primal optimizer state
    multipliers: dict  # name -> (size,) multipliers
    dual_states: dict  # name -> dual optimizer state (IndexedState for indexed groups)
    formulation_states: dict  # name -> formulation state (e.g. the penalty ρ)
    step: jax.Array  # shape=(), int32: steps taken (skipped ones included)
    skipped: jax.Array  # shape=(), int32: steps skipped for non-finite values or bad indices


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


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def primal_dual(
    problem_fn: Callable[[Any, Any], ProblemOutput],
    primal_optimizer: optax.GradientTransformation,
    constraints: dict[str, ConstraintGroup] | None = None,
    *,
    scheme: str = "simultaneous",
    axis_name: str | None = None,
    checked: bool = False,
    on_nonfinite: str = "skip",
) -> PrimalDual:
    """Build a primal-dual solver for ``min_θ f(θ)`` s.t. the constraint groups hold.

    Args:
      problem_fn: ``(params, batch) -> ProblemOutput``; indexed groups return ``(B,)``
        violations for the batch's indices, dense groups ``(size,)``.
      primal_optimizer: any optax optimizer for the parameters.
      constraints: name -> :class:`ConstraintGroup`; empty or ``None`` gives plain ERM
        through the same machinery.
      scheme: ``"simultaneous"``, ``"dual_then_primal"`` or ``"primal_then_dual"``.
      axis_name: inside ``jax.shard_map(..., check_vma=False)`` or ``jax.pmap``, the data
        axis: primal gradients (and dense measurements) are averaged over it in one
        all-reduce, which also carries the skip decision so that every device agrees;
        indexed multipliers stay local to their shard (see :mod:`feasjax.parallel.mesh`).
      checked: also emit ``checkify`` checks (run the step under ``checkify.checkify``).
      on_nonfinite: ``"skip"`` (default) skips and counts a step with non-finite values;
        ``"raise"`` raises ``ValueError`` naming the non-finite samples when called eagerly
        (inside ``jit`` the step is still skipped, and :func:`feasjax.train` raises after the
        epoch, naming the step).

    Returns:
      A :class:`PrimalDual` with ``init(params, multipliers=None)`` and
      ``step(state, batch, indices=None)``; ``indices`` is an int array applied to every
      indexed group, or a dict name -> int array.

    """
    constraints = dict(constraints or {})
    if on_nonfinite not in ("skip", "raise"):
        raise ValueError(f"on_nonfinite must be 'skip' or 'raise', got {on_nonfinite=}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme=}")
    for name, group in constraints.items():
        _validate(name, group)
    dual_txs = {name: indexed(g.dual_optimizer) if g.indexed else g.dual_optimizer
                for name, g in constraints.items()}

    def init(params: Any, multipliers: dict | None = None) -> PrimalDualState:
        if multipliers is None:
            multipliers = {name: jnp.full((g.size,), g.init_multiplier, jnp.float32)
                           for name, g in constraints.items()}
        _check_multipliers(multipliers)
        return PrimalDualState(
            params=params,
            primal_state=primal_optimizer.init(params),
            multipliers=multipliers,
            dual_states={name: dual_txs[name].init(multipliers[name]) for name in constraints},
            formulation_states={name: _LAGRANGIAN.init() for name, g in constraints.items()},
            step=jnp.zeros([], jnp.int32),
            skipped=jnp.zeros([], jnp.int32),
        )

    def _check_multipliers(multipliers: dict) -> None:
        if set(multipliers) != set(constraints):
            raise ValueError(f"multipliers must have keys {sorted(constraints)}, "
                             f"got {sorted(multipliers)}")
        for name, g in constraints.items():
            if jnp.shape(multipliers[name]) != (g.size,):
                raise ValueError(f"multipliers[{name!r}] must have shape ({g.size},), "
                                 f"got {jnp.shape(multipliers[name])}")

    def _indices_for(indices: Any) -> tuple[dict, jax.Array]:
        out, valid = {}, jnp.array(True)
        for name, g in constraints.items():
            if not g.indexed:
                continue
            idx = indices.get(name) if isinstance(indices, dict) else indices
            if idx is None:
                raise ValueError(f"indices are required for the indexed constraint group "
                                 f"{name!r}")
            idx = _check_indices(idx, g.size, "indices")
            valid = valid & jnp.all((idx >= 0) & (idx < g.size))
            out[name] = idx
        return out, valid

    def _evaluate(params: Any, batch: Any) -> tuple[Any, Any, Any, Callable]:
        def split(p):
            out = problem_fn(p, batch)
            if not all(hasattr(out, f) for f in ("objective", "constraints", "aux")):
                raise TypeError(f"problem_fn must return a ProblemOutput, got {type(out)}")
            if set(out.constraints) != set(constraints):
                raise ValueError(f"problem_fn returned constraint groups "
                                 f"{sorted(out.constraints)}, expected {sorted(constraints)}")
            values = {k: c.violation for k, c in out.constraints.items()}
            measured = {k: jax.lax.stop_gradient(c.violation if c.measurement is None
                                                 else c.measurement)
                        for k, c in out.constraints.items()}
            return (out.objective, values), (measured, out.aux)

        (objective, values), vjp_fn, (measured, aux) = jax.vjp(split, params, has_aux=True)
        return objective, values, measured, aux, vjp_fn

    def _check_batch_shapes(values: dict, idx: dict) -> None:
        for name, g in constraints.items():
            expected = idx[name].shape if g.indexed else (g.size,)
            if values[name].shape != expected:
                what = "one per index" if g.indexed else "one per constraint"
                raise ValueError(f"constraint group {name!r}: violations must have shape "
                                 f"{expected} ({what}), got {values[name].shape}")

    def _raise_if_nonfinite(objective: Any, measured: dict, idx: dict) -> None:
        _check_finite(objective, "objective")
        for name, g in constraints.items():
            if not _is_concrete(measured[name]):
                continue
            bad = ~jnp.isfinite(measured[name])
            if bool(jnp.any(bad)):
                where = idx[name][bad] if g.indexed else jnp.flatnonzero(bad)
                label = "sample indices" if g.indexed else "constraints"
                raise ValueError(f"constraint group {name!r}: non-finite losses/violations at "
                                 f"{label} {where[:10].tolist()}")

    def _rows(state: PrimalDualState, idx: dict) -> dict:
        return {name: gather_rows(state.multipliers[name], idx[name]) if g.indexed
                else state.multipliers[name] for name, g in constraints.items()}

    def _dual_update(state: PrimalDualState, rows: dict, measured: dict, idx: dict):
        new_rows, new_dual, new_form = {}, {}, {}
        for name, g in constraints.items():
            form, fstate = _LAGRANGIAN, state.formulation_states[name]
            if not form.has_multipliers:
                new_rows[name] = rows[name]
                new_dual[name] = (gather_rows(state.dual_states[name].inner, idx[name])
                                  if g.indexed else state.dual_states[name])
                new_form[name] = form.update_state(fstate, measured[name], g.kind)
                continue
            direction = form.dual_gradient(rows[name], measured[name], fstate, g.kind)
            if g.indexed:
                upd, dual_rows = update_rows(g.dual_optimizer, direction,
                                             state.dual_states[name], idx[name], rows[name])
                new_dual[name] = dual_rows  # written back once the step is known to be ok
            else:
                upd, new_dual[name] = dual_txs[name].update(direction, state.dual_states[name],
                                                            rows[name])
            lam = rows[name] + upd
            new_rows[name] = jnp.maximum(lam, 0) if g.kind == "inequality" else lam
            new_form[name] = form.update_state(fstate, measured[name], g.kind)
        return new_rows, new_dual, new_form

    def _cotangents(rows: dict, values: dict, form_states: dict) -> dict:
        def penalty_sum(vals):
            total = 0.0
            for name, g in constraints.items():
                terms = _LAGRANGIAN.primal_term(rows[name], vals[name], form_states[name],
                                                g.kind)
                total = total + _weighted_sum(terms, jnp.ones_like(terms), _reduction(g))
            return total

        return jax.grad(penalty_sum)(values)

    def step(state: PrimalDualState, batch: Any, indices: Any = None):
        _check_multipliers(state.multipliers)
        idx, indices_valid = _indices_for(indices)
        objective, values, measured, aux, vjp_fn = _evaluate(state.params, batch)
        _check_batch_shapes(values, idx)
        if axis_name is not None:
            measured = {k: v if constraints[k].indexed else jax.lax.pmean(v, axis_name)
                        for k, v in measured.items()}
        if on_nonfinite == "raise":
            _raise_if_nonfinite(objective, measured, idx)
        rows = _rows(state, idx)

        dual_first = scheme != "primal_then_dual"
        if dual_first:
            new_rows, new_dual, new_form = _dual_update(state, rows, measured, idx)
        primal_rows = new_rows if scheme == "dual_then_primal" else rows
        cot = _cotangents(primal_rows, values, state.formulation_states)
        (grads,) = vjp_fn((jnp.ones_like(objective), cot))
        finite = _all_finite((objective, values, measured))
        if axis_name is not None:
            # Every device must take the same skip decision, or the replicated parameters
            # drift apart: the local flags ride in the gradient all-reduce (one per step).
            flags = jnp.stack([~finite, ~indices_valid]).astype(jnp.float32)
            grads, flags = jax.lax.pmean((grads, flags), axis_name)
            finite, indices_valid = flags[0] == 0, flags[1] == 0
        finite = finite & _all_finite(grads)
        updates, primal_state = primal_optimizer.update(grads, state.primal_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if not dual_first:
            _, _, measured, _, _ = _evaluate(params, batch)
            remeasured_ok = _all_finite(measured)
            if axis_name is not None:
                remeasured_ok = jax.lax.pmax((~remeasured_ok).astype(jnp.int32), axis_name) == 0
            finite = finite & remeasured_ok
            new_rows, new_dual, new_form = _dual_update(state, rows, measured, idx)
        ok = finite & indices_valid
        if checked:
            checkify.check(indices_valid, "indices out of range at step {s}", s=state.step)
            checkify.check(finite, "non-finite losses or gradients at step {s}", s=state.step)

        multipliers, dual_states = {}, {}
        for name, g in constraints.items():
            if g.indexed:
                # Dropping the write (index N is out of range) skips the step at O(B) cost.
                write = jnp.where(ok, idx[name], g.size)
                multipliers[name] = scatter_rows(state.multipliers[name], new_rows[name], write)
                dual_states[name] = write_rows(state.dual_states[name], new_dual[name], write)
            else:
                multipliers[name] = jnp.where(ok, new_rows[name], state.multipliers[name])
                dual_states[name] = _select(ok, new_dual[name], state.dual_states[name])
        new_state = PrimalDualState(
            params=_select(ok, params, state.params),
            primal_state=_select(ok, primal_state, state.primal_state),
            multipliers=multipliers,
            dual_states=dual_states,
            formulation_states=_select(ok, new_form, state.formulation_states),
            step=state.step + 1,
            skipped=state.skipped + (~ok).astype(jnp.int32),
        )
        info = StepInfo(objective=objective, measurements=measured, aux=aux, ok=ok,
                        finite=finite, indices_valid=indices_valid)
        return new_state, info

    return PrimalDual(init=init, step=step)


# ---------------------------------------------------------------- frozen 0.1.0 dependencies
# As in feasjax 0.1.0 (feasjax/checks.py, indexed.py, weighting.py, formulations.py, problem.py),
# cut to what the solver above calls.


def _validate(name: str, group: Any) -> None:
    if group.formulation.name != "lagrangian":
        raise ValueError(f"constraint group {name!r}: the frozen 0.1.0 reference keeps only the "
                         f"Lagrangian, got formulation {group.formulation.name!r}")
    if not isinstance(group.size, int) or group.size < 1:
        raise ValueError(f"constraint group {name!r}: size must be a positive int, "
                         f"got size={group.size!r}")
    if group.kind not in ("equality", "inequality"):
        raise ValueError(f"kind must be 'equality' or 'inequality', got kind={group.kind!r}")
    if _reduction(group) not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {group.reduction=}")


def _reduction(group: Any) -> str:
    return "mean" if group.reduction is None else group.reduction  # 0.1.0's default


class _Lagrangian(NamedTuple):
    """``L(θ, λ) = f(θ) + Σ λ_i g_i(θ)``: primal descent, dual ascent on ``g``; no state."""

    has_multipliers: bool = True

    @staticmethod
    def init() -> tuple:
        return ()

    @staticmethod
    def primal_term(lam, g, state, kind):
        return lam * g

    @staticmethod
    def dual_gradient(lam, g, state, kind):
        return g

    @staticmethod
    def update_state(state, violation, kind):
        return state


_LAGRANGIAN = _Lagrangian()


def _weighted_sum(values: jax.Array, weights: jax.Array, reduction: str) -> jax.Array:
    total = jnp.sum(weights * values)
    return total / values.shape[0] if reduction == "mean" else total


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_indices(indices: Any, num_rows: int, name: str) -> jax.Array:
    dtype = getattr(indices, "dtype", None) or np.asarray(indices).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {dtype}")
    indices = jnp.asarray(indices)
    if indices.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one index per batch row), got shape {indices.shape}")
    if _is_concrete(indices) and indices.size:
        values = np.asarray(indices)
        bad = values[(values < 0) | (values >= num_rows)]
        if bad.size:
            raise ValueError(f"{name} must lie in [0, {num_rows}), got out-of-range values "
                             f"{bad[:10].tolist()}")
    return indices


def _check_finite(x: Any, name: str) -> None:
    if not _is_concrete(x):
        return
    bad = np.flatnonzero(~np.isfinite(np.asarray(x)))
    if bad.size:
        raise ValueError(f"{name} must be finite, got non-finite values at positions "
                         f"{bad[:10].tolist()}")


class IndexedState(NamedTuple):
    """State of :func:`indexed`."""

    inner: Any  # inner optimizer state, every leaf with leading axis N (one row per sample)


def indexed(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """An element-wise optimizer with one state per row; only ``init`` is used here (the step
    updates rows through :func:`update_rows`)."""

    def update_fn(updates, state, params=None):
        raise NotImplementedError("the reference updates rows through update_rows")

    return optax.GradientTransformation(lambda p: IndexedState(inner=jax.vmap(inner.init)(p)),
                                        update_fn)


def _unique_rows(indices: jax.Array) -> jax.Array:
    """For each position, the first position holding the same index. O(B log B)."""
    order = jnp.argsort(indices, stable=True)
    sorted_indices = indices[order]
    starts = jnp.concatenate([jnp.array([True]), sorted_indices[1:] != sorted_indices[:-1]])
    run_start = jax.lax.cummax(jnp.where(starts, jnp.arange(indices.shape[0]), 0))
    return jnp.zeros_like(indices).at[order].set(order[run_start])


def _combine_duplicates(row_values: Any, indices: jax.Array) -> Any:
    """Sum the rows that share an index (as a dense gradient does); each occurrence gets it."""
    first = _unique_rows(indices)
    return jax.tree.map(
        lambda leaf: jax.ops.segment_sum(leaf, first, num_segments=indices.shape[0])[first],
        row_values)


def gather_rows(tree: Any, indices: jax.Array) -> Any:
    """Rows ``indices`` of every leaf; out-of-range rows read as the fill value."""
    return jax.tree.map(lambda leaf: leaf.at[indices].get(mode="fill"), tree)


def scatter_rows(tree: Any, rows: Any, indices: jax.Array) -> Any:
    """Write ``rows`` into rows ``indices`` of ``tree``; out-of-range rows are not written."""
    return jax.tree.map(
        lambda leaf, row: leaf.at[indices].set(row.astype(leaf.dtype), mode="drop"), tree, rows)


def update_rows(inner: optax.GradientTransformation, row_grads: Any, state: IndexedState,
                indices: jax.Array, row_params: Any = None) -> tuple[Any, Any]:
    """``(row_updates, new_row_states)`` of the named rows, the state not written back."""
    row_grads = _combine_duplicates(row_grads, indices)
    rows_state = gather_rows(state.inner, indices)
    if row_params is None:
        return jax.vmap(lambda g, s: inner.update(g, s))(row_grads, rows_state)
    return jax.vmap(inner.update)(row_grads, rows_state, row_params)


def write_rows(state: IndexedState, new_rows: Any, indices: jax.Array) -> IndexedState:
    """Write rows from :func:`update_rows` back; out-of-range indices are not written."""
    return IndexedState(inner=scatter_rows(state.inner, new_rows, indices))
