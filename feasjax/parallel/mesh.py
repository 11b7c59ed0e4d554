"""Data-parallel FL on a 1-D mesh: device ``d`` owns a block of samples and their multipliers,
draws its ``B / D`` minibatch there and all-reduces only the primal gradients, so a step equals
the one-device step on the union of the local minibatches (``data_parallel_epoch`` shows the
whole flow)."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.core import checks
from feasjax.core.rows import IndexedState
from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.parallel.layout import ShardLayout, pad_samples, shard_layout
from feasjax.training.loop import EpochInfo, epoch_fn
from feasjax.training.placement import through_keys

__all__ = ["DATA_AXIS", "data_mesh", "state_partition_specs", "shard_data", "replicate",
           "init_sharded", "local_epoch_fn", "data_parallel_epoch"]

DATA_AXIS = "data"


def data_mesh(num_devices: int | None = None, *, axis_name: str = DATA_AXIS,
              devices: list | None = None) -> Mesh:
    """A 1-D mesh over ``num_devices`` devices (default: all, across every process), ordered by
    (process, id) so that each process owns a contiguous range of the sample blocks.

    Example:
      >>> from feasjax.parallel import data_mesh
      >>> dict(data_mesh(2).shape)
      {'data': 2}
    """
    devices = sorted(devices or jax.devices(), key=lambda d: (d.process_index, d.id))
    num_devices = len(devices) if num_devices is None else num_devices
    if not isinstance(num_devices, int) or not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices must be an int in [1, {len(devices)}] (the devices "
                         f"available), got {num_devices=}")
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError(f"with several processes the mesh must span all {len(devices)} "
                         f"devices, got {num_devices=}")
    return jax.make_mesh((num_devices,), (axis_name,), axis_types=(AxisType.Explicit,),
                         devices=devices[:num_devices])


def mesh_axis(mesh: Mesh) -> str:
    """The one axis name of a 1-D mesh."""
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be 1-D (one data axis), got axes {mesh.axis_names}")
    return mesh.axis_names[0]


def state_partition_specs(state: PrimalDualState, axis_name: str = DATA_AXIS, *,
                          params: Any = None, primal_state: Any = None) -> PrimalDualState:
    """The ``PartitionSpec`` tree of a state: indexed groups' multipliers and dual states
    ``P(axis_name)``, the rest ``P()`` (``params``/``primal_state`` spec trees override).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import feasible_learning
      >>> from feasjax.parallel import state_partition_specs
      >>> fl = feasible_learning(lambda w, b: b * w, optax.sgd(0.1), num_samples=4,
      ...                        epsilon=0.1)
      >>> specs = state_partition_specs(fl.init(jnp.zeros(())))
      >>> specs.multipliers, specs.params
      ({'samples': P('data',)}, P())
    """
    specs = jax.tree.map(lambda _: P(), state)  # model_state too: pmean keeps it equal
    per_sample = {k: P(axis_name) if isinstance(s, IndexedState) else P()
                  for k, s in state.dual_states.items()}
    return specs._replace(
        params=specs.params if params is None else params,
        primal_state=specs.primal_state if primal_state is None else primal_state,
        multipliers={k: per_sample[k] for k in state.multipliers},
        dual_states={k: jax.tree.map(lambda _, spec=per_sample[k]: spec, s)
                     for k, s in state.dual_states.items()})


def process_shards(mesh: Mesh) -> range:
    """The contiguous range of mesh positions (sample blocks) whose devices this process owns."""
    mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
    if not mine or mine != list(range(mine[0], mine[-1] + 1)):
        raise ValueError(f"this process must own a contiguous, non-empty range of the mesh's "
                         f"devices (build the mesh with data_mesh), got positions {mine}")
    return range(mine[0], mine[-1] + 1)


def shard_data(data: Any, mesh: Mesh, *, num_samples: int | None = None
               ) -> tuple[Any, ShardLayout]:
    """Pad and shard a dataset along the mesh's data axis; each process passes only its part.

    Args:
      data: pytree of host arrays with a leading sample axis: this process's samples
        (``feasjax.parallel.process_sample_range``), all of them with one process.
      mesh: a 1-D mesh from :func:`data_mesh`.
      num_samples: the global ``N`` (required with several processes).

    Returns:
      ``(data, layout)``: global arrays of ``layout.padded_size`` rows sharded ``P("data")``.

    Example:
      >>> import numpy as np
      >>> from feasjax.parallel import data_mesh, shard_data
      >>> data, layout = shard_data({"x": np.arange(10.0)}, data_mesh(4))
      >>> data["x"].shape, layout.local_size
      ((12,), 3)
    """
    if num_samples is None:
        if jax.process_count() > 1:
            raise ValueError("num_samples (the global dataset size) is required when several "
                             "processes each pass their own part of the data")
        num_samples = checks.leading_size(data, "data")
    layout = shard_layout(num_samples, mesh.size)
    local = pad_samples(data, layout, process_shards(mesh))
    sharding = NamedSharding(mesh, P(mesh_axis(mesh)))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        sharding, x, (layout.padded_size,) + x.shape[1:]), local), layout


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree (identical on every process) replicated on every device of ``mesh``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.parallel import data_mesh, replicate
      >>> replicate(jnp.ones(2), data_mesh(2)).sharding.is_fully_replicated
      True
    """
    sharding = NamedSharding(mesh, P())

    def place(x):
        return jax.make_array_from_callback(np.shape(x), sharding,
                                            lambda idx, x=np.asarray(x): x[idx])

    return jax.tree.map(lambda x: through_keys(place, x), tree)  # nnx RNG keys: their data


