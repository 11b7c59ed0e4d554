"""A training loop that checkpoints every k steps and resumes exactly, even mid-epoch.

:func:`train_resumable` runs the same steps as :func:`feasjax.train` (epoch ``e`` shuffles with
``fold_in(key, e)``) in compiled chunks of at most ``checkpoint_every`` steps
(:func:`feasjax.training.chunk_fn`), so that it can stop between two steps of an epoch without a
host sync per step. After a chunk it saves, through Orbax (:mod:`feasjax.training.checkpoint`),
the whole :class:`feasjax.PrimalDualState` (parameters, optimizer states, multipliers, averages
and counters), the RNG key, the epoch and the step within it, the history and the configuration.

Safe resume: unreadable checkpoints newer than the latest readable one are moved aside
(``<step>.corrupt-<time>``, see :func:`feasjax.training.restore_checkpoint`) with a warning,
and the run continues from the readable one; if none is readable, from the beginning. A resume
with other data (every leaf's shape, dtype and sha256 are saved), another key, epsilon, batch
size or ``config``, or with fewer ``epochs`` than the checkpoint has finished, raises.

Exact resume: a run killed at any point and resumed from its latest checkpoint ends with the
same state, bit for bit, as an uninterrupted run with the same ``checkpoint_every`` (and as
:func:`feasjax.train`, since chunks and whole epochs are the same computation). This holds on
the CPU; on GPUs/TPUs it holds when XLA's kernels are deterministic (e.g. GPU with
``XLA_FLAGS=--xla_gpu_deterministic_ops=true``) and the device count and sharding are the same.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core import checks
from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.training.checkpoint import checkpoint_manager, restore_checkpoint, save_checkpoint
from feasjax.training.progress import progress_reporter
from feasjax.training.loop import (History, check_state_fits_data, chunk_fn, epoch_indices,
                                   num_steps, raise_on_skipped_step, unalias)

__all__ = [
    "train_resumable",
    "data_fingerprint",
]

_META_KEYS = ("config", "epoch", "step_in_epoch", "partial", "history")  # what a resume reads
_CHUNK = 1 << 24  # bytes hashed at a time


def _leaf_fingerprint(leaf: Any) -> dict:
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        # Spread over processes: each one would hash another part.
        return {"shape": list(leaf.shape), "dtype": str(leaf.dtype), "sha256": None}
    array = np.asarray(leaf)
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    digest = hashlib.sha256()
    for start in range(0, flat.size, _CHUNK):  # streamed: O(N) time, no second copy
        digest.update(flat[start:start + _CHUNK])
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": digest.hexdigest()}


def data_fingerprint(data: Any) -> dict:
    """Shape, dtype and sha256 of the bytes of every leaf of ``data``, by path.

    Example:
      >>> import numpy as np
      >>> from feasjax.training.resume import data_fingerprint
      >>> data_fingerprint({"x": np.zeros((2, 3), np.float32)})["x"]["shape"]
      [2, 3]
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(data)
    return {jax.tree_util.keystr(path, simple=True, separator="/") or "data":
            _leaf_fingerprint(leaf) for path, leaf in flat}


def _short(field: str, value: Any) -> str:
    return f"{value[:12]}..." if field == "sha256" and isinstance(value, str) else str(value)


def _fingerprint_diffs(saved: dict | None, current: dict) -> list[str]:
    if saved is None:
        return ["data fingerprint: none saved (a checkpoint of an older feasjax)"]
    diffs = []
    for name in sorted(set(saved) | set(current)):
        s, c = saved.get(name), current.get(name)
        if s is None or c is None:
            diffs.append(f"data leaf {name!r} only {'now' if s is None else 'in the checkpoint'}")
        elif s != c:
            fields = [f"saved {k} {_short(k, s.get(k))}, now {_short(k, c.get(k))}"
                      for k in ("shape", "dtype", "sha256") if s.get(k) != c.get(k)]
            diffs.append(f"data fingerprint of {name!r} differs: {', '.join(fields)}")
    return diffs


