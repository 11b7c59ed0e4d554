"""Experiments: one ERM / FL / RFL run from a configuration to metrics (``runs``), built
from the model, solver and evaluation builders of ``builders``, and the same run on a mesh or for
several seeds in one vmapped program (``multirun``). ``feasjax demo`` and ``feasjax train`` are
thin layers over ``run_method``. Group robustness (``groups``: ERM, re-weighting, last-layer
retraining of ``llr``, FairDropout, group DRO, FL, RFL with worst-group metrics) backs
``feasjax groups``.
"""
from feasjax.experiments.builders import METHODS
from feasjax.experiments.builders import MODELS
from feasjax.experiments.builders import AVERAGES
from feasjax.experiments.builders import RunConfig
from feasjax.experiments.builders import default_epsilon
from feasjax.experiments.builders import ModelFns
from feasjax.experiments.builders import build_model
from feasjax.experiments.builders import model_fns
from feasjax.experiments.builders import build_primal_optimizer
from feasjax.experiments.builders import build_solver
from feasjax.experiments.builders import evaluate
from feasjax.experiments.multirun import SweepResult
from feasjax.experiments.multirun import resolve_devices
from feasjax.experiments.multirun import sample_order_state
from feasjax.experiments.multirun import run_method_sweep
from feasjax.experiments.runs import MethodResult
from feasjax.experiments.runs import run_method
from feasjax.experiments.groups import GROUP_METHODS
from feasjax.experiments.groups import GroupConfig
from feasjax.experiments.groups import run_group_method
from feasjax.experiments.llr import LinearHead
from feasjax.experiments.llr import fit_head
from feasjax.experiments.llr import retrain_last_layer

__all__ = [
    "fit_head",
    "GROUP_METHODS",
    "GroupConfig",
    "LinearHead",
    "retrain_last_layer",
    "run_group_method",
    "AVERAGES",
    "build_model",
    "build_primal_optimizer",
    "build_solver",
    "default_epsilon",
    "evaluate",
    "MethodResult",
    "METHODS",
    "model_fns",
    "ModelFns",
    "MODELS",
    "resolve_devices",
    "run_method",
    "run_method_sweep",
    "RunConfig",
    "sample_order_state",
    "SweepResult",
]
