"""Metrics over per-sample losses: tail summaries (``summary``), group metrics (``groups``) and
plots (``plotting``, imported on first use: matplotlib is slow to import)."""
from typing import TYPE_CHECKING

from feasjax._exports import module_attributes
from feasjax.metrics.summary import (LOSS_SUMMARY_KEYS, quantile, cvar, feasible_fraction, accuracy,
                                     per_class_accuracy, worst_class_accuracy, multiplier_stats,
                                     loss_summary)
from feasjax.metrics.groups import (GROUP_SUMMARY_KEYS, group_mean, group_accuracy, group_loss,
                                    worst_group_accuracy, group_summary)

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.metrics.plotting import (loss_survival_figure, plot_accuracy_curves,
                                          plot_group_accuracy, plot_loss_cdfs, plot_loss_survival)

__all__ = ["accuracy", "cvar", "feasible_fraction", "group_accuracy", "group_loss", "group_mean",
           "group_summary", "GROUP_SUMMARY_KEYS", "loss_summary", "LOSS_SUMMARY_KEYS",
           "loss_survival_figure", "multiplier_stats", "per_class_accuracy", "plot_accuracy_curves",
           "plot_group_accuracy", "plot_loss_cdfs", "plot_loss_survival", "quantile",
           "worst_class_accuracy", "worst_group_accuracy"]

__getattr__, __dir__ = module_attributes(__name__, __all__, lazy={
    "feasjax.metrics.plotting": ("loss_survival_figure", "plot_accuracy_curves",
                                 "plot_group_accuracy", "plot_loss_cdfs", "plot_loss_survival"),
})
