"""Plots of per-sample losses and of the commands' accuracies, as PNG files (``Figure``, not
``pyplot``: no global state, Agg on any headless machine)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["loss_survival_figure", "plot_accuracy_curves", "plot_group_accuracy", "plot_loss_cdfs",
           "plot_loss_survival"]

SPLITS = ("train", "test")
FLOOR = 1e-6  # float32 cross-entropy of a confident prediction rounds to 0 or ~1e-7
STYLES = (("C0", "-", "o"), ("C3", "--", "s"), ("C2", ":", "^"), ("C1", "-.", "D"))
Losses = Mapping[str, Mapping[str, np.ndarray]]  # {method: {"train": (N,), "test": (N,)}}


def _check_number(value: object, name: str, high: float = np.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
            np.isfinite(value) and 0 < value < high):
        bound = f"in (0, epsilon={high})" if np.isfinite(high) else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {name}={value!r}")


def _check_inputs(per_method: object, epsilon: object) -> None:
    if not isinstance(per_method, Mapping) or not per_method:
        raise ValueError("per_method must be a non-empty dict {method: {'train': losses, "
                         "'test': losses}}")
    for method, splits in per_method.items():
        if not isinstance(splits, Mapping) or set(splits) != set(SPLITS):
            keys = sorted(splits) if isinstance(splits, Mapping) else type(splits).__name__
            raise ValueError(f"per_method[{method!r}] must have exactly the keys {SPLITS}, "
                             f"got {keys}")
        for split in SPLITS:
            if np.ndim(splits[split]) != 1:
                raise ValueError(f"per_method[{method!r}][{split!r}] must be a 1-D array of "
                                 f"per-sample losses, got shape {np.shape(splits[split])}")
    _check_number(epsilon, "epsilon")


def _save(fig: Figure, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def plot_loss_cdfs(per_method: Losses, epsilon: float, path: str | os.PathLike, *,
                   log_x: bool | None = None, title: str | None = None) -> Path:
    """Write a PNG of the empirical CDFs of per-sample losses: train and test panels.

    One curve per method, :math:`F(t) = \\frac{1}{N}\\#\\{i : \\ell_i \\le t\\}`: its height at
    ``epsilon`` is the feasible fraction. Non-finite losses are left out and counted in the
    legend; on a log x-axis, zero losses are drawn at the smallest plotted value.

    Args:
      per_method: ``{method: {"train": losses (N_train,), "test": losses (N_test,)}}``.
      epsilon: the constraint level, ``> 0``.
      path: where to write the PNG (parent directories are created).
      log_x: log-scaled x-axis; ``None`` chooses it when the losses span more than two decades.
      title: optional figure title.

    Returns:
      The path written (a ``pathlib.Path``).

    Example:
      >>> import os, tempfile, numpy as np
      >>> from feasjax.metrics import plot_loss_cdfs
      >>> losses = {"erm": {"train": np.array([0.01, 0.5, 3.0]),
      ...                   "test": np.array([0.2, 1.0])}}
      >>> out = plot_loss_cdfs(losses, 0.1,
      ...                      os.path.join(tempfile.mkdtemp(), "cdf.png"))
      >>> out.read_bytes()[:4]
      b'\\x89PNG'
    """
    _check_inputs(per_method, epsilon)
    if log_x is None:  # log when the positive losses (and epsilon) span more than two decades
        values = [np.asarray(v, np.float64) for s in per_method.values() for v in s.values()]
        positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values] + [[epsilon]])
        log_x = positive.max() / positive.min() > 100
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
        ax.set(xscale="log" if log_x else "linear", title=f"{split} per-sample losses",
               xlabel="loss")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("fraction of samples with loss ≤ x")
    axes[0].legend(loc="upper left")  # CDFs leave that corner empty
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi=100)


def _survival(losses: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Step points of ``S(t) = #{i : loss_i > t} / N`` from ``t = floor`` up to the largest
    finite loss (where ``S`` falls to the fraction of non-finite losses), and that count."""
    finite = np.sort(losses[np.isfinite(losses)])
    n, dropped = max(losses.size, 1), losses.size - finite.size
    x = np.concatenate([[floor], np.maximum(finite, floor)])
    y = (n - np.arange(finite.size + 1) + 0.0) / n  # after the k smallest: N - k above
    # The curve stops at the largest loss with height 1/N (the sample that has it) instead of
    # falling to 0, which a log axis cannot show; a marker draws that end.
    return x, np.concatenate([y[:-1], y[-2:-1]]) if finite.size else y, dropped


