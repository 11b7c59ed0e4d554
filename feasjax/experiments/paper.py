"""The paper's experiments: data, models, optimizers and solvers of a :class:`PaperPreset`, and
one vmapped program per method that trains every seed (``fj.train(..., runs=R)``).

Methods (Ramirez et al., "Feasible Learning", AISTATS 2025): ``erm``; ``cserm``, ERM on the
clamped squared loss ``max(0, loss_i - ε)²`` (the paper's baseline); ``fl``, one multiplier per
sample from 0 with nuPI ascent, dual step before the primal one and the Lagrangian summed over
the minibatch as Cooper does (``reduction="sum"``); ``rfl``, FL with the resilient relaxation.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from feasjax.core.dual import nupi
from feasjax.core.formulations import resilient
from feasjax.core.learning import empirical_risk, feasible_learning
from feasjax.data.datasets import Dataset
from feasjax.experiments.builders import ModelFns, model_fns, timed
from feasjax.experiments.presets import DATA_FILES, PaperPreset
from feasjax.metrics.tensorboard import EventLog
from feasjax.models.nets import MLP, ResNet
from feasjax.parallel.sweeps import stack_runs, unstack_runs
from feasjax.training.engine import train

__all__: list = []  # the runner of feasjax paper (presets: feasjax.experiments.presets)


def load_paper_data(preset: PaperPreset, seed: int, data_dir: str | None = None) -> Dataset:
    """The preset's data: two moons drawn from ``seed``, or the arrays of ``data_dir``.

    ``data_dir`` holds ``x_train.npy`` ``(N, H, W, C)`` uint8 images, ``y_train.npy`` ``(N,)``
    int labels (CIFAR-10) or float targets (UTKFace, as the bound ``loss_bound`` means them),
    and ``x_test.npy``, ``y_test.npy`` alike; images are scaled with the train set's channel
    means and standard deviations.
    """
    if preset.dataset == "two_moons":
        from sklearn.datasets import make_moons

        rng = np.random.RandomState(seed)
        (xa, ya), (xb, yb) = (make_moons(n, noise=preset.noise, random_state=rng)
                              for n in (preset.num_train, preset.num_test))
        return Dataset(xa.astype(np.float32), ya.astype(np.int32), xb.astype(np.float32),
                       yb.astype(np.int32), "classification", 2, "two_moons")
    missing = [f for f in DATA_FILES if not os.path.isfile(os.path.join(data_dir or "", f))]
    if data_dir is None or missing:
        raise FileNotFoundError(
            f"{preset.dataset} needs --data-dir DIR with {', '.join(DATA_FILES)} (images "
            f"(N, H, W, C) uint8, labels (N,)); {data_dir or 'no --data-dir'} lacks "
            f"{', '.join(missing)}")
    x_tr, y_tr, x_te, y_te = (np.load(os.path.join(data_dir, f)) for f in DATA_FILES)
    x_tr, y_tr = x_tr[:preset.num_train], y_tr[:preset.num_train]
    x_te, y_te = x_te[:preset.num_test], y_te[:preset.num_test]
    mean, std = x_tr.mean((0, 1, 2)), x_tr.std((0, 1, 2)) + 1e-6
    scale = lambda x: ((x - mean) / std).reshape(len(x), -1).astype(np.float32)  # noqa: E731
    classification = preset.task == "classification"
    cast = (lambda y: y.astype(np.int32)) if classification else (
        lambda y: y.astype(np.float32).reshape(len(y)))
    return Dataset(scale(x_tr), cast(y_tr), scale(x_te), cast(y_te), preset.task,
                   int(y_tr.max()) + 1 if classification else 0, preset.dataset,
                   image_shape=tuple(x_tr.shape[1:]))


def _model(preset: PaperPreset, data: Dataset, seed: int) -> nnx.Module:
    rngs, out, w = nnx.Rngs(seed), max(data.num_classes, 1), preset.width
    if preset.model == "mlp":
        return MLP(data.x_train.shape[1], preset.hidden, out, rngs=rngs)
    return ResNet(data.image_shape, out, widths=(w, 2 * w, 4 * w, 8 * w), blocks=(2, 2, 2, 2),
                  rngs=rngs)


def learning_rate_fn(preset: PaperPreset, method: str, total_steps: int) -> Callable:
    """``method``'s primal learning rate at a step: constant, or cosine decay to 0 over the run."""
    learning_rate = preset.cserm_learning_rate if method == "cserm" else preset.learning_rate
    if preset.schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
    if preset.schedule != "constant":
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {preset.schedule=}")
    return optax.constant_schedule(learning_rate)


