"""Indexed transformations: run an element-wise Optax optimizer on the rows a minibatch names.

:func:`indexed` keeps a dense state (leading axis ``N``) but gathers, updates and scatters only
the ``B`` named rows: O(B) work per step when the state is donated. Every row has its own inner
state, counters included, so Adam's bias correction and nuPI's first step are per row and rows
never observed are never touched (unlike a dense optimizer fed zero gradients).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from feasjax.core import checks

__all__ = ["IndexedState", "indexed"]


class IndexedState(NamedTuple):
    """State of :func:`indexed`."""

    inner: Any  # inner optimizer state, every leaf with leading axis N (one row per sample)
    # shape=(N,), bool, never read: its shape is N, the range of valid indices, also when
    # `inner` has no leaves (sgd); a leaf, not an int, so that it shards with the rows.
    rows: jax.Array

    @property
    def inner_state(self) -> Any:
        """The inner optimizer's state (``inner``), in optax's vocabulary."""
        return self.inner


def unique_rows(indices: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(first, is_first)`` in O(B log B): ``first[j]`` is the smallest ``k`` with
    ``indices[k] == indices[j]``; ``is_first[j]`` whether ``j == first[j]``."""
    order = jnp.argsort(indices, stable=True)
    sorted_indices = indices[order]
    starts = jnp.concatenate([jnp.array([True]), sorted_indices[1:] != sorted_indices[:-1]])
    # Position (in sorted order) of the start of each run, carried forward over the run.
    run_start = jax.lax.cummax(jnp.where(starts, jnp.arange(indices.shape[0]), 0))
    first_sorted = order[run_start]
    first = jnp.zeros_like(indices).at[order].set(first_sorted)
    return first, first == jnp.arange(indices.shape[0])


def combine_duplicates(row_values: Any, indices: jax.Array) -> Any:
    """Sum the rows (leading axis ``B``) that share an index; every occurrence gets the sum,
    as a dense gradient of ``Σ_j λ_{idx_j} g_j`` would."""
    first, _ = unique_rows(indices)
    return jax.tree.map(
        lambda leaf: jax.ops.segment_sum(leaf, first, num_segments=indices.shape[0])[first],
        row_values)


def in_range(indices: jax.Array, num_rows: int) -> jax.Array:
    """``indices`` with values outside ``[0, num_rows)`` set to ``num_rows``: read as the fill
    value and never written (``mode="drop"``), instead of JAX's wrapping of ``-1``."""
    return jnp.where((indices >= 0) & (indices < num_rows), indices, num_rows)


def gather_rows(tree: Any, indices: jax.Array) -> Any:
    """Rows ``indices`` of every leaf of ``tree``; out-of-range rows read the fill value (NaN)."""
    return jax.tree.map(
        lambda leaf: leaf.at[in_range(indices, leaf.shape[0])].get(mode="fill"), tree)


def scatter_rows(tree: Any, rows: Any, indices: jax.Array) -> Any:
    """Write ``rows`` (leading axis ``B``) into rows ``indices`` of ``tree``; out-of-range rows
    are not written. Duplicate indices must carry identical rows (:func:`combine_duplicates`)."""
    return jax.tree.map(lambda leaf, row: leaf.at[in_range(indices, leaf.shape[0])].set(
        row.astype(leaf.dtype), mode="drop"), tree, rows)


def apply_row_updates(params: Any, row_updates: Any, indices: jax.Array) -> Any:
    """``params[indices] += row_updates`` (leading axes ``N`` and ``B``, updates from
    :func:`indexed`) with set semantics, so a duplicate index adds its update once; rows not
    named are bit-for-bit unchanged."""
    indices = checks.check_indices(indices, checks.leading_size(params, "params"), "indices")
    new_rows = jax.tree.map(lambda p, u: p + u, gather_rows(params, indices), row_updates)
    return scatter_rows(params, new_rows, indices)


def indexed(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Apply an element-wise optimizer only at the rows named by ``indices``.

    ``init(params)`` builds one inner state per row of the dense per-sample pytree (leading axis
    ``N``); ``update(row_grads, state, params=None, *, indices, unique_indices=False)`` takes the
    ``B`` named rows' gradients and returns their updates (leading axis ``B``). A duplicate
    index sums its gradients, advances its row's state once and gets one update everywhere
    (``unique_indices=True`` skips that O(B log B) grouping). Out-of-range rows get NaN
    updates and are never written.

    Args:
      inner: an element-wise optimizer (per-element or scalar state: sgd, momentum, adam,
        rmsprop, :func:`feasjax.nupi`, :func:`feasjax.optimistic`).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` that needs the extra arg ``indices``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.core import indexed
      >>> tx = indexed(optax.sgd(0.5))
      >>> lam, idx = jnp.zeros(4), jnp.array([1, 3])
      >>> upd, state = tx.update(jnp.array([1.0, 2.0]), tx.init(lam), indices=idx)
      >>> lam.at[idx].add(upd).tolist()  # the rows' updates, applied to their rows
      [0.0, -0.5, 0.0, -1.0]
    """

    def init_fn(params):
        num_rows = checks.leading_size(params, "params")
        # Filled on the host: no program to compile at init (see dual_step.zero_count).
        return IndexedState(inner=jax.vmap(inner.init)(params),
                            rows=jax.device_put(np.zeros((num_rows,), np.bool_)))

    def update_fn(updates, state, params=None, *, indices, unique_indices=False, **extra_args):
        del extra_args
        num_rows = checks.leading_size(state.rows if params is None else params, "params")
        indices = checks.check_indices(indices, num_rows, "indices")
        checks.check_leading_size(updates, indices.shape[0], "updates")
        row_updates, new_rows = update_rows(inner, updates, state, indices,
                                            gather_rows(params, indices),  # None stays None
                                            unique_indices=unique_indices)
        # Inside jit the range cannot raise: out-of-range rows get NaN updates (loud, and
        # never written back) rather than a silently dropped or clamped write.
        valid = (indices >= 0) & (indices < num_rows)
        row_updates = jax.tree.map(
            lambda u: jnp.where(valid.reshape((-1,) + (1,) * (u.ndim - 1)), u, jnp.nan),
            row_updates)
        return row_updates, write_rows(state, new_rows, indices)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def update_rows(
    inner: optax.GradientTransformation,
    row_grads: Any,
    state: IndexedState,
    indices: jax.Array,
    row_params: Any = None,
    *,
    unique_indices: bool = False,
) -> tuple[Any, Any]:
    """``(row_updates, new_row_states)`` (leading axis ``B``) of :func:`indexed`'s update for
    checked ``indices``, not written back: a caller that drops the step passes the indices
    masked out of range to :func:`write_rows` (O(B), not an O(N) select)."""
    if not unique_indices:
        row_grads = combine_duplicates(row_grads, indices)
    return jax.vmap(inner.update)(row_grads, gather_rows(state.inner, indices), row_params)


def write_rows(state: IndexedState, new_rows: Any, indices: jax.Array) -> IndexedState:
    """Write rows returned by :func:`update_rows` back; out-of-range indices are not written."""
    return state._replace(inner=scatter_rows(state.inner, new_rows, indices))
