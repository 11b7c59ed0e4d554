"""The pieces of one ERM / FL / RFL run: its model, losses, solver and evaluation, shared by
:func:`feasjax.experiments.run_method` and :mod:`feasjax.experiments.multirun` so that every path
trains the same model with the same optimizers.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from feasjax.averaging.averagers import ema, lawa, swa, tail_polyak
from feasjax.averaging.schedules import swa_schedule
from feasjax.averaging.wrappers import averaged, averaged_params
from feasjax.core.dual import ascent
from feasjax.core.formulations import resilient
from feasjax.core.learning import empirical_risk, feasible_learning
from feasjax.core.solver import PrimalDual
from feasjax.data.datasets import Dataset
from feasjax.experiments.config import AVERAGES, METHODS, MODELS, RunConfig
from feasjax.metrics import summary as metrics
from feasjax.models.losses import has_model_state, per_sample_loss_fn, predict_fn, split_model
from feasjax.models.nets import CNN, MLP, ResNet

__all__ = ["ModelFns", "build_model", "model_fns", "build_primal_optimizer", "build_solver",
           "evaluate"]


def build_model(dataset: Dataset, config: RunConfig) -> nnx.Module:
    """The model of ``config.model`` sized for ``dataset``, initialised from ``config.seed``.

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiments import RunConfig, build_model
      >>> build_model(load_dataset("digits"), RunConfig()).out_features
      10
    """
    rngs = nnx.Rngs(config.seed)
    out = dataset.num_classes if dataset.task == "classification" else int(
        np.prod(dataset.y_train.shape[1:], dtype=int))
    if config.model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got model={config.model!r}")
    if config.model == "mlp":
        return MLP(int(np.prod(dataset.x_train.shape[1:])), config.hidden, out, rngs=rngs)
    if dataset.image_shape is None:
        raise ValueError(f"model={config.model!r} needs image data; dataset {dataset.name!r} "
                         f"has none")
    if config.model == "cnn":
        return CNN(dataset.image_shape, out, batch_norm=config.batch_norm,
                   dropout=config.dropout, rngs=rngs)
    return ResNet(dataset.image_shape, out, dropout=config.dropout, rngs=rngs)


class ModelFns(NamedTuple):
    """A split model and its functions (see :func:`model_fns`)."""

    params: Any  # the nnx.Param leaves
    model_state: Any  # the rest (batch statistics, RNG), or () for a parameter-only model
    train_loss: Callable  # (params, batch[, model_state]) -> losses [, new model_state]
    eval_loss: Callable  # (params, batch, model_state) -> losses, in eval mode
    predict: Callable  # (params, x, model_state) -> outputs, in eval mode
    undropped_loss: Callable  # train_loss with dropout off (BatchNorm still on the batch)

    @property
    def stateful(self) -> bool:
        """Whether the model carries state beside its parameters."""
        return has_model_state(self.model_state)

    @property
    def dual_measurement(self) -> Callable | None:
        """What FL's dual step measures: the eval-mode loss of a model with state (``None``
        without), since ``loss_i <= ε`` is meant for the model as evaluated, not its noisy,
        batch-dependent training-mode loss (one more forward pass, no backward)."""
        return self.eval_loss if self.stateful else None

    def weighted_loss(self, method: str, fl_dropout: bool = False) -> Callable:
        """The training loss of ``method``: ERM keeps its dropout, FL and RFL weight their
        losses without it (still in training mode: BatchNorm uses the batch's statistics)
        unless ``fl_dropout``; :func:`feasjax.experiments.default_fl_dropout` says why.
        """
        return self.train_loss if method == "erm" or fl_dropout else self.undropped_loss


def model_fns(model: nnx.Module, task: str, *, axis_name: str | None = None) -> ModelFns:
    """Split ``model`` and build its per-sample training and evaluation losses.

    A parameter-only model (the MLP, the CNN without BatchNorm and Dropout) gets the plain
    ``(params, batch) -> losses`` loss; a model with batch statistics or dropout gets the
    stateful one (training mode) and an eval-mode loss that uses the running statistics.

    Example:
      >>> from flax import nnx
      >>> from feasjax.experiments import model_fns
      >>> from feasjax.models import CNN
      >>> fns = model_fns(CNN((8, 8, 1), 3, batch_norm=True, rngs=nnx.Rngs(0)),
      ...                 "classification")
      >>> fns.stateful
      True
    """
    kind = "cross_entropy" if task == "classification" else "squared_error"
    graphdef, params, model_state = split_model(model)
    stateful = has_model_state(model_state)
    functions = _model_functions(graphdef, kind, stateful, axis_name)
    return ModelFns(params, model_state if stateful else (), *functions)


@functools.lru_cache(maxsize=32)
def _model_functions(graphdef: nnx.GraphDef, kind: str, stateful: bool,
                     axis_name: str | None) -> tuple[Callable, Callable, Callable, Callable]:
    """``(train_loss, eval_loss, predict, undropped_loss)``, built once per graph definition,
    so that the methods and seeds of a comparison share the compiled evaluation program."""
    predict = predict_fn(graphdef)
    if not stateful:
        loss = per_sample_loss_fn(graphdef, kind)
        return loss, lambda p, b, m: loss(p, b), lambda p, x, m: predict(p, x), loss
    return (per_sample_loss_fn(graphdef, kind, axis_name=axis_name),
            per_sample_loss_fn(graphdef, kind, train=False), predict,
            per_sample_loss_fn(graphdef, kind, axis_name=axis_name, dropout=False))


def build_primal_optimizer(config: RunConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """SGD with momentum, wrapped by the parameter averaging ``config.average`` asks for.

    The averaging windows follow the run's length: Polyak averages the second half of the
    run, LAWA the last 5 epoch-end snapshots, EMA uses decay 0.99 with the linear warm-up
    ``min(decay, (1+t)/(10+t))``, SWA averages the epoch ends of the second half with a
    cyclic learning rate (from ``lr`` down to ``lr/10`` within each epoch).

    Example:
      >>> from feasjax.experiments import RunConfig, build_primal_optimizer
      >>> from feasjax.averaging import find_averaged_states
      >>> tx = build_primal_optimizer(RunConfig(average="ema"), steps_per_epoch=10)
      >>> import jax.numpy as jnp
      >>> len(find_averaged_states(tx.init(jnp.zeros(2))))
      1
    """
    lr, average = config.learning_rate, config.average
    half = (config.epochs // 2) * steps_per_epoch
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got average={average!r}")
    if average == "swa":
        lr = swa_schedule(lr, start_step=half, swa_lr=lr, cycle_length=steps_per_epoch,
                          min_lr=lr / 10)
    sgd = optax.sgd(lr, momentum=config.momentum or None)
    averager = {"swa": lambda: swa(steps_per_epoch, half),
                "ema": lambda: ema(0.99, warmup="linear"),
                "polyak": lambda: tail_polyak(config.epochs * steps_per_epoch, 0.5),
                "lawa": lambda: lawa(min(5, config.epochs), steps_per_epoch)}.get(average)
    return sgd if averager is None else averaged(sgd, averager())


def build_solver(method: str, loss_fn: Callable, num_samples: int, config: RunConfig, *,
                 steps_per_epoch: int = 1, axis_name: str | None = None,
                 measurement_fn: Callable | None = None) -> PrimalDual:
    """The ERM, FL or RFL solver of a comparison (same primal optimizer for all).

    ``steps_per_epoch`` sizes the averaging windows of :func:`build_primal_optimizer`;
    ``axis_name`` is the data axis of the mesh path (``feasjax.parallel.mesh``); a ``loss_fn``
    of a model with state takes and returns it when the solver's ``init`` is given one;
    ``measurement_fn`` drives FL's dual step instead of the training loss (the eval-mode loss
    of a model with dropout or batch statistics).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.experiments import RunConfig, build_solver
      >>> solver = build_solver("fl", lambda p, b: b, 10, RunConfig())
      >>> solver.init(jnp.zeros(1)).multipliers["samples"].shape
      (10,)
    """
    primal = build_primal_optimizer(config, steps_per_epoch)
    if method == "erm":
        return empirical_risk(loss_fn, primal, axis_name=axis_name)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method=}")
    return feasible_learning(
        loss_fn, primal, num_samples=num_samples, epsilon=config.epsilon,
        dual_optimizer=ascent(optax.sgd(config.dual_learning_rate)),
        formulation=resilient(config.alpha) if method == "rfl" else None,
        init_multiplier=config.init_multiplier, axis_name=axis_name,
        measurement_fn=measurement_fn)


def method_solver(method: str, fns: ModelFns, dataset: Dataset, config: RunConfig,
                  batch_size: int) -> PrimalDual:
    """:func:`build_solver` of ``method`` for ``fns`` trained on ``dataset`` (the demo's run)."""
    n = len(dataset.y_train)
    return build_solver(method, fns.weighted_loss(method, config.fl_keeps_dropout), n, config,
                        steps_per_epoch=n // batch_size, measurement_fn=fns.dual_measurement)


def timed(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``, timed until the result is ready."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def evaluate(fns: ModelFns, params: Any, model_state: Any, x: jax.typing.ArrayLike,
             y: jax.typing.ArrayLike, dataset: Dataset, epsilon: float) -> tuple:
    """Per-sample losses and the metrics dict (loss summary, accuracies) on ``(x, y)``.

    The model is evaluated in eval mode (running batch statistics, no dropout).

    Returns:
      ``(losses, metrics)`` as numpy / Python floats.

    Example:
      >>> from feasjax.data import load_dataset
      >>> from feasjax.experiments import RunConfig, build_model, evaluate, model_fns
      >>> data = load_dataset("digits")
      >>> fns = model_fns(build_model(data, RunConfig()), data.task)
      >>> losses, metrics = evaluate(fns, fns.params, fns.model_state, data.x_test,
      ...                            data.y_test, data, epsilon=0.1)
      >>> losses.shape == data.y_test.shape, 0.0 <= metrics["accuracy"] <= 1.0
      (True, True)
    """
    program = _evaluation(fns.eval_loss, fns.predict, dataset.task == "classification",
                          dataset.num_classes, float(epsilon))
    losses, out = jax.device_get(program(params, model_state, jnp.asarray(x), jnp.asarray(y)))
    return np.asarray(losses), {k: float(v) for k, v in out.items()}


@functools.lru_cache(maxsize=32)
def _evaluation(eval_loss: Callable, predict: Callable, classification: bool, num_classes: int,
                epsilon: float) -> Callable:
    """One compiled program for :func:`evaluate`'s losses and metrics (per model and shapes).

    Run op by op, the metrics compiled some sixty tiny programs per split in a fresh process.
    """
    def run(params, model_state, x, y):
        losses = eval_loss(params, {"x": x, "y": y}, model_state)
        out = dict(metrics.loss_summary(losses, epsilon))
        if classification:
            logits = predict(params, x, model_state)
            out["accuracy"] = metrics.accuracy(logits, y)
            out["worst_class_accuracy"] = metrics.worst_class_accuracy(logits, y, num_classes)
        return losses, out

    return jax.jit(run)


def evaluate_run(fns: ModelFns, params: Any, model_state: Any, primal_state: Any,
                 dataset: Dataset, config: RunConfig) -> tuple[dict, dict]:
    """``({split: losses}, {split: metrics})`` on train and test; with ``config.average`` the
    metrics also hold the averaged parameters' (``"averaged": {"average", "train", "test"}``)."""
    def splits(params):
        return {s: evaluate(fns, params, model_state, getattr(dataset, f"x_{s}"),
                            getattr(dataset, f"y_{s}"), dataset, config.epsilon)
                for s in ("train", "test")}

    out = splits(params)
    metrics = {s: m for s, (_, m) in out.items()}
    if config.average != "none":
        metrics["averaged"] = {"average": config.average, **{
            s: m for s, (_, m) in splits(averaged_params(primal_state, params)).items()}}
    return {s: losses for s, (losses, _) in out.items()}, metrics
