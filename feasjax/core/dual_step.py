"""The dual step of constraint groups, shared by :func:`feasjax.constrained` and
:func:`feasjax.primal_dual`: check the batch's indices (:func:`batch_indices`), read their
multipliers (:func:`read_rows`), :func:`propose` new ones and :func:`commit` them once the caller
knows whether the step is kept (a dropped step is an O(B) scatter to an out-of-range row).
Groups are dense (a stored vector, all read), indexed (the batch's rows read and written) or
implicit (:mod:`feasjax.core.implicit`: a model of the features, independent of N).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core import checks, implicit
from feasjax.core.problem import ConstraintGroup
from feasjax.core.rows import (IndexedState, gather_rows, indexed, scatter_rows, update_rows,
                               write_rows)

__all__: list[str] = []  # helpers of the core only: import them from here


class Proposal(NamedTuple):
    """New multipliers and dual states of the batch's rows, not yet written back."""

    rows: dict  # name -> (B,) or (size,) proposed multipliers (stored groups)
    dual: dict  # name -> proposed dual-state rows (indexed) or dual state (dense, implicit)
    formulation: dict  # name -> new formulation state


def stored(groups: Mapping[str, ConstraintGroup]) -> dict:
    """The groups whose multipliers are stored (dense and indexed ones, not implicit ones)."""
    return {name: g for name, g in groups.items() if not g.implicit}


def init_parts(groups: Mapping[str, ConstraintGroup], multipliers: dict | None = None
               ) -> tuple[dict, dict, dict]:
    """``(multipliers, dual_states, formulation_states)`` of fresh groups, from the given
    ``multipliers`` (name -> finite ``(size,)`` floats per stored group) or the groups' own."""
    if multipliers is None:  # filled on the host and copied once: no program to compile
        for name, g in stored(groups).items():
            checks.check_finite(np.float32(g.init_multiplier), f"{name}.init_multiplier")
        multipliers = {name: jax.device_put(np.full((g.size,), g.init_multiplier, np.float32))
                       for name, g in stored(groups).items()}
    else:
        check_multipliers(groups, multipliers)
    duals = {name: implicit.init_state(g.multipliers) if g.implicit else
             (indexed(g.dual_optimizer) if g.indexed else g.dual_optimizer).init(
                 multipliers[name]) for name, g in groups.items()}
    return dict(multipliers), duals, {name: g.formulation.init() for name, g in groups.items()}


def zero_count() -> jax.Array:
    """A fresh int32 ``0`` put on the device from the host (``jnp.zeros`` compiles a program)."""
    return jax.device_put(np.zeros((), np.int32))


def check_multipliers(groups: Mapping[str, ConstraintGroup], multipliers: Any, *,
                      values: bool = True, padded: bool = False) -> None:
    """Raise unless ``multipliers`` has one finite float ``(size,)`` vector per stored group
    (with ``padded``, an indexed group's may have more rows: a mesh's, no valid index reaches)."""
    groups = stored(groups)
    if not isinstance(multipliers, Mapping) or set(multipliers) != set(groups):
        got = sorted(multipliers) if isinstance(multipliers, Mapping) else type(multipliers)
        raise ValueError(f"multipliers must be a dict with keys {sorted(groups)}, got {got}")
    for name, g in groups.items():
        lam = multipliers[name]
        shape = jnp.shape(lam)
        if shape != (g.size,) and not (padded and g.indexed and len(shape) == 1
                                       and shape[0] >= g.size):
            raise ValueError(f"multipliers[{name!r}] must have shape ({g.size},), "
                             f"got {jnp.shape(lam)}")
        if not jnp.issubdtype(jnp.result_type(lam), jnp.floating):
            raise TypeError(f"multipliers[{name!r}] must be a float array, got dtype "
                            f"{jnp.result_type(lam)}")
        if values:  # a host read of all N values: at init, not on every eager step
            checks.check_finite(lam, f"multipliers[{name!r}]")