def init_sharded(solver: PrimalDual, params: Any, mesh: Mesh, layout: ShardLayout, *,
                 runs: bool = False, model_state: Any = ()) -> PrimalDualState:
    """Initialise a state whose per-sample leaves are built on, and stay on, their devices.

    Args:
      solver: built with ``num_samples=layout.local_size`` and ``axis_name`` the mesh axis.
      params: initial parameters (identical on every process).
      mesh, layout: the 1-D data mesh and the layout of :func:`shard_data`.
      runs: ``params`` (and ``model_state``) carry a leading run axis, so does the state.
      model_state: the model's non-parameter state for a stateful solver (replicated).

    Returns:
      A :class:`feasjax.PrimalDualState` sharded as :func:`state_partition_specs` says.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import feasible_learning
      >>> from feasjax.parallel import shard_layout, data_mesh, init_sharded
      >>> layout = shard_layout(8, 2)
      >>> fl = feasible_learning(lambda w, b: b * w, optax.sgd(0.1),
      ...                        num_samples=layout.local_size, epsilon=0.1,
      ...                        axis_name="data")
      >>> state = init_sharded(fl, jnp.zeros(()), data_mesh(2), layout)
      >>> state.multipliers["samples"].shape
      (8,)
    """
    axis = mesh_axis(mesh)
    params, model_state = replicate((params, model_state), mesh)

    init = lambda p, m: solver.init(p, model_state=m)  # noqa: E731
    init = jax.vmap(init) if runs else init
    abstract = jax.eval_shape(init, params, model_state)
    specs = state_partition_specs(abstract, axis)
    for name, lam in abstract.multipliers.items():
        if specs.multipliers[name] != P() and lam.shape[-1:] != (layout.local_size,):
            raise ValueError(f"build the solver with num_samples=layout.local_size="
                             f"{layout.local_size} (rows per device), got multipliers[{name!r}] "
                             f"of shape {lam.shape}")
    specs = _with_run_axis(specs) if runs else specs
    return jax.jit(jax.shard_map(init, mesh=mesh, in_specs=(P(), P()), out_specs=specs,
                                 check_vma=False))(params, model_state)


