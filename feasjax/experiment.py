"""One ERM / FL / RFL run on a dataset, from configuration to per-sample losses and metrics.

``feasjax demo`` and ``feasjax train`` are thin command-line layers over :func:`run_method`, so
the methods they compare share the model, the primal optimizer, the batch size, the epochs and
the data order (the shuffling key depends on the seed only).
"""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from feasjax import metrics, multirun
from feasjax.data import Dataset
from feasjax.dual import ascent
from feasjax.feasible import empirical_risk, feasible_learning
from feasjax.formulations import resilient
from feasjax.losses import per_sample_loss_fn, predict_fn
from feasjax.models import CNN, MLP
from feasjax.primal_dual import PrimalDual
from feasjax.training import train

METHODS = ("erm", "fl", "rfl")


class RunConfig(NamedTuple):
    """Hyper-parameters shared by every method of a comparison (defaults: the demo's)."""

    epochs: int = 30
    batch_size: int = 64
    epsilon: float = 0.1
    seed: int = 0
    learning_rate: float = 0.05
    momentum: float = 0.9
    dual_learning_rate: float = 0.1
    init_multiplier: float = 1.0
    alpha: float = 1.0  # RFL slack cost
    model: str = "mlp"  # "mlp" | "cnn"
    hidden: tuple = (64,)
    devices: int | None = None  # data-parallel devices; None: all that divide the batch size


class MethodResult(NamedTuple):
    """Outcome of :func:`run_method`."""

    state: Any  # final PrimalDualState
    train_losses: np.ndarray  # per-sample losses on the training set
    test_losses: np.ndarray
    metrics: dict  # {"train": {...}, "test": {...}, "seconds": float}
    history: Any  # feasjax.History


def build_model(dataset: Dataset, config: RunConfig) -> nnx.Module:
    """The model of ``config.model`` sized for ``dataset``, initialised from ``config.seed``.

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiment import RunConfig, build_model
      >>> build_model(load_dataset("digits"), RunConfig()).out_features
      10
    """
    rngs = nnx.Rngs(config.seed)
    out = dataset.num_classes if dataset.task == "classification" else int(
        np.prod(dataset.y_train.shape[1:], dtype=int))
    if config.model == "cnn":
        if dataset.image_shape is None:
            raise ValueError(f"model='cnn' needs image data; dataset {dataset.name!r} has none")
        return CNN(dataset.image_shape, out, rngs=rngs)
    if config.model != "mlp":
        raise ValueError(f"model must be 'mlp' or 'cnn', got model={config.model!r}")
    return MLP(int(np.prod(dataset.x_train.shape[1:])), config.hidden, out, rngs=rngs)


def build_solver(method: str, loss_fn, num_samples: int, config: RunConfig, *,
                 axis_name: str | None = None) -> PrimalDual:
    """The ERM, FL or RFL solver of a comparison (same primal optimizer for all).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.experiment import RunConfig, build_solver
      >>> solver = build_solver("fl", lambda p, b: b, 10, RunConfig())
      >>> solver.init(jnp.zeros(1)).multipliers["samples"].shape
      (10,)
    """
    primal = optax.sgd(config.learning_rate, momentum=config.momentum or None)
    if method == "erm":
        return empirical_risk(loss_fn, primal, axis_name=axis_name)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method=}")
    return feasible_learning(
        loss_fn, primal, num_samples=num_samples, epsilon=config.epsilon,
        dual_optimizer=ascent(optax.sgd(config.dual_learning_rate)),
        formulation=resilient(config.alpha) if method == "rfl" else None,
        init_multiplier=config.init_multiplier, axis_name=axis_name)


def evaluate(loss_fn, predict, params, x, y, dataset: Dataset, epsilon: float) -> tuple:
    """Per-sample losses and the metrics dict (loss summary, accuracies) on ``(x, y)``.

    Returns:
      ``(losses, metrics)`` as numpy / Python floats.
    """
    batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    losses = loss_fn(params, batch)
    out = {k: float(v) for k, v in metrics.loss_summary(losses, epsilon).items()}
    if dataset.task == "classification":
        logits = predict(params, batch["x"])
        out["accuracy"] = float(metrics.accuracy(logits, batch["y"]))
        out["worst_class_accuracy"] = float(
            metrics.worst_class_accuracy(logits, batch["y"], dataset.num_classes))
    return np.asarray(losses), out


def run_method(dataset: Dataset, method: str, config: RunConfig, *,
               progress: bool = True) -> MethodResult:
    """Train ``method`` on ``dataset`` with ``config`` and evaluate it on train and test.

    Args:
      dataset: a :class:`feasjax.data.Dataset`.
      method: ``"erm"``, ``"fl"`` or ``"rfl"``.
      config: the shared :class:`RunConfig`.
      progress: show the epoch bar.

    Returns:
      A :class:`MethodResult`.

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiment import RunConfig, run_method
      >>> res = run_method(load_dataset("digits"), "fl", RunConfig(epochs=1), progress=False)
      >>> sorted(res.metrics)
      ['seconds', 'test', 'train']
    """
    graphdef, params = nnx.split(build_model(dataset, config))
    kind = "cross_entropy" if dataset.task == "classification" else "squared_error"
    loss_fn = per_sample_loss_fn(graphdef, kind)
    predict = predict_fn(graphdef)
    data = {"x": jnp.asarray(dataset.x_train), "y": jnp.asarray(dataset.y_train)}
    batch_size = min(config.batch_size, len(dataset.y_train))
    devices = multirun.resolve_devices(config.devices, batch_size)
    start = time.perf_counter()
    if devices > 1:  # data-parallel over a mesh (feasjax.parallel)
        state, history = multirun.train_on_mesh(method, loss_fn, params, data, config, devices,
                                                batch_size=batch_size, progress=progress)
    else:
        solver = build_solver(method, loss_fn, len(dataset.y_train), config)
        state, history = train(solver, solver.init(params), data, epochs=config.epochs,
                               batch_size=batch_size, key=jax.random.key(config.seed),
                               epsilon=config.epsilon, progress=progress, description=method)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    train_losses, train_metrics = evaluate(loss_fn, predict, state.params, dataset.x_train,
                                           dataset.y_train, dataset, config.epsilon)
    test_losses, test_metrics = evaluate(loss_fn, predict, state.params, dataset.x_test,
                                         dataset.y_test, dataset, config.epsilon)
    result = {"train": train_metrics, "test": test_metrics, "seconds": seconds}
    return MethodResult(state, train_losses, test_losses, result, history)
