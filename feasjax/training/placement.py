"""Where the engine puts a run on a mesh (see ``mesh`` in :func:`feasjax.train`): per-sample
leaves sharded over the first axis, found by name; the rest replicated. Sizes the device count
does not divide are padded with rows the shuffle never draws, and cut off at the end.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.training.programs import path_names

__all__: list = []  # helpers of the engine


def auto_mesh(mesh: Mesh) -> Mesh:
    """The same devices with automatic axes: XLA partitions the program (a user's step reads
    ``multipliers[idx]`` with global indices, which explicit axes would refuse)."""
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def _rows_of(path: tuple, leaf: Any, n: int, lead: int, everything: bool) -> bool:
    """Whether ``leaf`` holds one row per sample on axis ``lead``: every data leaf, and the
    carry's leaves under ``multipliers`` or a per-sample dual state whose axis has ``n`` rows.
    A per-sample dual state is an IndexedState (fields ``inner``, ``rows``) under its group's
    name; implicit multipliers' model parameters are replicated, whatever their shape."""
    shape, names = np.shape(leaf), path_names(path)
    at = names.index("dual_states") + 2 if "dual_states" in names else len(names)
    return len(shape) > lead and shape[lead] == n and (
        everything or "multipliers" in names or names[at:at + 1] in (["inner"], ["rows"]))


def through_keys(fn: Callable, leaf: Any) -> Any:
    """``fn(leaf)``; for typed PRNG keys, on their key data (with a trailing axis)."""
    if not jnp.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
        return fn(leaf)
    return jax.random.wrap_key_data(fn(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))


def _map_rows(fn: Callable, tree: Any, n: int, lead: int, everything: bool) -> Any:
    """``fn`` applied to the leaves of ``tree`` that hold one row per sample (:func:`_rows_of`)."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: through_keys(fn, leaf) if _rows_of(
        path, leaf, n, lead, everything) else leaf, tree)


def pad_rows(tree: Any, n: int, padded: int, lead: int, everything: bool) -> Any:
    """Rows ``n .. padded - 1`` appended (zeros) to the per-sample leaves: a mesh shards only
    sizes its device count divides; the shuffle never draws the padding."""
    def pad(x):
        return jnp.pad(x, [(0, padded - n) if i == lead else (0, 0) for i in range(np.ndim(x))])

    return tree if padded == n else _map_rows(pad, tree, n, lead, everything)


def unpad_rows(tree: Any, n: int, padded: int, lead: int) -> Any:
    """The carry's per-sample rows ``n .. padded - 1`` cut off again."""
    cut = functools.partial(jax.lax.slice_in_dim, start_index=0, limit_index=n, axis=lead)
    return tree if padded == n else _map_rows(cut, tree, padded, lead, everything=False)


def row_sharding(tree: Any, n: int, mesh: Mesh, lead: int, everything: bool) -> Any:
    axis = mesh.axis_names[0]
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: NamedSharding(mesh, P(*([None] * lead), axis) if _rows_of(
            path, leaf, n, lead, everything) else P()), tree)


def place(tree: Any, sharding: Any) -> Any:
    return jax.tree.map(lambda x, s: through_keys(lambda d: jax.device_put(d, s), x), tree,
                        sharding)
