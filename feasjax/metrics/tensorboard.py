"""Per-epoch scalars and histograms in TensorBoard event files, through ``tensorboardX`` (the
optional extra ``pip install "feasjax[tensorboard]"``): one writer, so one TensorBoard run, per
``run`` name (``fl/seed0``) under the log directory.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Mapping

import numpy as np

__all__: list = []  # helpers of feasjax paper's --logdir


class EventLog:
    """Writers of TensorBoard event files, one per run name, created on first use.

    Example:
      >>> import importlib.util, tempfile
      >>> from feasjax.metrics.tensorboard import EventLog
      >>> if importlib.util.find_spec("tensorboardX"):
      ...     with EventLog(tempfile.mkdtemp()) as log:
      ...         log.scalars("fl/seed0", 1, {"loss/max": 0.5})
    """

    def __init__(self, logdir: str | os.PathLike) -> None:
        if importlib.util.find_spec("tensorboardX") is None:
            raise ImportError('tensorboardX is not installed: pip install "feasjax[tensorboard]"')
        self.logdir = os.fspath(logdir)
        self._writers: dict = {}

    def _writer(self, run: str):
        if run not in self._writers:
            from tensorboardX import SummaryWriter

            self._writers[run] = SummaryWriter(os.path.join(self.logdir, run))
        return self._writers[run]

    def scalars(self, run: str, step: int, values: Mapping[str, float]) -> None:
        """One scalar per tag; non-finite values are written as they are."""
        writer = self._writer(run)
        for tag, value in values.items():
            writer.add_scalar(tag, float(value), step)

    def histogram(self, run: str, step: int, tag: str, values: np.ndarray) -> None:
        """A histogram of the finite entries of ``values`` (none: nothing written)."""
        values = np.asarray(values, np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            self._writer(run).add_histogram(tag, values, step)

    def close(self) -> None:
        """Flush and close every writer."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
