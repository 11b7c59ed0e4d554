"""The data-parallel epoch through ``jax.pmap`` (in maintenance mode): the mesh path's epoch on
the same global layout, moved through the host (O(N) copies per epoch; compatibility only)."""
from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from feasjax.core.solver import PrimalDual
from feasjax.parallel.layout import ShardLayout
from feasjax.parallel.mesh import DATA_AXIS, local_epoch_fn, state_partition_specs
from feasjax.training.loop import EpochInfo

__all__ = ["pmap_epoch"]


def _to_devices(x: Any, spec: P, num_devices: int) -> np.ndarray:
    x = np.asarray(jax.device_get(x))
    if spec == P():
        return np.broadcast_to(x, (num_devices,) + x.shape)
    return x.reshape((num_devices, -1) + x.shape[1:])


def _records(x: jax.Array) -> jax.Array:  # (D, steps, B/D) -> (steps, B), device-major blocks
    return x.transpose(1, 0, 2).reshape(x.shape[1], -1)


def pmap_epoch(solver: PrimalDual, batch_size: int, layout: ShardLayout, *,
               devices: list | None = None, axis_name: str = DATA_AXIS,
               loss_of: Callable | None = None) -> Callable:
    """The epoch of :func:`feasjax.parallel.data_parallel_epoch` via ``jax.pmap`` (in
    maintenance mode; prefer the mesh path).

    Args:
      solver, batch_size, loss_of: as in :func:`feasjax.parallel.data_parallel_epoch`.
      layout: the :class:`feasjax.parallel.ShardLayout` of the (padded) data.
      devices: the ``D`` devices (default: the first ``D`` local devices).
      axis_name: the solver's axis name.

    Returns:
      ``(state, data, key) -> (state, EpochInfo)`` on global-layout states and padded data
      (as :func:`feasjax.parallel.shard_data` makes), records as the mesh runner's.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, optax
      >>> from feasjax import feasible_learning, per_example
      >>> from feasjax.parallel import data_mesh, init_sharded, shard_data, pmap_epoch
      >>> data, layout = shard_data(np.arange(8.0), data_mesh(2))
      >>> loss = per_example(lambda w, y: (w - y) ** 2)
      >>> fl = feasible_learning(loss, optax.sgd(0.1), num_samples=layout.local_size,
      ...                        epsilon=1.0, axis_name="data")
      >>> state = init_sharded(fl, jnp.zeros(()), data_mesh(2), layout)
      >>> state, info = pmap_epoch(fl, 4, layout)(state, data, jax.random.key(0))
      >>> state.multipliers["samples"].shape, info.indices.shape
      ((8,), (2, 4))
    """
    num = layout.num_shards
    devices = list(devices or jax.local_devices()[:num])
    if len(devices) != num:
        raise ValueError(f"pmap_epoch needs {num} devices (layout.num_shards), got "
                         f"{len(devices)}")
    local = local_epoch_fn(solver, batch_size, layout, axis_name=axis_name, loss_of=loss_of)
    mapped = jax.pmap(local, axis_name, in_axes=(0, 0, None), devices=devices,
                      donate_argnums=0)

    def run(state, data, key):
        specs = state_partition_specs(state, axis_name)
        stacked = jax.tree.map(lambda s, x: _to_devices(x, s, num), specs, state)
        data = jax.tree.map(lambda x: _to_devices(x, P(axis_name), num), data)
        state, info = mapped(stacked, data, key)
        state = jax.tree.map(lambda s, x: x[0] if s == P() else x.reshape((-1,) + x.shape[2:]),
                             specs, state)
        return state, EpochInfo(indices=_records(info.indices), losses=_records(info.losses),
                                ok=info.ok[0])

    return run
