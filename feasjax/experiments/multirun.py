"""The experiment layer over devices and runs: ``feasjax demo`` on a mesh and with ``--seeds``
(one vmapped program of the engine, ``fj.train(..., runs=R)``, for all seeds).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.datasets import Dataset
from feasjax.experiments.builders import (RunConfig, build_model, evaluate_run, method_solver,
                                          model_fns, timed)
from feasjax.parallel.distributed import gather
from feasjax.parallel.layout import ShardLayout, unpad_samples
from feasjax.parallel.mesh import DATA_AXIS, data_mesh, state_partition_specs
from feasjax.parallel.sweeps import stack_runs, summarize_runs, unstack_runs
from feasjax.training.engine import train

__all__ = ["SweepResult", "run_method_sweep"]


def resolve_devices(requested: int | None, batch_size: int) -> int:
    """Devices for a run: ``requested``, or all available that divide ``batch_size``."""
    available = len(jax.devices())
    if requested is None:
        return max(d for d in range(1, available + 1) if batch_size % d == 0)
    if not isinstance(requested, int) or not 1 <= requested <= available:
        raise ValueError(f"devices must be an int in [1, {available}] (the devices available), "
                         f"got devices={requested!r}")
    if batch_size % requested:
        raise ValueError(f"the batch size {batch_size} must be divisible by devices="
                         f"{requested}")
    return requested


def sample_order_state(state: Any, layout: ShardLayout, *, runs: bool = False) -> Any:
    """A sharded state gathered to the host, per-sample leaves unpadded to sample order.

    Example:
      >>> import jax.numpy as jnp, numpy as np, optax
      >>> from feasjax import feasible_learning
      >>> from feasjax.experiments.multirun import sample_order_state
      >>> from feasjax.parallel import data_mesh, init_sharded, shard_data
      >>> _, layout = shard_data(np.arange(5.0), data_mesh(2))
      >>> fl = feasible_learning(lambda w, b: b, optax.sgd(0.1), num_samples=3, epsilon=0.1,
      ...                        axis_name="data")
      >>> state = init_sharded(fl, jnp.zeros(()), data_mesh(2), layout)
      >>> sample_order_state(state, layout).multipliers["samples"].shape
      (5,)
    """
    def fix(spec, x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # nnx RNG keys (replicated)
            return jax.random.wrap_key_data(fix(spec, jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        x = gather(x)
        if spec == jax.sharding.PartitionSpec():
            return jnp.asarray(x)
        return jnp.asarray(np.moveaxis(unpad_samples(np.moveaxis(x, 1, 0), layout), 0, 1)
                           if runs else unpad_samples(x, layout))

    specs = state_partition_specs(state, DATA_AXIS)
    is_spec = lambda s: isinstance(s, jax.sharding.PartitionSpec)  # noqa: E731
    return jax.tree.map(fix, specs, state, is_leaf=is_spec)


class SweepResult(NamedTuple):
    """Outcome of :func:`run_method_sweep`."""

    states: Any  # stacked final states (run axis first), per-sample leaves in sample order
    runs: list  # per seed: {"train": {...}, "test": {...}[, "averaged": {...}]} as run_method
    summary: dict  # mean and std over runs of every metric
    seconds: float  # training time of the whole sweep
    devices: int


def run_method_sweep(dataset: Dataset, method: str, config: RunConfig, seeds: Sequence[int], *,
                     progress: bool | str = True, label: str | None = None) -> SweepResult:
    """Train ``method`` for every seed in one vmapped program and evaluate each run.

    Run ``s`` equals ``run_method(dataset, method, config._replace(seed=s))`` on the same
    devices (same initial model, same shuffling keys); with ``config.average`` each run also
    reports its averaged model (``"averaged"``, as ``run_method`` does) and the summary its
    mean and std (``summary["averaged"]``).

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiments import RunConfig, run_method_sweep
      >>> config = RunConfig(epochs=1, devices=1)
      >>> res = run_method_sweep(load_dataset("digits"), "fl", config, [0, 1],
      ...                        progress=False)
      >>> len(res.runs), sorted(res.summary["test"]["accuracy"])
      (2, ['mean', 'std'])
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    batch = min(config.batch_size, len(dataset.y_train))
    devices = resolve_devices(config.devices, batch)
    runs = [model_fns(build_model(dataset, config._replace(seed=s)), dataset.task)
            for s in seeds]
    fns = runs[0]
    solver = method_solver(method, fns, dataset, config, batch)
    states = stack_runs([solver.init(r.params, model_state=r.model_state) for r in runs])
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    data = {"x": jnp.asarray(dataset.x_train), "y": jnp.asarray(dataset.y_train)}
    (states, _), seconds = timed(
        train, solver, states, data, epochs=config.epochs, batch_size=batch, key=keys,
        runs=len(seeds), mesh=data_mesh(devices) if devices > 1 else None,
        epsilon=config.epsilon, progress=progress, description=f"{label or method} x{len(seeds)}")
    runs = [evaluate_run(fns, *run, dataset, config)[1] for run in
            unstack_runs((states.params, states.model_state, states.primal_state))]
    return SweepResult(states, runs, summarize_runs([_numbers(r) for r in runs]), seconds,
                       devices)


def _numbers(run: dict) -> dict:
    """``run`` without its strings (the averaged model's ``"average"`` name), for summarize_runs."""
    return {k: _numbers(v) if isinstance(v, dict) else v for k, v in run.items()
            if not isinstance(v, str)}
