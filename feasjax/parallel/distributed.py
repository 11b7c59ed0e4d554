"""Multi-host data parallelism: start the runtime, load each process's samples, exact metrics."""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.metrics import summary as metrics
from feasjax.parallel.layout import ShardLayout, sample_mask, shard_counts
from feasjax.parallel.mesh import process_shards

__all__ = ["ENV_COORDINATOR", "ENV_NUM_PROCESSES", "ENV_PROCESS_ID", "initialize",
           "process_sample_range", "gather", "global_loss_summary"]

ENV_COORDINATOR = "FEASJAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "FEASJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "FEASJAX_PROCESS_ID"


def _as_int(value: Any, name: str) -> int:
    text = str(value).strip()
    if not (isinstance(value, (int, np.integer))
            or text.removeprefix("-").isdecimal() and str(int(text)) == text):
        raise ValueError(f"{name} must be an integer, got {name}={value!r}")
    return int(value)


def check_process_args(coordinator_address: str | None, num_processes: Any, process_id: Any
                       ) -> tuple[str, int, int]:
    """Validate ``host:port``, ``num_processes >= 1`` and ``0 <= process_id < num_processes``."""
    num = _as_int(num_processes, "num_processes")
    pid = _as_int(process_id, "process_id")
    if num < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes=}")
    if not 0 <= pid < num:
        raise ValueError(f"process_id must be in [0, {num}) (num_processes={num}), got "
                         f"{process_id=}")
    host, _, port = str(coordinator_address or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator_address must be 'host:port' (process 0's address), got "
                         f"{coordinator_address=}")
    return str(coordinator_address), num, pid


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids: Any = None,
               cpu_collectives: str | None = "gloo", initialization_timeout: int = 120) -> None:
    """Start JAX's multi-process runtime after checking the arguments (call it before any other
    JAX call). Arguments left ``None`` are read from ``FEASJAX_COORDINATOR_ADDRESS``,
    ``FEASJAX_NUM_PROCESSES`` and ``FEASJAX_PROCESS_ID`` (set by ``python -m
    feasjax.parallel.launch``); with none set, JAX detects the cluster. Raises if the started
    runtime's process count or index differ.

    Args:
      coordinator_address: ``host:port`` of process 0 (reachable from every process).
      num_processes: the number of processes.
      process_id: this process's rank in ``[0, num_processes)``.
      local_device_ids: restrict this process to these local devices.
      cpu_collectives: ``jax_cpu_collectives_implementation`` (``"gloo"``, ``"mpi"``) so that
        CPU devices of different processes can all-reduce; ``None`` leaves it.
      initialization_timeout: seconds to wait for all processes.

    Example:
      >>> from feasjax.parallel import initialize
      >>> initialize("127.0.0.1:1234", num_processes=2, process_id=2)
      Traceback (most recent call last):
      ...
      ValueError: process_id must be in [0, 2) (num_processes=2), got process_id=2
    """
    given = (coordinator_address, num_processes, process_id)
    env = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)
    args = tuple(g if g is not None else os.environ.get(e) for g, e in zip(given, env))
    checked = None if all(a is None for a in args) else check_process_args(*args)
    if cpu_collectives is not None:  # before the runtime starts, or CPUs cannot all-reduce
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(*(checked or ()), local_device_ids=local_device_ids,
                               initialization_timeout=initialization_timeout)
    if checked and (jax.process_count(), jax.process_index()) != checked[1:]:
        _, num, pid = checked
        raise RuntimeError(f"this process was started as process {pid} of {num}, but the "
                           f"runtime reports process {jax.process_index()} of "
                           f"{jax.process_count()}: every process must get the same "
                           f"num_processes and a distinct process_id")


def process_sample_range(layout: ShardLayout, mesh: Mesh) -> tuple[int, int]:
    """The sample ids ``[lo, hi)`` this process must load (those of its devices' blocks).

    Example:
      >>> from feasjax.parallel import process_sample_range, shard_layout, data_mesh
      >>> process_sample_range(shard_layout(10, 2), data_mesh(2))
      (0, 10)
    """
    shards, counts = process_shards(mesh), shard_counts(layout)
    lo = int(counts[: shards.start].sum())
    return lo, lo + int(counts[shards.start: shards.stop].sum())


def gather(tree: Any) -> Any:
    """Every leaf as a host numpy array holding the global value, on every process.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.parallel import gather
      >>> gather({"a": jnp.arange(3)})["a"].tolist()
      [0, 1, 2]
    """
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def global_loss_summary(losses: jax.Array, epsilon: float, layout: ShardLayout) -> dict:
    """:func:`feasjax.metrics.loss_summary` of a sample-sharded loss vector, exact and global:
    padding masked out, the vector gathered onto every device and summarised there.

    Args:
      losses: per-sample losses in the padded layout, shape ``(D * local_size,)``.
      epsilon: the bound for the feasible fraction.
      layout: the :class:`feasjax.parallel.ShardLayout`.

    Returns:
      A dict of Python floats with the keys of ``feasjax.metrics.LOSS_SUMMARY_KEYS``.

    Example:
      >>> import numpy as np
      >>> from feasjax.parallel import global_loss_summary, data_mesh, shard_data
      >>> losses, layout = shard_data(np.arange(5.0), data_mesh(2))
      >>> global_loss_summary(losses, 2.0, layout)["max_loss"]
      4.0
    """
    mask_np = sample_mask(layout)
    if not isinstance(losses.sharding, NamedSharding):
        return {k: float(v) for k, v in metrics.loss_summary(losses, epsilon, mask_np).items()}
    mask = jax.make_array_from_callback(mask_np.shape, losses.sharding, lambda i: mask_np[i])
    everywhere = NamedSharding(losses.sharding.mesh, P())

    @jax.jit
    def summary(values, keep):
        values, keep = jax.sharding.reshard((values, keep), everywhere)
        return metrics.loss_summary(values, epsilon, keep)

    return {k: float(v) for k, v in summary(losses, mask).items()}
