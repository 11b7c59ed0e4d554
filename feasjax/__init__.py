"""feasjax: sample-centric learning in JAX.

Feasible Learning (one Lagrange multiplier per training sample), its resilient relaxation,
dual optimizers, indexed (per-row) optimizer states, averaging and robustness metrics, as pure
Optax-style transformations that compile with ``jit`` and scale over devices.
"""
from feasjax.averaging.averagers import Averager
from feasjax.averaging.averagers import ema
from feasjax.averaging.averagers import lawa
from feasjax.averaging.averagers import polyak
from feasjax.averaging.averagers import swa
from feasjax.averaging.averagers import tail_polyak
from feasjax.averaging.wrappers import AveragedState
from feasjax.averaging.wrappers import averaged
from feasjax.averaging.wrappers import averaged_params
from feasjax.averaging.wrappers import find_averaged_states
from feasjax.uncertainty.bootstrap import BootstrapState
from feasjax.uncertainty.bootstrap import ChainState
from feasjax.uncertainty.bootstrap import MultiplierBootstrap
from feasjax.uncertainty.bootstrap import bootstrap_estimates
from feasjax.uncertainty.bootstrap import multiplier_bootstrap
from feasjax.uncertainty.bootstrap import power_decay_schedule
from feasjax.training.checkpoint import Restored
from feasjax.training.checkpoint import check_compatible
from feasjax.training.checkpoint import checkpoint_manager
from feasjax.training.checkpoint import restore_checkpoint
from feasjax.training.checkpoint import save_checkpoint
from feasjax.core.checks import check_indices
from feasjax.uncertainty.confidence import ConfidenceBall
from feasjax.uncertainty.confidence import Interval
from feasjax.uncertainty.confidence import confidence_ball
from feasjax.uncertainty.confidence import coordinate_intervals
from feasjax.uncertainty.confidence import linear_functional_interval
from feasjax.core.transform import ConstrainedState
from feasjax.core.transform import constrained
from feasjax.core.transform import constrained_state
from feasjax.core.transform import dual_update
from feasjax.core.transform import feasible
from feasjax.core.transform import multipliers
from feasjax.data.datasets import Dataset
from feasjax.data.datasets import from_arrays
from feasjax.data.datasets import load_dataset
from feasjax.parallel.distributed import global_loss_summary
from feasjax.core.dual import NuPIState
from feasjax.core.dual import OptimisticState
from feasjax.core.dual import ascent
from feasjax.core.dual import nupi
from feasjax.core.dual import optimistic
from feasjax.core.dual import project_nonnegative
from feasjax.core.learning import SAMPLES
from feasjax.core.learning import empirical_risk
from feasjax.core.learning import feasible_learning
from feasjax.core.learning import per_example
from feasjax.core.formulations import Formulation
from feasjax.core.formulations import PenaltyState
from feasjax.core.formulations import augmented_lagrangian
from feasjax.core.formulations import lagrangian
from feasjax.core.formulations import quadratic_penalty
from feasjax.core.formulations import resilient
from feasjax.core.formulations import slack
from feasjax.core.rows import IndexedState
from feasjax.core.rows import apply_row_updates
from feasjax.core.rows import combine_duplicates
from feasjax.core.rows import gather_rows
from feasjax.core.rows import indexed
from feasjax.core.rows import scatter_rows
from feasjax.averaging.indexed import indexed_averaged
from feasjax.parallel.layout import ShardLayout
from feasjax.parallel.layout import global_indices
from feasjax.parallel.layout import pad_samples
from feasjax.parallel.layout import sample_mask
from feasjax.parallel.layout import shard_layout
from feasjax.parallel.layout import unpad_samples
from feasjax.models.losses import cross_entropy
from feasjax.models.losses import per_sample_loss_fn
from feasjax.models.losses import predict_fn
from feasjax.models.losses import squared_error
from feasjax.metrics.summary import accuracy
from feasjax.metrics.summary import cvar
from feasjax.metrics.summary import feasible_fraction
from feasjax.metrics.summary import loss_summary
from feasjax.metrics.summary import multiplier_stats
from feasjax.metrics.summary import quantile
from feasjax.metrics.summary import worst_class_accuracy
from feasjax.averaging.mixing import estimate_mixing_alpha
from feasjax.averaging.mixing import mix
from feasjax.averaging.mixing import mixing_helps
from feasjax.averaging.mixing import mixing_mse
from feasjax.averaging.mixing import optimal_mixing_alpha
from feasjax.models.nets import CNN
from feasjax.models.nets import MLP
from feasjax.parallel.mesh import DATA_AXIS
from feasjax.parallel.mesh import data_mesh
from feasjax.parallel.mesh import data_parallel_epoch
from feasjax.parallel.mesh import init_sharded
from feasjax.parallel.mesh import local_epoch_fn
from feasjax.parallel.mesh import replicate
from feasjax.parallel.mesh import shard_data
from feasjax.parallel.mesh import state_partition_specs
from feasjax.parallel.pmap import pmap_epoch
from feasjax.core.solver import PrimalDual
from feasjax.core.solver import PrimalDualState
from feasjax.core.solver import StepInfo
from feasjax.core.solver import primal_dual
from feasjax.core.problem import ConstraintGroup
from feasjax.core.problem import ConstraintValue
from feasjax.core.problem import ProblemOutput
from feasjax.training.resume import train_resumable
from feasjax.averaging.schedules import swa_schedule
from feasjax.parallel.sweeps import SweepHistory
from feasjax.parallel.sweeps import stack_runs
from feasjax.parallel.sweeps import summarize_runs
from feasjax.parallel.sweeps import sweep_epoch
from feasjax.parallel.sweeps import train_sweep
from feasjax.parallel.sweeps import unstack_runs
from feasjax.training.loop import EpochInfo
from feasjax.training.loop import History
from feasjax.training.loop import chunk_fn
from feasjax.training.loop import epoch_fn
from feasjax.training.loop import epoch_indices
from feasjax.training.loop import train
from feasjax.core.weighting import weighted_sum

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
