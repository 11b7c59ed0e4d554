"""The engine's chunks over a :class:`feasjax.data.pipeline.Pipeline` (data beyond memory): each
host minibatch, with its global indices, goes through one jitted, donated step that adds its
losses to sums on the device. A checkpoint's epoch and step are the pipeline's whole state, so a
resumed run reads the same batches in the same order.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.pipeline import Pipeline
from feasjax.training.programs import cached_program, chunk_stats, multiplier_stats, reporting
from feasjax.training.tally import raise_on_skipped

__all__: list = []  # the engine's


def streamed_chunks(step: Callable, pipeline: Pipeline, keep_records: bool,
                    bound: jax.Array) -> Callable:
    """``run_chunk(carry, key, epoch, start, length) -> (carry, stats)`` over the pipeline's
    batches, for :func:`feasjax.training.tally.run_epochs`; ``keep_records``: raise on a
    skipped step."""
    def build():  # one jitted step, carry and sums donated, kept on ``step``
        one = reporting(step)

        def run(carry, sums, batch, bound):
            idx = batch.pop("index")
            carry, losses, ok = one(carry, batch, idx)
            sums = sums + chunk_stats(losses, ok, bound)
            return carry, sums, ((idx, losses, ok) if keep_records else None)

        return jax.jit(run, donate_argnums=(0, 1))

    program = cached_program(step, ("streamed", keep_records), build)
    n, steps = pipeline.num_samples, pipeline.steps_per_epoch
    stats = cached_program(step, ("multipliers", n),
                           lambda: jax.jit(lambda carry: multiplier_stats(carry, n)))

    def run_chunk(carry, key, epoch, start, length):
        del key  # the pipeline's seed orders the batches
        sums, records = jnp.zeros(5, jnp.float32), []
        batches = pipeline.batches(epoch, start)
        upcoming = jax.device_put(next(batches))
        for i in range(length):  # the next batch goes to the device while this step runs
            carry, sums, record = program(carry, sums, upcoming, bound)
            upcoming = jax.device_put(next(batches)) if i + 1 < length else None
            records.append(record)
        if keep_records:
            raise_on_skipped([np.stack(field) for field in zip(*records)], epoch, start, steps,
                             False)
        return carry, jnp.concatenate([sums, stats(carry)])

    return run_chunk
