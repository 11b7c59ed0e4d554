"""A training loop that checkpoints every k steps and resumes exactly, even mid-epoch.

:func:`train_resumable` runs the same steps as :func:`feasjax.train` (epoch ``e`` shuffles with
``fold_in(key, e)``) in compiled chunks of at most ``checkpoint_every`` steps
(:func:`feasjax.training.chunk_fn`), so that it can stop between two steps of an epoch without a
host sync per step. After a chunk it saves, through Orbax (:mod:`feasjax.checkpoint`), the whole
:class:`feasjax.PrimalDualState` (parameters, optimizer states, multipliers, averages and
counters), the RNG key, the epoch and the step within it, the history and the configuration.

Exact resume: a run killed at any point and resumed from its latest checkpoint ends with the
same state, bit for bit, as an uninterrupted run with the same ``checkpoint_every`` (and as
:func:`feasjax.train`, since chunks and whole epochs are the same computation). This holds on
the CPU; on GPUs/TPUs it holds when XLA's kernels are deterministic (e.g. GPU with
``XLA_FLAGS=--xla_gpu_deterministic_ops=true``) and the device count and sharding are the same.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from feasjax import checks
from feasjax.checkpoint import checkpoint_manager, restore_checkpoint, save_checkpoint
from feasjax.primal_dual import PrimalDual, PrimalDualState
from feasjax.training import (History, check_state_fits_data, chunk_fn, epoch_indices,
                              num_steps, raise_on_skipped_step, unalias)


def _check_config(saved: dict, current: dict, directory: str) -> None:
    diffs = [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
             for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if diffs:
        raise ValueError(f"the checkpoints in {directory} were made with another configuration "
                         f"({'; '.join(diffs[:5])}); use another checkpoint directory, or do "
                         f"not resume")


_shuffle = jax.jit(epoch_indices, static_argnums=(1, 2))


@functools.lru_cache(maxsize=64)
def _compiled_chunk(solver: PrimalDual, length: int) -> Callable:
    """The jitted chunk of ``length`` steps, memoised: a second run compiles nothing."""
    return jax.jit(chunk_fn(solver, length), donate_argnums=0)


def train_resumable(
    solver: PrimalDual,
    state: PrimalDualState,
    data: Any,
    *,
    epochs: int,
    batch_size: int,
    key: jax.Array,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    max_to_keep: int = 3,
    resume: bool = True,
    config: dict | None = None,
    epsilon: float | None = None,
    on_nonfinite: str = "skip",
    progress: bool = True,
    description: str = "train",
    async_save: bool = True,
    after_save: Callable[[int], None] | None = None,
) -> tuple[PrimalDualState, History]:
    """Train like :func:`feasjax.train`, saving a checkpoint every ``checkpoint_every`` steps.

    A checkpoint is saved after the first chunk that reaches a multiple of
    ``checkpoint_every`` global steps, and at the end; chunks never cross an epoch.

    Args:
      solver, state, data, epochs, batch_size, key, epsilon, progress, description: as in
        :func:`feasjax.train` (``state`` is donated).
      checkpoint_dir: where checkpoints go; ``None`` trains without saving.
      checkpoint_every: steps between checkpoints (default: one epoch).
      max_to_keep: checkpoints kept.
      resume: continue from the latest readable checkpoint in ``checkpoint_dir`` if any;
        with ``False`` the directory must hold none.
      config: JSON-able dict describing the run (saved; a resume with another one raises).
      on_nonfinite: ``"skip"`` (counted in ``state.skipped``) or ``"raise"``
        (``FloatingPointError`` naming the epoch, the step and the sample indices).
      async_save: write checkpoints in a background thread.
      after_save: called with the global step right after each save starts.

    Returns:
      ``(state, history)``; the history of epochs run before a resume is restored too.

    Example:
      >>> import tempfile, jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.resume import train_resumable
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> kw = dict(epochs=3, batch_size=2, key=jax.random.key(0), progress=False,
      ...           checkpoint_dir=tempfile.mkdtemp(), checkpoint_every=1)
      >>> state, _ = train_resumable(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), **kw)
      >>> again, _ = train_resumable(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), **kw)
      >>> int(again.step), bool(again.params == state.params)  # restored, nothing re-run
      (6, True)
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs=}")
    if on_nonfinite not in ("skip", "raise"):
        raise ValueError(f"on_nonfinite must be 'skip' or 'raise', got {on_nonfinite=}")
    n = checks.leading_size(data, "data")
    steps = num_steps(n, batch_size)
    check_state_fits_data(state, n)
    if solver.checked:
        raise ValueError("train_resumable runs unchecked chunks: build the solver with "
                         "checked=False and use on_nonfinite='raise' to stop on a bad step")
    every = steps if checkpoint_every is None else checkpoint_every
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every=}")
    run_config = json.loads(json.dumps({"num_samples": n, "batch_size": batch_size,
                                        **(config or {})}))
    history, partial = History([], [], [], []), [0.0, 0, 0]  # loss sum, count, feasible
    epoch = pos = 0
    manager = None if checkpoint_dir is None else checkpoint_manager(
        checkpoint_dir, max_to_keep=max_to_keep, async_save=async_save)
    try:
        if manager is not None and manager.all_steps():
            if not resume:
                raise ValueError(f"checkpoint_dir {checkpoint_dir} already holds checkpoints "
                                 f"{manager.all_steps()}; resume, or use an empty directory")
            restored = restore_checkpoint(manager, {"state": state, "key": key})
            meta = restored.meta
            _check_config(meta["config"], run_config, str(checkpoint_dir))
            state, key = restored.tree["state"], restored.tree["key"]
            epoch, pos, partial = meta["epoch"], meta["step_in_epoch"], meta["partial"]
            history = History(*(list(meta["history"][f]) for f in History._fields))
        state = unalias(state)  # the state is donated chunk by chunk
        shuffle = _shuffle
        done = last_saved = epoch * steps + pos
        bar = tqdm(total=epochs * steps, initial=done, desc=description, disable=not progress,
                   leave=False)
        while epoch < epochs:
            batches = shuffle(jax.random.fold_in(key, epoch), n, batch_size)
            length = min(every - pos % every, steps - pos)
            state, info = _compiled_chunk(solver, length)(state, data, batches, jnp.int32(pos))
            if on_nonfinite == "raise":
                raise_on_skipped_step(info, epoch, start=pos, steps_per_epoch=steps)
            losses = np.asarray(info.losses, np.float64)
            finite = np.isfinite(losses)
            partial = [partial[0] + float(losses[finite].sum()), partial[1] + int(finite.sum()),
                       partial[2] + (int((losses <= epsilon).sum()) if epsilon is not None else 0)]
            pos, done = pos + length, done + length
            bar.update(length)
            if pos == steps:
                history.mean_loss.append(partial[0] / max(partial[1], 1))
                history.feasible_fraction.append(
                    partial[2] / losses.shape[1] / steps if epsilon is not None else float("nan"))
                history.skipped.append(int(state.skipped))
                history.evaluations.append(None)
                bar.set_postfix(loss=f"{history.mean_loss[-1]:.4f}", skipped=history.skipped[-1])
                epoch, pos, partial = epoch + 1, 0, [0.0, 0, 0]
            if manager is not None and (done // every > last_saved // every or epoch == epochs):
                meta = {"config": run_config, "epoch": epoch, "step_in_epoch": pos,
                        "global_step": done, "epochs": epochs, "partial": partial,
                        "history": history._asdict()}
                save_checkpoint(manager, done, {"state": state, "key": key}, meta=meta,
                                force=True)
                last_saved = done
                if after_save is not None:
                    after_save(done)
        bar.close()
    finally:
        if manager is not None:
            manager.wait_until_finished()
            manager.close()
    return state, history
