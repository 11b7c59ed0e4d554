"""Experiments: one ERM / FL / RFL run from a configuration to metrics (``runs``), built
from the model, solver and evaluation builders of ``builders``, and the same run on a mesh or for
several seeds in one vmapped program (``multirun``). ``feasjax demo`` and ``feasjax train`` are
thin layers over ``run_method``. Group robustness (``groups``: ERM, re-weighting, last-layer
retraining of ``llr``, FairDropout, group DRO, FL, RFL with worst-group metrics) backs
``feasjax groups``. The paper's experiments (``presets``, ``paper``, and ``preference``: DPO,
FL-DPO, RFL-DPO with LoRA on a small transformer) back ``feasjax paper``.
"""
from typing import TYPE_CHECKING

from feasjax._exports import module_attributes

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.experiments.config import METHODS
    from feasjax.experiments.config import MODELS
    from feasjax.experiments.config import AVERAGES
    from feasjax.experiments.config import RunConfig
    from feasjax.experiments.config import default_epsilon
    from feasjax.experiments.config import default_fl_dropout
    from feasjax.experiments.builders import ModelFns
    from feasjax.experiments.builders import build_model
    from feasjax.experiments.builders import model_fns
    from feasjax.experiments.builders import build_primal_optimizer
    from feasjax.experiments.builders import build_solver
    from feasjax.experiments.builders import evaluate
    from feasjax.experiments.multirun import SweepResult
    from feasjax.experiments.multirun import run_method_sweep
    from feasjax.experiments.runs import MethodResult
    from feasjax.experiments.runs import run_method
    from feasjax.experiments.config import GROUP_METHODS
    from feasjax.experiments.groups import GroupConfig
    from feasjax.experiments.groups import run_group_method
    from feasjax.experiments.llr import cross_validated_head
    from feasjax.experiments.llr import retrain_last_layer
    from feasjax.experiments.presets import PAPER_METHODS
    from feasjax.experiments.presets import PRESETS
    from feasjax.experiments.presets import PaperPreset
    from feasjax.experiments.presets import PreferencePreset
    from feasjax.experiments.presets import PREFERENCE_METHODS
    from feasjax.experiments.presets import override

__all__ = [
    "GROUP_METHODS",
    "GroupConfig",
    "retrain_last_layer",
    "cross_validated_head",
    "PaperPreset",
    "PRESETS",
    "PAPER_METHODS",
    "PreferencePreset",
    "PREFERENCE_METHODS",
    "override",
    "run_group_method",
    "AVERAGES",
    "build_model",
    "build_primal_optimizer",
    "build_solver",
    "default_epsilon",
    "default_fl_dropout",
    "evaluate",
    "MethodResult",
    "METHODS",
    "model_fns",
    "ModelFns",
    "MODELS",
    "run_method",
    "run_method_sweep",
    "RunConfig",
    "SweepResult",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "fit_head": "feasjax.experiments.llr",
    "LinearHead": "feasjax.experiments.llr",
    "resolve_devices": "feasjax.experiments.multirun",
    "sample_order_state": "feasjax.experiments.multirun",
}

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