def clamped_squared(loss_fn: Callable, epsilon: float) -> Callable:
    """CSERM's per-sample loss ``max(0, loss_i - ε)²`` (model state passed through)."""
    def loss(*args):
        out = loss_fn(*args)
        stateful = isinstance(out, tuple)
        clamped = jnp.square(jnp.maximum((out[0] if stateful else out) - epsilon, 0.0))
        return (clamped, *out[1:]) if stateful else clamped

    return loss


def build_paper_solver(method: str, fns: ModelFns, num_samples: int, preset: PaperPreset,
                       lr: Callable):
    """The ERM, CSERM, FL or RFL solver of ``preset`` (see the module docstring)."""
    if preset.optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {preset.optimizer=}")
    # torch's SGD adds the decay to the gradient before the momentum.
    primal = (optax.adamw(lr, weight_decay=preset.weight_decay) if preset.optimizer == "adamw"
              else optax.chain(optax.add_decayed_weights(preset.weight_decay),
                               optax.sgd(lr, momentum=preset.momentum or None)))
    if method == "erm":
        return empirical_risk(fns.train_loss, primal)
    if method == "cserm":
        return empirical_risk(clamped_squared(fns.train_loss, preset.epsilon), primal)
    if method not in ("fl", "rfl"):
        raise ValueError(f"method must be erm, cserm, fl or rfl, got {method=}")
    return feasible_learning(
        fns.train_loss, primal, num_samples=num_samples, epsilon=preset.epsilon,
        dual_optimizer=nupi(preset.dual_learning_rate), scheme="dual_then_primal",
        reduction="sum", init_multiplier=preset.init_multiplier,
        formulation=resilient(preset.rfl_alpha) if method == "rfl" else None)


@functools.lru_cache(maxsize=16)
def _chunk_program(eval_loss: Callable, predict: Callable, classification: bool) -> Callable:
    def run(params, model_state, x, y):
        losses = eval_loss(params, {"x": x, "y": y}, model_state)
        if not classification:
            return losses, jnp.zeros_like(losses)
        return losses, (jnp.argmax(predict(params, x, model_state), -1) == y).astype(jnp.float32)

    return jax.jit(run)


