"""The engine's epochs over a :class:`feasjax.data.pipeline.Pipeline`: data beyond memory.

Each minibatch comes from the pipeline on the host (its rows and their global indices), is put
on the device while the previous step runs, and goes through one jitted, donated step that also
adds the batch's losses to the epoch's sums on the device: no host read until the epoch ends.
Checkpoints hold the carry and the position in the pipeline (epoch and step), which is the
pipeline's whole state, so a resumed run reads the same batches in the same order.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.pipeline import Pipeline
from feasjax.training.programs import cached_program, chunk_stats, multiplier_stats, unalias
from feasjax.training.run_checkpoints import Checkpoints
from feasjax.training.steps import takes_keyword
from feasjax.training.tally import History, raise_on_skipped, run_epochs

__all__: list = []  # the engine's


def _step_program(step: Callable, records: bool) -> Callable:
    """``(carry, sums, batch, bound) -> (carry, sums, record)``, jitted with ``carry`` and
    ``sums`` donated (:func:`feasjax.training.programs.cached_program`)."""
    def build():
        one = step
        if takes_keyword(step, "unique_indices"):  # a permutation's batch never repeats a row
            one = functools.partial(step, unique_indices=True)

        def run(carry, sums, batch, bound):
            idx = batch.pop("index")
            carry, report = one(carry, batch, idx)
            losses = report.get("losses", jnp.full(idx.shape, jnp.nan, jnp.float32))
            ok = jnp.asarray(report.get("ok", True))
            sums = sums + chunk_stats(losses, ok, bound)
            return carry, sums, ((ok, idx, losses) if records else None)

        return jax.jit(run, donate_argnums=(0, 1))

    return cached_program(step, ("streamed", records), build)


def train_streamed(step: Callable, carry: Any, pipeline: Pipeline, *, epochs: int,
                   key: jax.Array, epsilon: float | None, eval_fn: Callable | None,
                   on_nonfinite: str, progress: bool | str, description: str,
                   checkpoint_dir: Any, checkpoint_every: int | None, max_to_keep: int,
                   resume: bool, config: dict | None, async_save: bool,
                   after_save: Callable | None) -> tuple[Any, History]:
    """:func:`feasjax.train` over a pipeline (its arguments; see the module docstring)."""
    steps = pipeline.steps_per_epoch
    every = steps if checkpoint_every is None else min(checkpoint_every, steps)
    saver = None if checkpoint_dir is None else Checkpoints(
        checkpoint_dir, data={}, key=key, max_to_keep=max_to_keep, async_save=async_save,
        resume=resume,
        settings={"pipeline": pipeline.fingerprint(), "epsilon": epsilon, **(config or {})})
    program = _step_program(step, on_nonfinite == "raise")
    n = pipeline.num_samples
    stats = cached_program(step, ("multipliers", n),
                           lambda: jax.jit(lambda carry: multiplier_stats(carry, n)))
    bound = jnp.asarray(jnp.nan if epsilon is None else epsilon, jnp.float32)

    def run_chunk(carry, key, epoch, start, length):
        del key  # the pipeline's seed orders the batches
        sums, records = jnp.zeros(5, jnp.float32), []
        batches = pipeline.batches(epoch, start)
        upcoming = jax.device_put(next(batches))
        for i in range(length):  # the next batch goes to the device while this step runs
            carry, sums, record = program(carry, sums, upcoming, bound)
            upcoming = jax.device_put(next(batches)) if i + 1 < length else None
            records.append(record)
        if on_nonfinite == "raise":
            raise_on_skipped(tuple(np.stack([np.asarray(r[i]) for r in records])
                                   for i in range(3)), epoch, start, steps, False)
        return carry, jnp.concatenate([sums, stats(carry)])

    return run_epochs(run_chunk, carry, key, epochs=epochs, steps=steps, every=every,
                      saver=saver, prepare=lambda carry, key: unalias(carry, key),
                      progress=progress, description=description, epsilon=epsilon,
                      eval_fn=eval_fn, after_save=after_save, per_epoch_bar=False)