def batch_indices(groups: Mapping[str, ConstraintGroup], indices: Any, features: Any = None
                  ) -> tuple[dict, jax.Array]:
    """``(where, valid)``: name -> checked ``(B,)`` indices (indexed groups; ``indices`` is one
    array or a dict by name) or the batch's features (implicit groups; one pytree or a dict by
    name), and whether every index is in range (concrete out-of-range ones raise)."""
    out, valid = _features(groups, features), jnp.array(True)
    for name, g in groups.items():
        if not g.indexed:
            continue
        idx = indices.get(name) if isinstance(indices, Mapping) else indices
        if idx is None:
            raise ValueError(f"indices are required for the indexed constraint group {name!r} "
                             f"(the batch's sample indices, an int array of shape (B,))")
        out[name] = checks.check_indices(idx, g.size, "indices")
        valid = valid & jnp.all((out[name] >= 0) & (out[name] < g.size))
    return out, valid


def _features(groups: Mapping[str, ConstraintGroup], features: Any) -> dict:
    names = [name for name, g in groups.items() if g.implicit]
    if not names:
        if features is not None:
            raise ValueError("features= is for implicit multipliers (fj.implicit_multipliers) "
                             "and no constraint group here has them: pass indices= for stored "
                             "per-sample multipliers")
        return {}
    if features is None:
        raise ValueError(f"implicit multipliers (groups {names}) need the batch's features: pass "
                         f"features= (an array or pytree with a leading axis of B) to update, "
                         f"not indices")
    if isinstance(features, Mapping) and set(features) and set(features) <= set(names):
        if set(features) != set(names):
            raise ValueError(f"features must name every implicit group {sorted(names)}, got "
                             f"{sorted(features)}")
        return dict(features)
    if len(names) != 1:
        raise ValueError(f"features must be a dict name -> features with several implicit "
                         f"groups {sorted(names)}")
    return {names[0]: features}


def check_violations(groups: Mapping[str, ConstraintGroup], values: Mapping, idx: dict,
                     name: str = "violations") -> None:
    """Raise ``ValueError`` unless every group's values have the shape the group expects."""
    if not isinstance(values, Mapping) or set(values) != set(groups):
        got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
        raise ValueError(f"{name} must name the constraint groups {sorted(groups)}, got {got}")
    for key, g in groups.items():
        shape = jnp.shape(values[key])
        expected = idx[key].shape if g.indexed else (g.size,)
        if g.implicit:
            expected = (checks.leading_size(idx[key], "features"),)
            if len(shape) == 1 and shape != expected:
                raise ValueError(f"constraint group {key!r}: features must have a leading axis "
                                 f"of {shape[0]} (one row per sample of the batch), got "
                                 f"{expected[0]}")
        if shape != expected:
            what = ("one per index" if g.indexed else "one per sample" if g.implicit
                    else "one per constraint")
            raise ValueError(f"constraint group {key!r}: {name} must have shape {expected} "
                             f"({what}), got {shape}")
        if not jnp.issubdtype(jnp.result_type(values[key]), jnp.floating):
            raise TypeError(f"constraint group {key!r}: {name} must be floats (a loss or a "
                            f"violation), got dtype {jnp.result_type(values[key])}")


def read_rows(groups: Mapping[str, ConstraintGroup], multipliers: dict, idx: dict) -> dict:
    """The multipliers the batch names: rows ``idx`` of indexed groups, all of dense ones
    (implicit groups store none: :func:`propose` predicts theirs from the features)."""
    return {name: gather_rows(multipliers[name], idx[name]) if g.indexed
            else multipliers[name] for name, g in stored(groups).items()}


def propose(groups: Mapping[str, ConstraintGroup], dual_states: dict, formulation_states: dict,
            rows: dict, measured: dict, idx: dict, *, unique_indices: bool = False,
            axis_name: str | None = None) -> Proposal:
    """The dual step ``λ ← proj(λ + dual_opt(dual_gradient(λ, g)))`` of every group on the
    batch's rows, not yet written back (an implicit group proposes its new model instead)."""
    new_rows, new_dual, new_form = {}, {}, {}
    for name, g in groups.items():
        form, fstate = g.formulation, formulation_states[name]
        new_form[name] = form.update_state(fstate, measured[name], g.kind)
        if not form.has_multipliers:
            new_rows[name] = rows[name]
            new_dual[name] = (gather_rows(dual_states[name].inner, idx[name]) if g.indexed
                              else dual_states[name])
            continue
        if g.implicit:
            new_dual[name] = implicit.propose(g.multipliers, dual_states[name], fstate, form,
                                              measured[name], idx[name], axis_name)
            continue
        direction = form.dual_gradient(rows[name], measured[name], fstate, g.kind)
        if g.indexed:
            upd, new_dual[name] = update_rows(g.dual_optimizer, direction, dual_states[name],
                                              idx[name], rows[name],
                                              unique_indices=unique_indices)
        else:
            upd, new_dual[name] = g.dual_optimizer.update(direction, dual_states[name],
                                                          rows[name])
        lam = rows[name] + upd
        new_rows[name] = jnp.maximum(lam, 0) if g.kind == "inequality" else lam
    return Proposal(new_rows, new_dual, new_form)