def loss_survival_figure(per_method: Losses, epsilon: float, *, floor: float = FLOOR,
                         title: str | None = None) -> Figure:
    """Survival curves of per-sample losses, train and test panels, log-log: the figure.

    Each curve is :math:`S(t) = \\frac{1}{N}\\#\\{i : \\ell_i > t\\}` (its height at ``epsilon`` is
    the infeasible fraction), ending at height ``1/N`` (marked) at the largest loss. Losses
    below ``floor`` are drawn at ``floor``; non-finite ones are counted in the legend.

    Args:
      per_method, epsilon: as in :func:`plot_loss_cdfs`.
      floor: the smallest loss drawn, in ``(0, epsilon)``.
      title: appended to the figure's title, e.g. ``"digits: 30 epochs, seed 0"``.

    Returns:
      A ``matplotlib.figure.Figure`` (no pyplot state; save it with ``fig.savefig``).

    Example:
      >>> import numpy as np
      >>> from feasjax.metrics import loss_survival_figure
      >>> losses = {"erm": {"train": np.array([0.0, 0.5, 3.0]),
      ...                   "test": np.array([0.2, 1.0])}}
      >>> fig = loss_survival_figure(losses, 0.1, title="toy")
      >>> [ax.get_yscale() for ax in fig.axes], fig.get_suptitle()
      (['log', 'log'], 'Per-sample loss tails: toy')
    """
    _check_inputs(per_method, epsilon)
    _check_number(floor, "floor", epsilon)
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    smallest = 1.0
    for ax, split in zip(axes, SPLITS):
        for (method, splits), (color, dash, mark) in zip(per_method.items(),
                                                          STYLES * len(per_method)):
            losses = np.asarray(splits[split], np.float64)
            x, y, dropped = _survival(losses, float(floor))
            above = np.mean(losses > epsilon) if losses.size else np.nan
            label = f"{method}: max {x[-1]:.3g}, {above:.1%} > ε"
            if dropped:
                label += f" ({dropped} non-finite)"
            ax.step(x, y, where="post", color=color, linestyle=dash, linewidth=1.8, label=label)
            ax.plot(x[-1:], y[-1:], marker=mark, color=color, markersize=7, linestyle="none")
            smallest = min(smallest, 1 / max(losses.size, 1))
        ax.axvline(epsilon, color="black", linestyle="--", linewidth=1, label=f"ε = {epsilon:g}")
        ax.set(xscale="log", yscale="log", title=f"{split} ({len(splits[split])} samples)",
               xlabel="per-sample loss t")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="lower left", fontsize="small")
    axes[0].set(ylim=(smallest / 2, 1.5), ylabel="fraction of samples with loss > t")
    fig.suptitle("Per-sample loss tails" + (f": {title}" if title else ""))
    fig.supxlabel(f"A curve ends (marker) at the method's largest loss; its height at ε is the "
                  f"fraction of samples above ε. Losses below {floor:g} are clipped to "
                  f"{floor:g}.", fontsize="small")
    return fig


def plot_loss_survival(per_method: Losses, epsilon: float, path: str | os.PathLike, *,
                       floor: float = FLOOR, title: str | None = None) -> Path:
    """Write :func:`loss_survival_figure` as a PNG (parent directories are created); returns
    the path written.

    Example:
      >>> import os, tempfile, numpy as np
      >>> from feasjax.metrics import plot_loss_survival
      >>> losses = {"fl": {"train": np.array([0.01, 0.05]),
      ...                  "test": np.array([0.2, 1.0])}}
      >>> plot_loss_survival(losses, 0.1,
      ...                    os.path.join(tempfile.mkdtemp(), "tail.png")).suffix
      '.png'
    """
    return _save(loss_survival_figure(per_method, epsilon, floor=floor, title=title), path, 110)


def plot_group_accuracy(group_accuracy: Mapping[str, Mapping[str, Sequence[float]]],
                        path: str | os.PathLike) -> Path:
    """Write a PNG bar chart of per-group accuracy, mean ± std over runs (``feasjax groups
    --plot``).

    Args:
      group_accuracy: ``{method: {group: accuracies, one per run}}``, the same groups (integer
        names, as strings or ints) for every method.
      path: where to write the PNG (parent directories are created).

    Returns:
      The path written (a ``pathlib.Path``).

    Example:
      >>> import os, tempfile
      >>> from feasjax.metrics import plot_group_accuracy
      >>> acc = {"erm": {"0": [0.9, 0.8], "1": [0.4, 0.5]},
      ...        "fl": {"0": [0.85], "1": [0.7]}}
      >>> plot_group_accuracy(acc,
      ...                     os.path.join(tempfile.mkdtemp(), "groups.png")).suffix
      '.png'
    """
    if not group_accuracy:
        raise ValueError("group_accuracy must be a non-empty dict {method: {group: accuracies}}")
    groups = sorted(next(iter(group_accuracy.values())), key=int)
    width = 0.8 / len(group_accuracy)
    fig = Figure(figsize=(1.5 + 1.2 * len(groups), 3.5))
    ax = fig.add_subplot()
    for k, (name, per_group) in enumerate(group_accuracy.items()):
        acc = [per_group[g] for g in groups]
        ax.bar(np.arange(len(groups)) + k * width, [np.mean(a) for a in acc], width,
               yerr=[np.std(a) for a in acc], label=name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"group {g}" for g in groups])
    ax.set(ylabel="test accuracy", ylim=(0, 1))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def plot_accuracy_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[Sequence[float]]]],
                         path: str | os.PathLike, *, xlabel: str,
                         ylabel: str = "mean client test accuracy",
                         mark: tuple[float, str] | None = None, title: str | None = None) -> Path:
    """Write a PNG of accuracy curves, each the mean over runs (``feasjax federated --plot``).

    Args:
      curves: ``{label: (x, accuracy)}`` with ``accuracy`` of shape ``(runs, len(x))``.
      path: where to write the PNG (parent directories are created).
      xlabel, ylabel: the axis labels.
      mark: ``(x, label)`` of a dashed vertical line, e.g. an estimated optimum.
      title: optional figure title.

    Returns:
      The path written (a ``pathlib.Path``).

    Example:
      >>> import os, tempfile
      >>> from feasjax.metrics import plot_accuracy_curves
      >>> curves = {"mix": ([0.0, 0.5, 1.0], [[0.6, 0.8, 0.7], [0.5, 0.9, 0.7]])}
      >>> path = os.path.join(tempfile.mkdtemp(), "mix.png")
      >>> plot_accuracy_curves(curves, path, xlabel="alpha",
      ...                      mark=(0.5, "estimated alpha")).suffix
      '.png'
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for (label, (x, accuracy)), style in zip(curves.items(), ("o-", "s-", "^-", "D-") * 4):
        ax.plot(x, np.mean(accuracy, axis=0), style, label=label)
    if mark is not None:
        ax.axvline(mark[0], color="k", ls="--", label=mark[1])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi=fig.dpi)
