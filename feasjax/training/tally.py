"""The host's side of a run: the loop over an epoch's chunks, the history, the running epoch's
sums, the progress bar and the error that names a skipped step. Shared by the engine's compiled
and streamed epochs and its 0.1 epoch-runner path.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from feasjax.training.progress import progress_reporter

__all__ = ["History"]


class History(NamedTuple):
    """What :func:`train` reports per epoch (host values; with ``runs``, ``(R,)`` arrays)."""

    mean_loss: list  # per epoch: mean of the finite per-sample losses seen before each step
    feasible_fraction: list  # per epoch: fraction of those losses <= epsilon (nan if no ε)
    skipped: list  # per epoch: total steps skipped so far
    evaluations: list  # per epoch: eval_fn(carry) or None
    multiplier_mean: list | None = None  # per epoch: mean multiplier after it (nan if none)
    multiplier_max: list | None = None  # per epoch: largest multiplier after it (nan if none)


def raise_on_skipped(records: tuple, epoch: int, start: int, steps: int | None,
                     runs: bool) -> None:
    """Raise ``FloatingPointError`` naming the first skipped step of records ordered as an
    ``EpochInfo``, ``(indices, losses, ok)`` (leading axis: steps, after runs with ``runs``)."""
    idx, losses, ok = (np.asarray(r) for r in records)
    label = ""
    if runs:  # (R, steps, ...): the first run with a skipped step (run 0 if none)
        run = int(np.argmin(ok.all(axis=1)))
        ok, idx, losses, label = ok[run], idx[run], losses[run], f"run {run}, "
    if ok.all():
        return
    s = int(np.flatnonzero(~ok)[0])
    bad = idx[s][~np.isfinite(losses[s])]
    what = (f"non-finite losses or gradients (sample indices {bad[:10].tolist()})" if bad.size
            else "non-finite gradients or parameter updates (its losses were finite)")
    where = f"{label}epoch {epoch}, step {start + s}"
    if steps is not None:
        where += f" (global step {epoch * steps + start + s})"
    raise FloatingPointError(
        f"{where}: {what}; the step was skipped and the run stopped (on_nonfinite='raise')")


class Tally:
    """The running epoch's partial sums, the skipped total, the history and the bar. With
    ``defer``, a whole epoch's chunk is read one epoch late, while the next one runs: showing
    progress costs no host sync.

    A chunk's ``stats`` (last axis): sum of the finite losses, their count, the feasible
    count, the number of losses, the steps skipped, the multipliers' sum, count and max.
    """

    def __init__(self, bar: Any, epsilon: float | None, *, per_epoch: bool, defer: bool,
                 history: History | None = None, partial: Any = None, skipped: Any = 0) -> None:
        self.bar, self.epsilon, self.per_epoch, self.defer = bar, epsilon, per_epoch, defer
        self.history = History([], [], [], [], [], []) if history is None else history
        self.skipped, self.pending = skipped, None
        self.partial = None if partial is None else np.asarray(partial, np.float64)

    def chunk(self, epoch: int, stats: Any, length: int, *, ends_epoch: bool) -> None:
        self.flush()
        if ends_epoch and self.defer and self.per_epoch:
            self.pending = (epoch, stats, length)
        else:
            self._add(epoch, stats, length, ends_epoch)

    def flush(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._add(*pending, ends_epoch=True)

    def _add(self, epoch: int, stats: Any, length: int, ends_epoch: bool) -> None:
        stats = np.asarray(stats, np.float64)
        self.partial = stats[..., :5] + (0.0 if self.partial is None else self.partial)
        self.bar.advance(1 if self.per_epoch else length)  # per epoch: every chunk ends one
        if not ends_epoch:
            return
        loss_sum, finite, feasible, total, newly = np.moveaxis(self.partial, -1, 0)
        mult_sum, mult_count, mult_max = np.moveaxis(stats[..., 5:], -1, 0)
        self.partial, self.skipped = None, self.skipped + newly
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {"loss": loss_sum / finite,
                      "feasible": (feasible / total if self.epsilon is not None
                                   else np.nan * total),
                      "mult_mean": mult_sum / mult_count, "mult_max": mult_max}
        host = float if np.ndim(loss_sum) == 0 else np.asarray
        for field, value in zip(("mean_loss", "feasible_fraction", "multiplier_mean",
                                 "multiplier_max"), values.values()):
            getattr(self.history, field).append(host(value))
        self.history.skipped.append(int(self.skipped) if np.ndim(self.skipped) == 0
                                    else self.skipped.astype(int))
        self.bar.report(epoch + 1, {k: float(np.mean(v)) for k, v in values.items()}
                        | {"skipped": int(np.max(self.skipped))})


def run_epochs(run_chunk: Callable[[Any, Any, int, int, int], tuple[Any, Any]], carry: Any,
               key: Any, *, epochs: int, steps: int, checkpoint_every: int | None, saver: Any,
               prepare: Callable[[Any, Any], Any], progress: Any, description: str,
               epsilon: float | None, eval_fn: Callable | None, per_epoch_bar: bool,
               read_late: bool = True) -> tuple[Any, History]:
    """The engine's loop over ``run_chunk(carry, key, epoch, start, length) -> (carry, stats)``
    (steps ``start .. start + length - 1`` of an epoch; ``stats``: see :class:`Tally`), with a
    ``saver``'s (:class:`feasjax.training.run_checkpoints.Checkpoints`) resume and saves;
    ``prepare(carry, key)`` readies the (possibly restored) carry for donation."""
    every = steps if checkpoint_every is None else min(checkpoint_every, steps)
    epoch, pos, restored, bar = 0, 0, {}, None
    try:
        if saver is not None:
            resumed = saver.resume({"state": carry, "key": key}, epochs)
            if resumed is not None:
                tree, epoch, pos, restored = resumed
                carry, key = tree["state"], tree["key"]
        carry = prepare(carry, key)
        per_epoch = per_epoch_bar and every == steps
        bar = progress_reporter(
            progress, total=epochs if per_epoch else epochs * steps,
            initial=epoch if per_epoch else epoch * steps + pos, epochs=epochs,
            description=description, unit="epoch" if per_epoch else "step")
        tally = Tally(bar, epsilon, per_epoch=per_epoch, defer=read_late and saver is None,
                      **restored)
        while epoch < epochs:
            length = min(every - pos % every, steps - pos)
            carry, stats = run_chunk(carry, key, epoch, pos, length)
            pos += length
            tally.chunk(epoch, stats, length, ends_epoch=pos == steps)
            if pos == steps:
                epoch, pos = epoch + 1, 0
                tally.history.evaluations.append(None if eval_fn is None else eval_fn(carry))
            if saver is not None:
                saver.maybe_save(carry, key, tally, epoch=epoch, pos=pos, steps=steps,
                                 every=every, epochs=epochs)
        tally.flush()
    finally:  # no bar or Orbax thread outlives the call, whatever happened
        if bar is not None:
            bar.close()
        if saver is not None:
            saver.close()
    return carry, tally.history
