"""Decision boundaries of two-class models on 2-D inputs (the paper's two-moons figure): one
panel per method, the predicted probability of class 1 on a grid, its 0.5 contour and the
training points."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from feasjax.metrics.plotting import _save

__all__: list = []  # helpers of feasjax paper's --plot


def decision_boundary_figure(grid: tuple[np.ndarray, np.ndarray],
                             probabilities: Mapping[str, np.ndarray], x: np.ndarray,
                             y: np.ndarray, *, title: str | None = None) -> Figure:
    """One panel per method: ``probabilities[method]`` (shape of the ``grid`` meshes) as filled
    contours, the 0.5 level as the boundary, and the points ``x`` (N, 2) coloured by ``y``.

    Example:
      >>> import numpy as np
      >>> from feasjax.metrics.boundaries import decision_boundary_figure
      >>> gx, gy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
      >>> fig = decision_boundary_figure((gx, gy), {"erm": (gx > 0) * 1.0},
      ...                                np.zeros((2, 2)), np.array([0, 1]))
      >>> len(fig.axes)
      1
    """
    gx, gy = grid
    fig = Figure(figsize=(4 * len(probabilities), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(probabilities), sharey=True))
    for ax, (method, prob) in zip(axes, probabilities.items()):
        ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(gx, gy, prob, levels=[0.5], colors="black", linewidths=1.5)
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", s=6, edgecolors="none")
        ax.set_title(method)
    fig.suptitle("Decision boundaries" + (f": {title}" if title else ""))
    return fig


def plot_decision_boundaries(grid: tuple[np.ndarray, np.ndarray],
                             probabilities: Mapping[str, np.ndarray], x: np.ndarray,
                             y: np.ndarray, path: str | os.PathLike, *,
                             title: str | None = None) -> Path:
    """Write :func:`decision_boundary_figure` as a PNG; returns the path."""
    return _save(decision_boundary_figure(grid, probabilities, x, y, title=title), path, dpi=100)