def commit(groups: Mapping[str, ConstraintGroup], multipliers: dict, dual_states: dict,
           formulation_states: dict, proposal: Proposal, idx: dict, ok: jax.Array
           ) -> tuple[dict, dict, dict]:
    """The new ``(multipliers, dual_states, formulation_states)``, the proposal's if ``ok``: O(B)
    scatters for indexed groups, selects for dense ones and implicit ones' model parameters."""
    new_lam, new_dual = {}, {}
    for name, g in groups.items():
        if g.indexed:
            # Out-of-range row `size` drops the write: a skipped step costs O(B), not O(N).
            write = jnp.where(ok, idx[name], g.size)
            new_lam[name] = scatter_rows(multipliers[name], proposal.rows[name], write)
            new_dual[name] = write_rows(dual_states[name], proposal.dual[name], write)
        else:
            if not g.implicit:
                new_lam[name] = jnp.where(ok, proposal.rows[name], multipliers[name])
            new_dual[name] = select(ok, proposal.dual[name], dual_states[name])
    return new_lam, new_dual, select(ok, proposal.formulation, formulation_states)


def all_finite(*trees: Any) -> jax.Array:
    """Whether every inexact leaf of ``trees`` is finite: ``x * 0`` is NaN exactly for a
    non-finite ``x`` and cannot overflow, so one :func:`sums` per shape decides (a small step)."""
    by_shape: dict = {}
    for x in jax.tree.leaves(trees):
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            x = jnp.asarray(x)
            by_shape.setdefault(x.shape, []).append(x * 0)
    if not by_shape:
        return jnp.array(True)
    return jnp.isfinite(sum(sum(sums(*zeros)) for zeros in by_shape.values()))


def sums(*operands: jax.Array) -> tuple[jax.Array, ...]:
    """The sum of each operand (all of one shape) over all axes in one variadic reduction: XLA
    compiles it much faster than ``k`` ``jnp.sum`` calls; no reshape, so shardings stay."""
    axes = tuple(range(jnp.ndim(operands[0])))
    return tuple(jax.lax.reduce(operands, tuple(x.dtype.type(0) for x in operands),
                                lambda a, b: tuple(x + y for x, y in zip(a, b)), axes))


def select(ok: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where the scalar ``ok`` else ``old``, leaf by leaf (``lax.select`` where it can:
    ``jnp.where`` is one more nested jitted function to trace per leaf)."""
    ok = jnp.asarray(ok)

    def pick(n, o):
        if ok.ndim == 0 and jnp.shape(n) == jnp.shape(o) and jnp.result_type(n) == \
                jnp.result_type(o) and isinstance(n, jax.Array) and isinstance(o, jax.Array):
            return jax.lax.select(jax.lax.broadcast(ok, jnp.shape(n)), n, o)
        return jnp.where(ok, n, o)

    return jax.tree.map(pick, new, old)


def pmean_dense(groups: Mapping[str, ConstraintGroup], measured: dict,
                axis_name: str | None) -> dict:
    """Dense groups' values averaged over ``axis_name``; per-sample ones stay on their shard."""
    if axis_name is None:
        return measured
    return {k: v if groups[k].per_sample else jax.lax.pmean(v, axis_name)
            for k, v in measured.items()}


def everywhere(ok: jax.Array, axis_name: str | None) -> jax.Array:
    """Whether ``ok`` holds on every device of ``axis_name`` (``ok`` itself without one)."""
    return ok if axis_name is None else jax.lax.pmax((~ok).astype(jnp.int32), axis_name) == 0


def is_per_sample(dual_state: Any) -> bool:
    """Whether a group's dual state holds one row per sample (an indexed group)."""
    return isinstance(dual_state, IndexedState)
