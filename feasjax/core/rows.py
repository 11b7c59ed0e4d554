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
    """Group duplicate indices in O(B log B).

    Returns:
      ``(first, is_first)``: ``first[j]`` is the smallest ``k`` with ``indices[k] ==
      indices[j]``, and ``is_first[j]`` says whether ``j`` is that position.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import unique_rows
      >>> first, is_first = unique_rows(jnp.array([4, 2, 4]))
      >>> first.tolist(), is_first.tolist()
      ([0, 1, 0], [True, True, False])
    """
    order = jnp.argsort(indices, stable=True)
    sorted_indices = indices[order]
    starts = jnp.concatenate([jnp.array([True]), sorted_indices[1:] != sorted_indices[:-1]])
    # Position (in sorted order) of the start of each run, carried forward over the run.
    run_start = jax.lax.cummax(jnp.where(starts, jnp.arange(indices.shape[0]), 0))
    first_sorted = order[run_start]
    first = jnp.zeros_like(indices).at[order].set(first_sorted)
    return first, first == jnp.arange(indices.shape[0])


def combine_duplicates(row_values: Any, indices: jax.Array) -> Any:
    """Sum the rows (leading axis ``B``) that share an index; every occurrence gets the sum.

    This is what a dense gradient does: ``d/dλ_i Σ_j λ_{idx_j} g_j`` sums over ``j`` with
    ``idx_j = i``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import combine_duplicates
      >>> combine_duplicates(jnp.array([1.0, 2.0, 3.0]), jnp.array([7, 5, 7])).tolist()
      [4.0, 2.0, 4.0]
    """
    first, _ = unique_rows(indices)
    batch = indices.shape[0]

    def combine(leaf):
        sums = jax.ops.segment_sum(leaf, first, num_segments=batch)
        return sums[first]

    return jax.tree.map(combine, row_values)


def in_range(indices: jax.Array, num_rows: int) -> jax.Array:
    """``indices`` with every value outside ``[0, num_rows)`` replaced by ``num_rows``.

    Instead of JAX's wrapping (``-1`` is the last row) or clamping, an invalid index reads as the
    fill value and is never written (``mode="drop"``), so inside ``jit`` it cannot touch a row.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import in_range
      >>> in_range(jnp.array([-1, 0, 3, 4]), 4).tolist()
      [4, 0, 3, 4]
    """
    return jnp.where((indices >= 0) & (indices < num_rows), indices, num_rows)


def gather_rows(tree: Any, indices: jax.Array) -> Any:
    """Rows ``indices`` of every leaf of ``tree``; out-of-range rows read the fill value (NaN).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import gather_rows
      >>> gather_rows({"a": jnp.arange(5.0)}, jnp.array([3, 1]))["a"].tolist()
      [3.0, 1.0]
    """
    # Out-of-range rows (negative ones included) read as the fill value (NaN for floats),
    # never as a wrapped or clamped neighbour.
    return jax.tree.map(
        lambda leaf: leaf.at[in_range(indices, leaf.shape[0])].get(mode="fill"), tree)


def scatter_rows(tree: Any, rows: Any, indices: jax.Array) -> Any:
    """Write ``rows`` (leading axis ``B``) into rows ``indices`` of ``tree``.

    Duplicate indices must carry identical rows (:func:`combine_duplicates`) so that the result
    does not depend on the scatter order; out-of-range rows are not written (:func:`in_range`).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import scatter_rows
      >>> scatter_rows(jnp.zeros(4), jnp.array([5.0, 6.0]), jnp.array([0, 2])).tolist()
      [5.0, 0.0, 6.0, 0.0]
    """
    return jax.tree.map(
        lambda leaf, row: leaf.at[in_range(indices, leaf.shape[0])].set(
            row.astype(leaf.dtype), mode="drop"),
        tree,
        rows,
    )


def apply_row_updates(params: Any, row_updates: Any, indices: jax.Array) -> Any:
    """``params[indices] += row_updates`` with set semantics, safe under duplicate indices.

    Args:
      params: dense pytree, leading axis ``N``.
      row_updates: updates of the named rows, leading axis ``B`` (from :func:`indexed`).
      indices: integer array of shape ``(B,)``.

    Returns:
      The new dense pytree; rows not named are bit-for-bit unchanged.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core.rows import apply_row_updates
      >>> apply_row_updates(jnp.ones(3), jnp.array([2.0, 2.0]), jnp.array([1, 1])).tolist()
      [1.0, 3.0, 1.0]
    """
    indices = checks.check_indices(indices, checks.leading_size(params, "params"), "indices")
    new_rows = jax.tree.map(lambda p, u: p + u, gather_rows(params, indices), row_updates)
    return scatter_rows(params, new_rows, indices)


def indexed(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Apply an element-wise optimizer only at the rows named by ``indices``.

    ``init(params)`` builds one inner state per row of the dense per-sample pytree (leading axis
    ``N``); ``update(row_grads, state, params=None, *, indices, unique_indices=False)`` takes the
    ``B`` named rows' gradients and returns their updates (leading axis ``B``). Duplicate
    indices: their gradients are summed, the row's state advances once, and every occurrence
    gets the same update; ``unique_indices=True`` skips that O(B log B) grouping for batches
    whose indices never repeat. Out-of-range rows get NaN updates and are never written.

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
        rows_params = None if params is None else gather_rows(params, indices)
        row_updates, new_rows = update_rows(inner, updates, state, indices, rows_params,
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
    """The row-level half of :func:`indexed`'s update, without writing the state back.

    A caller that decides after the update whether to keep it calls :func:`write_rows` with the
    indices masked out of range to drop the write (O(B), not an O(N) select).

    Args:
      inner: the element-wise optimizer given to :func:`indexed`.
      row_grads: gradients of the named rows, leading axis ``B``.
      state: the :class:`IndexedState`.
      indices: integer array of shape ``(B,)``, already checked.
      row_params: the named rows of the parameters, or ``None``.
      unique_indices: no index repeats, so repeated rows' gradients are not combined.

    Returns:
      ``(row_updates, new_row_states)``, both with leading axis ``B``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.core.rows import indexed, update_rows
      >>> state = indexed(optax.sgd(1.0)).init(jnp.zeros(3))
      >>> upd, _ = update_rows(optax.sgd(1.0), jnp.array([2.0]), state, jnp.array([1]))
      >>> upd.tolist()
      [-2.0]
    """
    if not unique_indices:
        row_grads = combine_duplicates(row_grads, indices)
    rows_state = gather_rows(state.inner, indices)
    if row_params is None:
        return jax.vmap(lambda g, s: inner.update(g, s))(row_grads, rows_state)
    return jax.vmap(inner.update)(row_grads, rows_state, row_params)


def write_rows(state: IndexedState, new_rows: Any, indices: jax.Array) -> IndexedState:
    """Write rows returned by :func:`update_rows` back; out-of-range indices are not written.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.core.rows import indexed, update_rows, write_rows
      >>> tx = indexed(optax.adam(0.1))
      >>> state = tx.init(jnp.zeros(3))
      >>> _, rows = update_rows(optax.adam(0.1), jnp.ones(1), state, jnp.array([2]))
      >>> write_rows(state, rows, jnp.array([2])).inner[0].count.tolist()
      [0, 0, 1]
    """
    return state._replace(inner=scatter_rows(state.inner, new_rows, indices))
