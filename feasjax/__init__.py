"""feasjax: sample-centric learning in JAX.

Feasible Learning (one Lagrange multiplier per training sample), its resilient relaxation,
dual optimizers, indexed (per-row) optimizer states, averaging and robustness metrics, as pure
Optax-style transformations that compile with ``jit`` and scale over devices.

The top level holds the names the README uses; everything else lives in a subpackage per
concept (``fj.parallel.pad_samples``). Subpackages and names are imported on first use, so
``import feasjax`` imports no JAX (``feasjax --help`` answers at once). Names that were at the
top level in 0.1 and now live only in a subpackage resolve here, with a ``DeprecationWarning``,
until 0.3.
"""
from typing import TYPE_CHECKING

from feasjax._exports import by_name, module_attributes, subpackage_groups

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from feasjax import (averaging, core, data, experiments, federated, metrics, models, parallel,
                         training, uncertainty)
    from feasjax.core import (feasible, constrained, multipliers, implicit_multipliers,
                              dual_update, constrained_state, ConstrainedState, feasible_learning,
                              empirical_risk, per_example, primal_dual, PrimalDual,
                              PrimalDualState, ConstraintGroup, ConstraintValue, ProblemOutput,
                              SAMPLES, ascent, nupi, optimistic, lagrangian, resilient,
                              augmented_lagrangian, quadratic_penalty, indexed)
    from feasjax.averaging import (averaged, averaged_params, ema, polyak, tail_polyak, lawa, swa,
                                   swa_schedule, indexed_averaged, mix)
    from feasjax.uncertainty import multiplier_bootstrap, coordinate_intervals, confidence_ball
    from feasjax.training import (train, nnx_step, nnx_update, train_resumable, epoch_fn,
                                  epoch_indices)
    from feasjax.parallel import data_mesh, shard_data, init_sharded, data_parallel_epoch, DATA_AXIS
    from feasjax.models import MLP, CNN, ResNet, per_sample_loss_fn
    from feasjax.data import load_dataset
    from feasjax.metrics import loss_summary

__version__ = "0.1.0"

# Each subpackage, then the names it exports here: the order is the map of the lazy imports.
__all__ = [
    "__version__",
    "core",
    "feasible", "constrained", "multipliers", "implicit_multipliers", "dual_update",
    "constrained_state", "ConstrainedState", "feasible_learning", "empirical_risk", "per_example",
    "primal_dual", "PrimalDual", "PrimalDualState", "ConstraintGroup", "ConstraintValue",
    "ProblemOutput", "SAMPLES", "ascent", "nupi", "optimistic", "lagrangian", "resilient",
    "augmented_lagrangian", "quadratic_penalty", "indexed",
    "averaging",
    "averaged", "averaged_params", "ema", "polyak", "tail_polyak", "lawa", "swa", "swa_schedule",
    "indexed_averaged", "mix",
    "uncertainty",
    "multiplier_bootstrap", "coordinate_intervals", "confidence_ball",
    "training",
    "train", "nnx_step", "nnx_update", "train_resumable", "epoch_fn", "epoch_indices",
    "parallel",
    "data_mesh", "shard_data", "init_sharded", "data_parallel_epoch", "DATA_AXIS",
    "models",
    "MLP", "CNN", "ResNet", "per_sample_loss_fn",
    "data",
    "load_dataset",
    "metrics",
    "loss_summary",
    "experiments",
    "federated",
]

# Top-level names of 0.1 that now live only in a subpackage: name -> the subpackage exporting it,
# or, for the helpers that no subpackage exports any more, the module that defines them.
_MOVED = by_name({
    "feasjax.averaging": ("AveragedState", "Averager", "estimate_mixing_alpha",
                          "find_averaged_states", "mixing_helps", "mixing_mse",
                          "optimal_mixing_alpha"),
    "feasjax.core": ("IndexedState", "StepInfo", "weighted_sum"),
    "feasjax.core.checks": ("check_indices",),
    "feasjax.core.dual": ("NuPIState", "OptimisticState", "project_nonnegative"),
    "feasjax.core.formulations": ("Formulation", "PenaltyState", "slack"),
    "feasjax.core.rows": ("apply_row_updates", "combine_duplicates", "gather_rows", "scatter_rows"),
    "feasjax.data": ("Dataset", "from_arrays"),
    "feasjax.metrics": ("accuracy", "cvar", "feasible_fraction", "multiplier_stats", "quantile",
                        "worst_class_accuracy"),
    "feasjax.models": ("cross_entropy", "predict_fn", "squared_error"),
    "feasjax.parallel": ("global_indices", "global_loss_summary", "local_epoch_fn", "pad_samples",
                         "pmap_epoch", "replicate", "sample_mask", "shard_layout", "ShardLayout",
                         "stack_runs", "state_partition_specs", "summarize_runs", "sweep_epoch",
                         "SweepHistory", "train_sweep", "unpad_samples", "unstack_runs"),
    "feasjax.training": ("check_compatible", "checkpoint_manager", "chunk_fn", "EpochInfo",
                         "History", "restore_checkpoint", "Restored", "save_checkpoint"),
    "feasjax.uncertainty": ("bootstrap_estimates", "BootstrapState", "ChainState", "ConfidenceBall",
                            "Interval", "linear_functional_interval", "MultiplierBootstrap",
                            "power_decay_schedule"),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_MOVED,
                                         lazy=subpackage_groups(__name__, __all__))
