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
from feasjax.transform import ConstrainedState
from feasjax.transform import constrained
from feasjax.transform import constrained_state
from feasjax.transform import dual_update
from feasjax.transform import feasible
from feasjax.transform import multipliers
from feasjax.data import Dataset
from feasjax.data import from_arrays
from feasjax.data import load_dataset
from feasjax.distributed import global_loss_summary
from feasjax.dual import NuPIState
from feasjax.dual import OptimisticState
from feasjax.dual import ascent
from feasjax.dual import nupi
from feasjax.dual import optimistic
from feasjax.dual import project_nonnegative
from feasjax.learning import SAMPLES
from feasjax.learning import empirical_risk
from feasjax.learning import feasible_learning
from feasjax.learning import per_example
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
from feasjax.layout import ShardLayout
from feasjax.layout import global_indices
from feasjax.layout import pad_samples
from feasjax.layout import sample_mask
from feasjax.layout import shard_layout
from feasjax.layout import unpad_samples
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
from feasjax.parallel import DATA_AXIS
from feasjax.parallel import data_mesh
from feasjax.parallel import data_parallel_epoch
from feasjax.parallel import init_sharded
from feasjax.parallel import local_epoch_fn
from feasjax.parallel import replicate
from feasjax.parallel import shard_data
from feasjax.parallel import state_partition_specs
from feasjax.pmap_compat import pmap_epoch
from feasjax.primal_dual import PrimalDual
from feasjax.primal_dual import PrimalDualState
from feasjax.primal_dual import StepInfo
from feasjax.primal_dual import primal_dual
from feasjax.problem import ConstraintGroup
from feasjax.problem import ConstraintValue
from feasjax.problem import ProblemOutput
from feasjax.resume import train_resumable
from feasjax.schedules import swa_schedule
from feasjax.sweeps import SweepHistory
from feasjax.sweeps import stack_runs
from feasjax.sweeps import summarize_runs
from feasjax.sweeps import sweep_epoch
from feasjax.sweeps import train_sweep
from feasjax.sweeps import unstack_runs
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
    "constrained",
    "constrained_state",
    "ConstrainedState",
    "ConfidenceBall",
    "ConstraintGroup",
    "ConstraintValue",
    "coordinate_intervals",
    "cross_entropy",
    "cvar",
    "DATA_AXIS",
    "data_mesh",
    "data_parallel_epoch",
    "Dataset",
    "dual_update",
    "ema",
    "empirical_risk",
    "epoch_fn",
    "epoch_indices",
    "EpochInfo",
    "estimate_mixing_alpha",
    "feasible",
    "feasible_fraction",
    "feasible_learning",
    "find_averaged_states",
    "Formulation",
    "from_arrays",
    "gather_rows",
    "global_indices",
    "global_loss_summary",
    "History",
    "indexed",
    "indexed_averaged",
    "IndexedState",
    "init_sharded",
    "Interval",
    "lagrangian",
    "lawa",
    "linear_functional_interval",
    "load_dataset",
    "local_epoch_fn",
    "loss_summary",
    "mix",
    "mixing_helps",
    "mixing_mse",
    "MLP",
    "multiplier_bootstrap",
    "multipliers",
    "multiplier_stats",
    "MultiplierBootstrap",
    "nupi",
    "NuPIState",
    "optimal_mixing_alpha",
    "optimistic",
    "OptimisticState",
    "pad_samples",
    "PenaltyState",
    "per_example",
    "per_sample_loss_fn",
    "pmap_epoch",
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
    "replicate",
    "resilient",
    "restore_checkpoint",
    "Restored",
    "sample_mask",
    "SAMPLES",
    "save_checkpoint",
    "scatter_rows",
    "shard_data",
    "shard_layout",
    "ShardLayout",
    "slack",
    "squared_error",
    "stack_runs",
    "state_partition_specs",
    "StepInfo",
    "summarize_runs",
    "swa",
    "swa_schedule",
    "sweep_epoch",
    "SweepHistory",
    "tail_polyak",
    "train",
    "train_resumable",
    "train_sweep",
    "unpad_samples",
    "unstack_runs",
    "weighted_sum",
    "worst_class_accuracy",
]
