"""feasjax: sample-centric learning in JAX.

Feasible Learning (one Lagrange multiplier per training sample), its resilient relaxation,
dual optimizers, indexed (per-row) optimizer states, averaging and robustness metrics, as pure
Optax-style transformations that compile with ``jit`` and scale over devices.
"""
from feasjax.averagers import Averager
from feasjax.averagers import ema
from feasjax.averagers import lawa
from feasjax.averagers import polyak
from feasjax.averagers import swa
from feasjax.averagers import tail_polyak
from feasjax.averaging import AveragedState
from feasjax.averaging import averaged
from feasjax.averaging import averaged_params
from feasjax.averaging import find_averaged_states
from feasjax.bootstrap import BootstrapState
from feasjax.bootstrap import ChainState
from feasjax.bootstrap import MultiplierBootstrap
from feasjax.bootstrap import bootstrap_estimates
from feasjax.bootstrap import multiplier_bootstrap
from feasjax.bootstrap import power_decay_schedule
from feasjax.checkpoint import Restored
from feasjax.checkpoint import check_compatible
from feasjax.checkpoint import checkpoint_manager
from feasjax.checkpoint import restore_checkpoint
from feasjax.checkpoint import save_checkpoint
from feasjax.checks import check_indices
from feasjax.confidence import ConfidenceBall
from feasjax.confidence import Interval
from feasjax.confidence import confidence_ball
from feasjax.confidence import coordinate_intervals
from feasjax.confidence import linear_functional_interval
from feasjax.data import Dataset
from feasjax.data import from_arrays
from feasjax.data import load_dataset
from feasjax.dual import NuPIState
from feasjax.dual import OptimisticState
from feasjax.dual import ascent
from feasjax.dual import nupi
from feasjax.dual import optimistic
from feasjax.dual import project_nonnegative
from feasjax.feasible import SAMPLES
from feasjax.feasible import empirical_risk
from feasjax.feasible import feasible_learning
from feasjax.feasible import per_example
from feasjax.formulations import Formulation
from feasjax.formulations import PenaltyState
from feasjax.formulations import augmented_lagrangian
from feasjax.formulations import lagrangian
from feasjax.formulations import quadratic_penalty
from feasjax.formulations import resilient
from feasjax.formulations import slack
from feasjax.indexed import IndexedState
from feasjax.indexed import apply_row_updates
from feasjax.indexed import combine_duplicates
from feasjax.indexed import gather_rows
from feasjax.indexed import indexed
from feasjax.indexed import scatter_rows
from feasjax.indexed_averaging import indexed_averaged
from feasjax.losses import cross_entropy
from feasjax.losses import per_sample_loss_fn
from feasjax.losses import predict_fn
from feasjax.losses import squared_error
from feasjax.metrics import accuracy
from feasjax.metrics import cvar
from feasjax.metrics import feasible_fraction
from feasjax.metrics import loss_summary
from feasjax.metrics import multiplier_stats
from feasjax.metrics import quantile
from feasjax.metrics import worst_class_accuracy
from feasjax.mixing import estimate_mixing_alpha
from feasjax.mixing import mix
from feasjax.mixing import mixing_helps
from feasjax.mixing import mixing_mse
from feasjax.mixing import optimal_mixing_alpha
from feasjax.models import CNN
from feasjax.models import MLP
from feasjax.primal_dual import PrimalDual
from feasjax.primal_dual import PrimalDualState
from feasjax.primal_dual import StepInfo
from feasjax.primal_dual import primal_dual
from feasjax.problem import ConstraintGroup
from feasjax.problem import ConstraintValue
from feasjax.problem import ProblemOutput
from feasjax.resume import train_resumable
from feasjax.schedules import swa_schedule
from feasjax.training import EpochInfo
from feasjax.training import History
from feasjax.training import chunk_fn
from feasjax.training import epoch_fn
from feasjax.training import epoch_indices
from feasjax.training import train
from feasjax.weighting import weighted_sum

__version__ = "0.1.0"

__all__ = [
    "accuracy",
    "apply_row_updates",
    "ascent",
    "augmented_lagrangian",
    "averaged",
    "averaged_params",
    "AveragedState",
    "Averager",
    "bootstrap_estimates",
    "BootstrapState",
    "ChainState",
    "check_compatible",
    "check_indices",
    "checkpoint_manager",
    "chunk_fn",
    "CNN",
    "combine_duplicates",
    "confidence_ball",
    "ConfidenceBall",
    "ConstraintGroup",
    "ConstraintValue",
    "coordinate_intervals",
    "cross_entropy",
    "cvar",
    "Dataset",
    "ema",
    "empirical_risk",
    "epoch_fn",
    "epoch_indices",
    "EpochInfo",
    "estimate_mixing_alpha",
    "feasible_fraction",
    "feasible_learning",
    "find_averaged_states",
    "Formulation",
    "from_arrays",
    "gather_rows",
    "History",
    "indexed",
    "indexed_averaged",
    "IndexedState",
    "Interval",
    "lagrangian",
    "lawa",
    "linear_functional_interval",
    "load_dataset",
    "loss_summary",
    "mix",
    "mixing_helps",
    "mixing_mse",
    "MLP",
    "multiplier_bootstrap",
    "multiplier_stats",
    "MultiplierBootstrap",
    "nupi",
    "NuPIState",
    "optimal_mixing_alpha",
    "optimistic",
    "OptimisticState",
    "PenaltyState",
    "per_example",
    "per_sample_loss_fn",
    "polyak",
    "power_decay_schedule",
    "predict_fn",
    "primal_dual",
    "PrimalDual",
    "PrimalDualState",
    "ProblemOutput",
    "project_nonnegative",
    "quadratic_penalty",
    "quantile",
    "resilient",
    "restore_checkpoint",
    "Restored",
    "SAMPLES",
    "save_checkpoint",
    "scatter_rows",
    "slack",
    "squared_error",
    "StepInfo",
    "swa",
    "swa_schedule",
    "tail_polyak",
    "train",
    "train_resumable",
    "weighted_sum",
    "worst_class_accuracy",
]
