"""Progress of a training run: a tqdm bar, plain lines, or nothing. It advances when the loop
reads a chunk's summary for the history anyway, so showing progress adds no host sync.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, Mapping, NamedTuple

from tqdm.auto import tqdm

__all__ = ["Progress", "progress_reporter"]

class Progress(NamedTuple):
    """What a loop calls: ``advance(n)`` units done, then ``report(epoch, stats)`` after an
    epoch (``epoch`` counts from 1), and ``close()`` at the end (also on error).

    Example:
      >>> from feasjax.training import Progress, progress_reporter
      >>> isinstance(progress_reporter(False, total=3, description="fl"), Progress)
      True
    """

    advance: Callable[[int], None]
    report: Callable[[int, Mapping[str, float]], None]
    close: Callable[[], None]


def format_stats(stats: Mapping[str, float]) -> str:
    """``{"loss": 0.1234, "feasible": 0.9, ...}`` -> ``"loss 0.1234  feasible 0.900  ..."``;
    NaN values (e.g. no ε, no multipliers) are left out.

    Example:
      >>> from feasjax.training.progress import format_stats
      >>> format_stats({"loss": 0.12345, "feasible": 0.9, "mult_max": float("nan"), "skipped": 0})
      'loss 0.1235  feasible 0.900  skipped 0'
    """
    def text(name, value):
        if isinstance(value, int):
            return f"{value}"
        return f"{value:.3f}" if name == "feasible" or name.startswith("mult") else f"{value:.4f}"

    return "  ".join(f"{name} {text(name, value)}" for name, value in stats.items()
                     if not (isinstance(value, float) and math.isnan(value)))


class _Bar(tqdm):
    """tqdm without its monitor thread, which outlives every bar once started: this bar is
    advanced by hand once per epoch, so there is nothing for a monitor to refresh."""

    monitor_interval = 0


def progress_reporter(progress: bool | str, *, total: int, description: str,
                      epochs: int | None = None, initial: int = 0,
                      unit: str = "epoch") -> Progress:
    """A :class:`Progress` for ``total`` units (epochs, or steps of ``epochs`` epochs).

    Args:
      progress: ``True`` or ``"bar"`` (a tqdm bar, a widget in notebooks), ``"lines"`` (plain
        lines on stderr, for logs and pipes where a bar's carriage returns are noise) or
        ``False`` (nothing).
      total: units of the whole run (the bar's length).
      description: the bar's label and the lines' prefix.
      epochs: the number of epochs, for the lines (default: ``total``).
      initial: units already done (a resumed run).
      unit: the bar's unit.

    Returns:
      A :class:`Progress`; with ``"lines"``, ``report`` prints
      ``"<description> epoch e/E  loss ...  feasible ..."`` to stderr for the first, the last
      and every ``ceil(E / 10)``-th epoch.

    Example:
      >>> from feasjax.training import progress_reporter
      >>> p = progress_reporter("lines", total=2, description="fl")
      >>> # prints "fl epoch 1/2  loss 0.5000" to stderr
      >>> p.advance(1); p.report(1, {"loss": 0.5})
      >>> p.close()
    """
    if not isinstance(progress, (bool, str)) or progress not in (True, False, "bar", "lines"):
        raise ValueError(f"progress must be True, False, 'bar' or 'lines', got {progress!r}")
    epochs = total if epochs is None else epochs
    if progress is False:
        return Progress(lambda n: None, lambda epoch, stats: None, lambda: None)
    if progress == "lines":
        every = max(1, math.ceil(epochs / 10))  # at most about ten lines a run

        def report(epoch, stats):
            if epoch != 1 and epoch % every and epoch != epochs:
                return
            print(f"{description} epoch {epoch}/{epochs}  {format_stats(stats)}".rstrip(),
                  file=sys.stderr, flush=True)

        return Progress(lambda n: None, report, lambda: None)
    # A bar advanced by hand: iterating a tqdm keeps its count in a local variable and redraws
    # only now and then, so a postfix set each epoch showed a stale "1/30" for a whole run.
    bar = _Bar(total=total, initial=initial, desc=description, unit=unit, leave=False,
               miniters=1, mininterval=0, dynamic_ncols=True)

    def report(epoch, stats):
        del epoch
        bar.set_postfix_str(format_stats(stats))

    return Progress(bar.update, report, bar.close)
