"""One ERM / FL / RFL run on a dataset, from configuration to per-sample losses and metrics.

The methods ``feasjax demo`` and ``feasjax train`` compare share the model, the primal optimizer,
the batch size, the epochs and the data order (the shuffling key depends on the seed only).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.datasets import Dataset
from feasjax.experiments import multirun
from feasjax.experiments.builders import (RunConfig, build_model, evaluate_run, method_solver,
                                          model_fns, timed)
from feasjax.parallel.mesh import data_mesh
from feasjax.training.engine import train

__all__ = ["MethodResult", "run_method"]


class MethodResult(NamedTuple):
    """Outcome of :func:`run_method`."""

    state: Any  # final PrimalDualState
    train_losses: np.ndarray  # per-sample losses on the training set
    test_losses: np.ndarray
    metrics: dict  # {"train": {...}, "test": {...}, "seconds": float[, "averaged": {...}]}
    history: Any  # feasjax.training.History


def run_method(dataset: Dataset, method: str, config: RunConfig, *,
               progress: bool | str = True, trainer: Callable | None = None,
               label: str | None = None, train_options: dict | None = None) -> MethodResult:
    """Train ``method`` on ``dataset`` with ``config`` and evaluate it on train and test.

    Args:
      dataset: a :class:`feasjax.data.Dataset`.
      method: ``"erm"``, ``"fl"`` or ``"rfl"``.
      config: the shared :class:`RunConfig`.
      progress: the epoch bar (``True``), plain lines (``"lines"``) or nothing (``False``), as
        in :func:`feasjax.train`.
      trainer: called like :func:`feasjax.train` (default); one device only.
      label: the progress bar's label (default: ``method``).
      train_options: more keyword arguments of :func:`feasjax.train` (checkpoints,
        ``on_nonfinite``, ...); with ``config.devices > 1`` the engine's ``mesh`` is set.

    Returns:
      A :class:`MethodResult`; its metrics also hold ``skipped_steps``, the number of steps
      skipped for non-finite values.

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiments import RunConfig, run_method
      >>> res = run_method(load_dataset("digits"), "fl", RunConfig(epochs=1),
      ...                  progress=False)
      >>> sorted(res.metrics)
      ['seconds', 'skipped_steps', 'test', 'train']
    """
    fns = model_fns(build_model(dataset, config), dataset.task)
    data = {"x": jnp.asarray(dataset.x_train), "y": jnp.asarray(dataset.y_train)}
    batch_size = min(config.batch_size, len(dataset.y_train))
    devices = multirun.resolve_devices(config.devices, batch_size)
    if trainer is not None and devices > 1:
        raise ValueError(f"a custom trainer runs on one device; got devices={devices} "
                         f"(pass devices=1, or train_options=... to feasjax.train)")
    solver = method_solver(method, fns, dataset, config, batch_size)
    options = dict(train_options or {})
    if devices > 1:  # the same program, partitioned over a mesh by the engine
        options["mesh"] = data_mesh(devices)
    (state, history), seconds = timed(
        trainer or train, solver, solver.init(fns.params, model_state=fns.model_state), data,
        epochs=config.epochs, batch_size=batch_size, key=jax.random.key(config.seed),
        epsilon=config.epsilon, progress=progress, description=label or method, **options)
    losses, metrics = evaluate_run(fns, state.params, state.model_state, state.primal_state,
                                   dataset, config)
    metrics = {"train": metrics.pop("train"), "test": metrics.pop("test"), "seconds": seconds,
               "skipped_steps": int(state.skipped), **metrics}  # then "averaged", if any
    return MethodResult(state, losses["train"], losses["test"], metrics, history)
