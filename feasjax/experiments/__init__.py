"""Experiments: one ERM / FL / RFL run from a configuration to metrics (``runs``, built from
``builders``; on a mesh or for several seeds in one vmapped program: ``multirun``), behind
``feasjax demo`` and ``feasjax train``; group robustness (``groups``, ``llr``) behind ``feasjax
groups``; the paper's experiments (``presets``, ``paper``, ``preference``) behind ``feasjax paper``.
"""
from typing import TYPE_CHECKING

from feasjax._exports import by_name, module_attributes

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.experiments.config import (AVERAGES, GROUP_METHODS, METHODS, MODELS, RunConfig,
                                            default_epsilon, default_fl_dropout)
    from feasjax.experiments.builders import (ModelFns, build_model, build_primal_optimizer,
                                              build_solver, evaluate, model_fns)
    from feasjax.experiments.multirun import SweepResult, run_method_sweep
    from feasjax.experiments.runs import MethodResult, run_method
    from feasjax.experiments.groups import GroupConfig, run_group_method
    from feasjax.experiments.llr import cross_validated_head, retrain_last_layer
    from feasjax.experiments.presets import (PAPER_METHODS, PREFERENCE_METHODS, PRESETS,
                                             PaperPreset, PreferencePreset, override)

__all__ = ["GROUP_METHODS", "GroupConfig", "retrain_last_layer", "cross_validated_head",
           "PaperPreset", "PRESETS", "PAPER_METHODS", "PreferencePreset", "PREFERENCE_METHODS",
           "override", "run_group_method", "AVERAGES", "build_model", "build_primal_optimizer",
           "build_solver", "default_epsilon", "default_fl_dropout", "evaluate", "MethodResult",
           "METHODS", "model_fns", "ModelFns", "MODELS", "run_method", "run_method_sweep",
           "RunConfig", "SweepResult"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({"feasjax.experiments.llr": ("fit_head", "LinearHead"),
                      "feasjax.experiments.multirun": ("resolve_devices", "sample_order_state")})

# Imported on first use: ``feasjax.experiments.config`` imports no JAX, so the command line builds
# its parser from it before anything heavy is imported.
__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED, lazy={
    "feasjax.experiments.config": (
        "METHODS", "MODELS", "AVERAGES", "RunConfig", "default_epsilon", "default_fl_dropout",
        "GROUP_METHODS"),
    "feasjax.experiments.builders": (
        "ModelFns", "build_model", "model_fns", "build_primal_optimizer", "build_solver",
        "evaluate"),
    "feasjax.experiments.multirun": ("SweepResult", "run_method_sweep"),
    "feasjax.experiments.runs": ("MethodResult", "run_method"),
    "feasjax.experiments.groups": ("GroupConfig", "run_group_method"),
    "feasjax.experiments.llr": ("retrain_last_layer", "cross_validated_head"),
    "feasjax.experiments.presets": ("PaperPreset", "PreferencePreset", "PRESETS", "PAPER_METHODS",
                                    "PREFERENCE_METHODS", "override"),
})
