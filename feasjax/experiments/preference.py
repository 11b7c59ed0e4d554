"""The paper's preference experiment, small: DPO, FL-DPO and RFL-DPO with LoRA adapters.

Per seed: the sorting task (:func:`feasjax.data.sorting_preferences`) and a
:class:`feasjax.models.Transformer`, whose base is fine-tuned on the task's correct sequences
(adapters frozen at ``lora_b = 0``) and becomes the frozen reference
(:func:`feasjax.models.reference_logprobs`, computed once); then only the adapters train on the
per-pair losses: ``dpo`` (the batch mean), ``fl-dpo`` (``fj.feasible``, one multiplier per pair,
from 1) and ``rfl-dpo`` (``fj.resilient(α)``). Every phase is an ``fj.nnx_step`` trained by
``fj.train`` in one vmapped program for all seeds (``runs=R``).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from feasjax.core.dual import ascent
from feasjax.core.formulations import resilient
from feasjax.core.transform import feasible, multipliers
from feasjax.core.weighting import weighted_sum
from feasjax.data.preference import sorting_preferences
from feasjax.experiments.builders import timed
from feasjax.experiments.presets import PREFERENCE_METHODS, PreferencePreset
from feasjax.metrics.summary import loss_summary
from feasjax.models.preference import (PAIR_KEYS, preference_loss_fn, reference_logprobs,
                                       sequence_logprobs)
from feasjax.models.transformer import BASE, Transformer
from feasjax.parallel.sweeps import stack_runs, unstack_runs
from feasjax.training.engine import train
from feasjax.training.steps import nnx_step, nnx_update

__all__: list = []  # the runner of feasjax paper dpo (the preset: feasjax.experiments.presets)


def _train_runs(train_step: Callable, models: Sequence[nnx.Module], make_tx: Callable,
                wrt: Any, data: Any, epochs: int, batch_size: int, seeds: Sequence[int],
                progress: bool | str, description: str, epsilon: float | None = None) -> float:
    """Train every model (one per seed, in place) with ``fj.train(..., runs=R)``; seconds."""
    optimizers = [nnx.Optimizer(m, make_tx(), wrt=wrt) for m in models]
    pairs = [nnx_step(train_step, m, o) for m, o in zip(models, optimizers)]
    (carry, _), seconds = timed(
        train, pairs[0][0], stack_runs([c for _, c in pairs]), data, epochs=epochs,
        batch_size=batch_size, key=jax.vmap(jax.random.key)(jnp.asarray(seeds)), runs=len(seeds),
        per_run_data=True, epsilon=epsilon, progress=progress, description=description)
    for m, o, run in zip(models, optimizers, unstack_runs(carry)):
        nnx_update(m, o, run)
    return seconds


def _sft_step(model: nnx.Module, optimizer: nnx.Optimizer, batch: dict, indices: jax.Array):
    del indices

    def loss_fn(model):  # per-sequence mean negative log-likelihood of the continuation
        tokens, mask = batch["tokens"], batch["mask"]
        losses = -sequence_logprobs(model(tokens), tokens, mask) / jnp.sum(mask[:, 1:], -1)
        return jnp.mean(losses), losses

    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True, argnums=nnx.DiffState(0, BASE))
    (_, losses), grads = grad_fn(model)
    optimizer.update(model, grads)
    return losses


def pair_data(model: nnx.Module, pairs: dict) -> dict:
    """The pairs' tokens and masks with the frozen reference's log-probabilities (``model``
    as it is now: fine-tuned, adapters at zero), computed once."""
    data = {k: jnp.asarray(pairs[k]) for k in PAIR_KEYS}
    return {**data, **_reference_program(model, data)}


_reference_program = nnx.jit(reference_logprobs)


@functools.lru_cache(maxsize=8)
def _metrics_program(loss: str, beta: float) -> Callable:
    return nnx.jit(preference_loss_fn(loss, beta=beta, with_margins=True))


def _objective_step(method: str, loss_fn: Callable, epsilon: float) -> Callable:
    def train_step(model, optimizer, batch, indices):
        weights = None if method == "dpo" else multipliers(optimizer, indices)

        def objective(model):
            losses = loss_fn(model, batch)
            if weights is None:
                return jnp.mean(losses), losses
            return weighted_sum(losses - epsilon, weights), losses  # the Lagrangian

        grad_fn = nnx.value_and_grad(objective, has_aux=True,
                                     argnums=nnx.DiffState(0, nnx.LoRAParam))
        (_, losses), grads = grad_fn(model)
        # fj.feasible's dual step reads the losses; plain AdamW takes no extra arguments.
        extra = {} if weights is None else {"losses": losses, "indices": indices}
        optimizer.update(model, grads, **extra)
        return losses

    return train_step


def preference_optimizer(method: str, preset: PreferencePreset,
                         total_steps: int) -> optax.GradientTransformation:
    """AdamW on a cosine schedule; for FL and RFL inside ``fj.feasible`` (see the docstring)."""
    if method not in PREFERENCE_METHODS:
        raise ValueError(f"method must be one of {', '.join(PREFERENCE_METHODS)}, got {method=}")
    primal = optax.adamw(optax.cosine_decay_schedule(preset.learning_rate, total_steps),
                         weight_decay=preset.weight_decay)
    if method == "dpo":
        return primal
    return feasible(primal, num_samples=preset.num_train, epsilon=preset.epsilon,
                    dual_optimizer=ascent(optax.sgd(preset.dual_learning_rate)),
                    formulation=resilient(preset.rfl_alpha) if method == "rfl-dpo"
                    else None, init_multiplier=preset.init_multiplier)


def pair_metrics(model: nnx.Module, data: dict, preset: PreferencePreset,
                 hard: np.ndarray) -> tuple[dict, np.ndarray]:
    """One split's metrics (the JSON's keys) and its per-pair losses."""
    evaluate = _metrics_program(preset.loss, preset.beta)
    losses, margins, more_likely = (np.asarray(a) for a in evaluate(model, data))
    tail = {k: float(v) for k, v in loss_summary(jnp.asarray(losses), preset.epsilon).items()}
    hard = np.asarray(hard, bool)
    out = {"preference_accuracy": float(np.mean(more_likely)),
           "reward_accuracy": float(np.mean(margins > 0)),
           "hard_preference_accuracy": float(np.mean(more_likely[hard])) if hard.any() else None,
           "pair_loss_mean": tail["mean_loss"], "pair_loss_q99": tail["q99_loss"],
           "pair_loss_max": tail["max_loss"],
           "fraction_above_epsilon": 1.0 - tail["feasible_fraction"],
           "reward_margin_mean": float(np.mean(margins))}
    out.update({f"reward_margin_q{q:02d}": float(np.quantile(margins, q / 100))
                for q in (1, 10, 50, 90, 99)})
    return out, losses


def run_preference(preset: PreferencePreset, seeds: Sequence[int],
                   methods: Sequence[str] = PREFERENCE_METHODS, *,
                   progress: bool | str = False) -> dict:
    """Fine-tune one base per seed, then train every method's adapters from it; evaluate.

    Returns:
      ``{"methods": {NAME: {"train": {metric: [per seed]}, "test": {...}, "seconds": float}},
      "reference": {"train": ..., "test": ...}, "sft_seconds": float,
      "losses": {NAME: [(train, test) per-pair losses per seed]}}``.
    """
    # Bad settings fail here, not after the bases' fine-tuning.
    if wrong := [m for m in methods if m not in PREFERENCE_METHODS]:
        raise ValueError(f"methods must be among {', '.join(PREFERENCE_METHODS)}, got {wrong}")
    loss_fn = preference_loss_fn(preset.loss, beta=preset.beta)
    tasks = [sorting_preferences(
        s, num_sft=preset.num_sft, num_train=preset.num_train, num_test=preset.num_test,
        hard_fraction=preset.hard_fraction, sft_long_fraction=preset.sft_long_fraction,
        label_noise=preset.label_noise) for s in seeds]
    bases = [Transformer(t.vocab_size, t.max_length, dim=preset.dim, heads=preset.heads,
                         layers=preset.layers, lora_rank=preset.lora_rank, rngs=nnx.Rngs(s))
             for t, s in zip(tasks, seeds)]
    sft_seconds = _train_runs(  # supervised fine-tuning of the bases, not the adapters
        _sft_step, bases, lambda: optax.adamw(preset.sft_learning_rate), BASE,
        stack_runs([jax.tree.map(jnp.asarray, t.sft) for t in tasks]), preset.sft_epochs,
        min(preset.sft_batch_size, preset.num_sft), seeds, progress, "sft")
    splits = [{s: pair_data(b, getattr(t, s)) for s in ("train", "test")}
              for b, t in zip(bases, tasks)]
    data = stack_runs([d["train"] for d in splits])
    batch = min(preset.batch_size, preset.num_train)
    steps = preset.epochs * (preset.num_train // batch)

    def evaluate(models):  # ({split: {metric: [per seed]}}, [(train, test) losses per seed])
        runs = [{s: pair_metrics(m, d[s], preset, getattr(t, s)["hard"]) for s in d}
                for m, d, t in zip(models, splits, tasks)]
        metrics = {s: {k: [r[s][0][k] for r in runs] for k in runs[0][s][0]} for s in runs[0]}
        return metrics, [(r["train"][1], r["test"][1]) for r in runs]

    report = {"reference": evaluate(bases)[0], "sft_seconds": sft_seconds, "methods": {},
              "losses": {}}
    for method in methods:
        policies = [nnx.clone(b) for b in bases]
        seconds = _train_runs(
            _objective_step(method, loss_fn, preset.epsilon), policies,
            lambda method=method: preference_optimizer(method, preset, steps), nnx.LoRAParam,
            data, preset.epochs, batch, seeds, progress, method, epsilon=preset.epsilon)
        metrics, losses = evaluate(policies)
        report["methods"][method] = {**metrics, "seconds": seconds}
        report["losses"][method] = losses
    return report