def local_epoch_fn(solver: PrimalDual, batch_size: int, layout: ShardLayout, *,
                   axis_name: str = DATA_AXIS, loss_of: Callable | None = None) -> Callable:
    """The per-device epoch: :func:`feasjax.epoch_fn` drawing ``B / D`` samples per step from
    the device's own block (``fold_in(key, axis_index)``), never from padding.

    Example:
      >>> from feasjax.parallel import shard_layout, local_epoch_fn
      >>> callable(local_epoch_fn(None, 4, shard_layout(8, 2)))
      True
    """
    if not isinstance(batch_size, int) or batch_size % layout.num_shards:
        raise ValueError(f"batch_size must be an int divisible by the number of devices "
                         f"{layout.num_shards}, got {batch_size=}")
    local_batch = batch_size // layout.num_shards
    if not 1 <= local_batch <= layout.min_count:
        raise ValueError(f"batch_size must be in [{layout.num_shards}, "
                         f"{layout.num_shards * layout.min_count}] ({layout.num_shards} devices "
                         f"x at most {layout.min_count} samples each), got {batch_size=}")
    steps = layout.min_count // local_batch
    base, rem = divmod(layout.num_samples, layout.num_shards)

    def sampler(key: jax.Array, n: int) -> jax.Array:
        shard = jax.lax.axis_index(axis_name)
        perm = jax.random.permutation(jax.random.fold_in(key, shard), n)
        if rem:  # padded blocks: real rows (local id < count) first, in random order
            perm = perm[jnp.argsort(perm >= base + (shard < rem), stable=True)]
        return perm[: steps * local_batch].reshape(steps, local_batch).astype(jnp.int32)

    return epoch_fn(solver, local_batch, loss_of=loss_of, sampler=sampler, unique_indices=True)


def _with_run_axis(specs: Any) -> Any:
    return jax.tree.map(lambda s: P(None, *s), specs)  # PartitionSpecs are pytree leaves


def data_parallel_epoch(solver: PrimalDual | Callable[[Any], PrimalDual], batch_size: int,
                        mesh: Mesh, layout: ShardLayout, *, loss_of: Callable | None = None,
                        runs: bool = False) -> Callable:
    """A compiled ``(state, data, key) -> (state, EpochInfo)`` for ``train(epoch_runner=...)``.

    Args:
      solver: as in :func:`init_sharded`.
      batch_size: the global minibatch ``B`` (``B / D`` per device).
      mesh, layout: the 1-D data mesh and the data's layout.
      loss_of: see :func:`feasjax.epoch_fn`.
      runs: vectorise over a leading run axis of state and key (a sweep); ``solver`` may then
        be ``hparams -> PrimalDual``, the runner ``(states, data, keys, hparams=None)``.

    Returns:
      A jitted runner (state donated). ``EpochInfo.indices`` are **local** (map them with
      :func:`feasjax.parallel.global_indices`); ``losses`` align with them; ``ok`` is global.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, optax
      >>> from feasjax import feasible_learning, per_example
      >>> from feasjax.parallel import data_mesh, data_parallel_epoch
      >>> from feasjax.parallel import init_sharded, shard_data
      >>> mesh = data_mesh(2)
      >>> data, layout = shard_data(np.arange(8.0), mesh)
      >>> loss = per_example(lambda w, y: (w - y) ** 2)
      >>> fl = feasible_learning(loss, optax.sgd(0.1), num_samples=layout.local_size,
      ...                        epsilon=1.0, axis_name="data")
      >>> run = data_parallel_epoch(fl, 4, mesh, layout)
      >>> state, info = run(init_sharded(fl, jnp.zeros(()), mesh, layout), data,
      ...                   jax.random.key(0))
      >>> info.indices.shape, state.multipliers["samples"].sharding.spec
      ((2, 4), P('data',))
    """
    axis = mesh_axis(mesh)
    if layout.num_shards != mesh.size:
        raise ValueError(f"layout has {layout.num_shards} shards but the mesh has {mesh.size} "
                         f"devices")
    local_epoch_fn(None, batch_size, layout)  # validates batch_size now, not at trace time

    def local(state, data, key, hparams=None):
        this = solver if isinstance(solver, PrimalDual) else solver(hparams)
        epoch = local_epoch_fn(this, batch_size, layout, axis_name=axis, loss_of=loss_of)
        return epoch(state, data, key)

    if runs:
        local = jax.vmap(local, in_axes=(0, None, 0, 0))

    def run(state, data, key, hparams=None):
        specs = state_partition_specs(state, axis)  # the run axis leaves the structure as is
        record = P(None, axis)
        if runs:
            specs, record = _with_run_axis((specs, record))
        info_specs = EpochInfo(indices=record, losses=record, ok=P())
        # check_vma=False: the step averages gradients itself with one pmean (as under pmap);
        # with vma checking, transposes would already sum the replicated parameters' grads.
        return jax.shard_map(local, mesh=mesh, in_specs=(specs, P(axis), P(), P()),
                             out_specs=(specs, info_specs), check_vma=False)(state, data, key,
                                                                             hparams)

    return jax.jit(run, donate_argnums=0)