def _check_config(saved: dict, current: dict, directory: str) -> None:
    saved, current = dict(saved), dict(current)
    diffs = _fingerprint_diffs(saved.pop("data_fingerprint", None),
                               current.pop("data_fingerprint", {}))
    diffs += [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
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


def _run_config(data: Any, key: jax.Array, settings: dict) -> dict:
    """What a resume must match: the settings, the key's bits and the data's fingerprint."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return json.loads(json.dumps({**settings, "key": np.asarray(key).tolist(),
                                  "data_fingerprint": data_fingerprint(data)}))


def _resume(manager, target: dict, run_config: dict, epochs: int, directory: str):
    """``(state, key, epoch, pos, partial, history)`` of the latest readable checkpoint, or
    ``None`` when every checkpoint was unreadable (and moved aside)."""
    try:
        restored = restore_checkpoint(manager, target, required_meta=_META_KEYS,
                                      quarantine=True)
    except FileNotFoundError as e:
        warnings.warn(f"{e}; starting from scratch", stacklevel=3)
        return None
    meta = restored.meta
    _check_config(meta["config"], run_config, directory)
    epoch, pos = meta["epoch"], meta["step_in_epoch"]
    if epoch > epochs or (epoch == epochs and pos > 0):
        more = f" and {pos} steps of the next" if pos else ""
        raise ValueError(f"the checkpoint in {directory} has finished {epoch} "
                         f"epoch{'s' * (epoch != 1)}{more}, "
                         f"more than {epochs=}: pass epochs >= {epoch + (pos > 0)} to continue "
                         f"it, or use another checkpoint directory")
    history = History(*(list(meta["history"][f]) for f in History._fields))
    return restored.tree["state"], restored.tree["key"], epoch, pos, meta["partial"], history


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
    progress: bool | str = True,
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
        with ``False`` the directory must hold none. Unreadable newer checkpoints are moved
        aside (``<step>.corrupt-<time>``) with a warning; if none is readable the run starts
        from scratch. A checkpoint past ``epochs`` raises; one at ``epochs`` is returned.
      config: JSON-able dict describing the run, saved with ``batch_size``, ``epsilon``, the
        key and the data's fingerprint (shape, dtype and sha256 of every leaf); a resume with
        another one raises, naming what differs.
      on_nonfinite: ``"skip"`` (counted in ``state.skipped``) or ``"raise"``
        (``FloatingPointError`` naming the epoch, the step and the sample indices).
      async_save: write checkpoints in a background thread.
      after_save: called with the global step right after each save starts.

    Returns:
      ``(state, history)``; the history of epochs run before a resume is restored too.

    Example:
      >>> import tempfile, jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.training.resume import train_resumable
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
    history, partial = History([], [], [], []), [0.0, 0, 0]  # loss sum, count, feasible
    epoch = pos = 0
    manager = bar = None
    if checkpoint_dir is not None:
        run_config = _run_config(data, key, {"num_samples": n, "batch_size": batch_size,
                                             "epsilon": epsilon, **(config or {})})
        manager = checkpoint_manager(checkpoint_dir, max_to_keep=max_to_keep,
                                     async_save=async_save)
    try:
        if manager is not None and manager.all_steps():
            if not resume:
                raise ValueError(f"checkpoint_dir {checkpoint_dir} already holds checkpoints "
                                 f"{manager.all_steps()}; resume, or use an empty directory")
            resumed = _resume(manager, {"state": state, "key": key}, run_config, epochs,
                              str(checkpoint_dir))
            if resumed is not None:
                state, key, epoch, pos, partial, history = resumed
        state = unalias(state)  # the state is donated chunk by chunk
        shuffle = _shuffle
        done = last_saved = epoch * steps + pos
        bar = progress_reporter(progress, total=epochs * steps, initial=done, epochs=epochs,
                                description=description, unit="step")
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
            bar.advance(length)
            if pos == steps:
                history.mean_loss.append(partial[0] / max(partial[1], 1))
                history.feasible_fraction.append(
                    partial[2] / losses.shape[1] / steps if epsilon is not None else float("nan"))
                history.skipped.append(int(state.skipped))
                history.evaluations.append(None)
                bar.report(epoch + 1, {"loss": history.mean_loss[-1],
                                       "feasible": history.feasible_fraction[-1],
                                       "skipped": history.skipped[-1]})
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
    finally:  # no bar or Orbax thread outlives the call, whatever happened
        if bar is not None:
            bar.close()
        if manager is not None:
            try:
                manager.wait_until_finished()
            finally:
                manager.close()
    return state, history