def split_losses(fns: ModelFns, params: Any, model_state: Any, x: np.ndarray, y: np.ndarray,
                 classification: bool, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode per-sample losses and correctness on ``(x, y)``, in padded chunks (one program
    whatever the split's size, and CIFAR-sized splits fit in memory)."""
    program = _chunk_program(fns.eval_loss, fns.predict, classification)
    size = min(chunk, len(y))
    out = []
    for start in range(0, len(y), size):
        xs, ys = x[start:start + size], y[start:start + size]
        pad = size - len(ys)
        if pad:
            xs, ys = (np.concatenate([a, np.repeat(a[:1], pad, 0)]) for a in (xs, ys))
        losses, correct = jax.device_get(program(params, model_state, xs, ys))
        out.append((losses[:size - pad], correct[:size - pad]))
    return tuple(np.concatenate(parts) for parts in zip(*out))


def summarize(losses: np.ndarray, correct: np.ndarray, preset: PaperPreset) -> dict:
    """The JSON's per-split metrics of one run."""
    out = {"mean_loss": float(np.mean(losses)), "q99_loss": float(np.quantile(losses, 0.99)),
           "max_loss": float(np.max(losses)),
           "feasible_fraction": float(np.mean(losses <= preset.epsilon))}
    if preset.task == "classification":
        out["accuracy"] = float(np.mean(correct))
    return out


def _run_losses(fns: ModelFns, states: Any, datasets: Sequence[Dataset], preset: PaperPreset,
                splits: Sequence[str] = ("train", "test")) -> list[dict]:
    """Per run of the stacked ``states``: ``{split: split_losses(...)}`` on its dataset."""
    runs = unstack_runs((states.params, states.model_state))
    return [{s: split_losses(fns, params, mstate, getattr(d, f"x_{s}"), getattr(d, f"y_{s}"),
                             preset.task == "classification") for s in splits}
            for (params, mstate), d in zip(runs, datasets * len(runs) if len(datasets) == 1
                                           else datasets)]


def run_paper_method(method: str, preset: PaperPreset, datasets: Sequence[Dataset],
                     seeds: Sequence[int], *, progress: bool | str = False,
                     epoch_hook: Callable | None = None) -> dict:
    """Train ``method`` for every seed in one vmapped program; evaluate each run.

    ``datasets`` holds one dataset per seed (all of one size) or one shared by all seeds.
    ``epoch_hook(epoch, states, fns, lr)`` is called after every epoch (TensorBoard logging).

    Returns:
      ``{"runs": [{"train": {...}, "test": {...}} per seed], "losses": [(train, test)],
      "seconds": float, "states": stacked final states, "fns": ModelFns}``.
    """
    shared = len(datasets) == 1
    data0 = datasets[0]
    n, batch = len(data0.y_train), min(preset.batch_size, len(data0.y_train))
    steps = n // batch
    runs = [model_fns(_model(preset, data0, s), data0.task) for s in seeds]
    fns = runs[0]
    lr = learning_rate_fn(preset, method, steps * preset.epochs)
    solver = build_paper_solver(method, fns, n, preset, lr)
    states = stack_runs([solver.init(r.params, model_state=r.model_state) for r in runs])
    data = (lambda d: {"x": jnp.asarray(d.x_train), "y": jnp.asarray(d.y_train)})
    stacked = data(data0) if shared else stack_runs([data(d) for d in datasets])
    epoch = [0]

    def eval_fn(carry):
        epoch[0] += 1
        epoch_hook(epoch[0], carry, fns, float(lr(epoch[0] * steps)))

    (states, _), seconds = timed(
        train, solver, states, stacked, epochs=preset.epochs, batch_size=batch,
        key=jax.vmap(jax.random.key)(jnp.asarray(list(seeds))), runs=len(seeds),
        per_run_data=not shared, epsilon=preset.epsilon, progress=progress,
        description=f"{method} x{len(seeds)}", eval_fn=eval_fn if epoch_hook is not None else None)
    evaluated = _run_losses(fns, states, datasets, preset)
    return {"runs": [{s: summarize(*e[s], preset) for s in e} for e in evaluated],
            "losses": [(e["train"][0], e["test"][0]) for e in evaluated],
            "seconds": seconds, "states": states, "fns": fns}


def tensorboard_hook(log: EventLog, method: str, preset: PaperPreset, datasets: Sequence[Dataset],
                     seeds: Sequence[int]) -> Callable:
    """An ``epoch_hook`` of :func:`run_paper_method` that writes, per seed (run ``METHOD/seedS``),
    the training set's eval-mode loss mean/q99/max, feasible fraction and accuracy, the
    multipliers' mean/max/quantiles, the learning rate and the skipped steps as scalars, and the
    losses and multipliers as histograms."""
    def hook(epoch: int, states: Any, fns: ModelFns, lr: float) -> None:
        multipliers = states.multipliers.get("samples") if isinstance(states.multipliers,
                                                                     dict) else None
        evaluated = _run_losses(fns, states, datasets, preset, ("train",))
        for r, (seed, split) in enumerate(zip(seeds, evaluated)):
            run, (losses, correct) = f"{method}/seed{seed}", split["train"]
            values = {f"train/{k}": v for k, v in summarize(losses, correct, preset).items()}
            values.update({"learning_rate": lr, "skipped_steps": int(states.skipped[r])})
            if multipliers is not None:
                lam = np.asarray(multipliers[r])
                values.update({"multipliers/mean": lam.mean(), "multipliers/max": lam.max(),
                               **{f"multipliers/q{q}": np.quantile(lam, q / 100)
                                  for q in (50, 90, 99)}})
                log.histogram(run, epoch, "multipliers", lam)
            log.histogram(run, epoch, "train/losses", losses)
            log.scalars(run, epoch, values)

    return hook
