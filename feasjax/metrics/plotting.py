"""Plots of per-sample loss distributions, written to files (no display needed).

Figures are built with ``matplotlib.figure.Figure`` directly rather than ``pyplot``: no global
figure state, no interactive backend, and PNGs are rendered by Agg on any headless machine.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "plot_loss_cdfs",
]

SPLITS = ("train", "test")


def _check_inputs(per_method: object, epsilon: object) -> None:
    if not isinstance(per_method, Mapping) or not per_method:
        raise ValueError(
            "per_method must be a non-empty dict {method: {'train': losses, 'test': losses}}"
        )
    for method, splits in per_method.items():
        if not isinstance(splits, Mapping) or set(splits) != set(SPLITS):
            keys = sorted(splits) if isinstance(splits, Mapping) else type(splits).__name__
            raise ValueError(
                f"per_method[{method!r}] must have exactly the keys {SPLITS}, got {keys}"
            )
        for split in SPLITS:
            if np.ndim(splits[split]) != 1:
                raise ValueError(
                    f"per_method[{method!r}][{split!r}] must be a 1-D array of per-sample losses, "
                    f"got shape {np.shape(splits[split])}"
                )
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) or not (
        np.isfinite(epsilon) and epsilon > 0
    ):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon=}")


def _use_log_x(per_method: Mapping[str, Mapping[str, np.ndarray]], epsilon: float) -> bool:
    """Log scale when the positive losses (and epsilon) span more than two decades."""
    values = [np.asarray(v, np.float64) for s in per_method.values() for v in s.values()]
    finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values] + [np.array([epsilon])])
    return finite.max() / finite.min() > 100


def plot_loss_cdfs(
    per_method: Mapping[str, Mapping[str, np.ndarray]],
    epsilon: float,
    path: str | os.PathLike,
    *,
    log_x: bool | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG of the empirical CDFs of per-sample losses: train and test panels.

    Each panel has one curve per method, :math:`F(t) = \\frac{1}{N}\\#\\{i : \\ell_i \\le t\\}`,
    so the height of a curve at ``epsilon`` (marked by a vertical line) is that method's feasible
    fraction, and its right end is the maximum loss. Non-finite losses cannot be drawn; they are
    left out and counted in the legend. On a log x-axis, zero losses are drawn at the smallest
    plotted value.

    Args:
      per_method: ``{method: {"train": losses (N_train,), "test": losses (N_test,)}}``.
      epsilon: the constraint level, ``> 0``.
      path: where to write the PNG (parent directories are created).
      log_x: log-scaled x-axis; ``None`` chooses it when the losses span more than two decades.
      title: optional figure title.

    Returns:
      The path written, as a ``pathlib.Path``.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from feasjax.metrics.plotting import plot_loss_cdfs
      >>> losses = {"erm": {"train": np.array([0.01, 0.5, 3.0]), "test": np.array([0.2, 1.0])}}
      >>> out = plot_loss_cdfs(losses, 0.1, os.path.join(tempfile.mkdtemp(), "cdf.png"))
      >>> out.read_bytes()[:4]
      b'\\x89PNG'
    """
    _check_inputs(per_method, epsilon)
    if log_x is None:
        log_x = _use_log_x(per_method, float(epsilon))
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS):
        for method, splits in per_method.items():
            losses = np.asarray(splits[split], np.float64)
            finite = np.sort(losses[np.isfinite(losses)])
            dropped = losses.size - finite.size
            label = method if not dropped else f"{method} ({dropped} non-finite left out)"
            if log_x and finite.size:
                positive = finite[finite > 0]
                floor = positive.min() if positive.size else float(epsilon) / 10
                finite = np.maximum(finite, floor)
            heights = np.arange(1, finite.size + 1) / max(losses.size, 1)
            ax.step(finite, heights, where="post", label=label)
        ax.axvline(epsilon, color="black", linestyle="--", linewidth=1, label=f"ε = {epsilon:g}")
        if log_x:
            ax.set_xscale("log")
        ax.set_title(f"{split} per-sample losses")
        ax.set_xlabel("loss")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("fraction of samples with loss ≤ x")
    axes[0].legend(loc="upper left")  # CDFs leave that corner empty
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
