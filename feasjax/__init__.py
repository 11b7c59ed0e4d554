"""feasjax: sample-centric learning in JAX.

Feasible Learning (one Lagrange multiplier per training sample), its resilient relaxation,
dual optimizers, indexed (per-row) optimizer states, averaging and robustness metrics, as pure
Optax-style transformations that compile with ``jit`` and scale over devices.

The top level holds the names the README uses. Everything else lives in a subpackage per concept
(``feasjax.core``, ``averaging``, ``uncertainty``, ``models``, ``data``, ``metrics``,
``training``, ``parallel``, ``experiments``, ``federated``), reachable from here so that
``fj.parallel.pad_samples`` works after ``import feasjax as fj``. Subpackages and names are
imported on first use: ``import feasjax`` itself imports no JAX (so the command line answers
``feasjax --help`` at once), and ``fj.feasible`` costs what importing ``feasjax.core`` costs.
Names that were at the top level in 0.1 and now live only in a subpackage still resolve here,
with a ``DeprecationWarning``, until 0.3.
"""
from typing import TYPE_CHECKING

from feasjax._exports import module_attributes

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from feasjax import averaging
    from feasjax import core
    from feasjax import data
    from feasjax import experiments
    from feasjax import federated
    from feasjax import metrics
    from feasjax import models
    from feasjax import parallel
    from feasjax import training
    from feasjax import uncertainty
    from feasjax.core.transform import feasible
    from feasjax.core.transform import constrained
    from feasjax.core.transform import multipliers
    from feasjax.core.transform import dual_update
    from feasjax.core.transform import constrained_state
    from feasjax.core.transform import ConstrainedState
    from feasjax.core.learning import feasible_learning
    from feasjax.core.learning import empirical_risk
    from feasjax.core.learning import per_example
    from feasjax.core.solver import primal_dual
    from feasjax.core.solver import PrimalDual
    from feasjax.core.solver import PrimalDualState
    from feasjax.core.problem import ConstraintGroup
    from feasjax.core.problem import ConstraintValue
    from feasjax.core.problem import ProblemOutput
    from feasjax.core.transform import SAMPLES
    from feasjax.core.dual import ascent
    from feasjax.core.dual import nupi
    from feasjax.core.dual import optimistic
    from feasjax.core.formulations import lagrangian
    from feasjax.core.formulations import resilient
    from feasjax.core.formulations import augmented_lagrangian
    from feasjax.core.formulations import quadratic_penalty
    from feasjax.core.rows import indexed
    from feasjax.averaging.wrappers import averaged
    from feasjax.averaging.wrappers import averaged_params
    from feasjax.averaging.averagers import ema
    from feasjax.averaging.averagers import polyak
    from feasjax.averaging.averagers import tail_polyak
    from feasjax.averaging.averagers import lawa
    from feasjax.averaging.averagers import swa
    from feasjax.averaging.schedules import swa_schedule
    from feasjax.averaging.indexed import indexed_averaged
    from feasjax.averaging.mixing import mix
    from feasjax.uncertainty.bootstrap import multiplier_bootstrap
    from feasjax.uncertainty.confidence import coordinate_intervals
    from feasjax.uncertainty.confidence import confidence_ball
    from feasjax.training.engine import train
    from feasjax.training.steps import nnx_step
    from feasjax.training.steps import nnx_update
    from feasjax.training.resume import train_resumable
    from feasjax.training.loop import epoch_fn
    from feasjax.training.loop import epoch_indices
    from feasjax.parallel.mesh import data_mesh
    from feasjax.parallel.mesh import shard_data
    from feasjax.parallel.mesh import init_sharded
    from feasjax.parallel.mesh import data_parallel_epoch
    from feasjax.parallel.mesh import DATA_AXIS
    from feasjax.models.nets import MLP
    from feasjax.models.nets import CNN
    from feasjax.models.nets import ResNet
    from feasjax.models.losses import per_sample_loss_fn
    from feasjax.data.datasets import load_dataset
    from feasjax.metrics.summary import loss_summary

__version__ = "0.1.0"

__all__ = [
    # the subpackages
    "core",
    "averaging",
    "uncertainty",
    "models",
    "data",
    "metrics",
    "training",
    "parallel",
    "experiments",
    "federated",
    # the constrained core (feasjax.core)
    "feasible",
    "constrained",
    "multipliers",
    "dual_update",
    "constrained_state",
    "ConstrainedState",
    "feasible_learning",
    "empirical_risk",
    "per_example",
    "primal_dual",
    "PrimalDual",
    "PrimalDualState",
    "ConstraintGroup",
    "ConstraintValue",
    "ProblemOutput",
    "SAMPLES",
    "ascent",
    "nupi",
    "optimistic",
    "lagrangian",
    "resilient",
    "augmented_lagrangian",
    "quadratic_penalty",
    "indexed",
    # averaging (feasjax.averaging)
    "averaged",
    "averaged_params",
    "ema",
    "polyak",
    "tail_polyak",
    "lawa",
    "swa",
    "swa_schedule",
    "indexed_averaged",
    "mix",
    # uncertainty (feasjax.uncertainty)
    "multiplier_bootstrap",
    "coordinate_intervals",
    "confidence_ball",
    # training (feasjax.training)
    "train",
    "nnx_step",
    "nnx_update",
    "train_resumable",
    "epoch_fn",
    "epoch_indices",
    # data parallelism (feasjax.parallel)
    "data_mesh",
    "shard_data",
    "init_sharded",
    "data_parallel_epoch",
    "DATA_AXIS",
    # models and losses (feasjax.models)
    "MLP",
    "CNN",
    "ResNet",
    "per_sample_loss_fn",
    # data (feasjax.data)
    "load_dataset",
    # metrics (feasjax.metrics)
    "loss_summary",
    "__version__",
]

# Top-level names of 0.1 that now live only in a subpackage: name -> the subpackage exporting it,
# or, for the helpers that no subpackage exports any more, the module that defines them.
_MOVED = {
    "accuracy": "feasjax.metrics",
    "apply_row_updates": "feasjax.core.rows",
    "AveragedState": "feasjax.averaging",
    "Averager": "feasjax.averaging",
    "bootstrap_estimates": "feasjax.uncertainty",
    "BootstrapState": "feasjax.uncertainty",
    "ChainState": "feasjax.uncertainty",
    "check_compatible": "feasjax.training",
    "check_indices": "feasjax.core.checks",
    "checkpoint_manager": "feasjax.training",
    "chunk_fn": "feasjax.training",
    "combine_duplicates": "feasjax.core.rows",
    "ConfidenceBall": "feasjax.uncertainty",
    "cross_entropy": "feasjax.models",
    "cvar": "feasjax.metrics",
    "Dataset": "feasjax.data",
    "EpochInfo": "feasjax.training",
    "estimate_mixing_alpha": "feasjax.averaging",
    "feasible_fraction": "feasjax.metrics",
    "find_averaged_states": "feasjax.averaging",
    "Formulation": "feasjax.core.formulations",
    "from_arrays": "feasjax.data",
    "gather_rows": "feasjax.core.rows",
    "global_indices": "feasjax.parallel",
    "global_loss_summary": "feasjax.parallel",
    "History": "feasjax.training",
    "IndexedState": "feasjax.core",
    "Interval": "feasjax.uncertainty",
    "linear_functional_interval": "feasjax.uncertainty",
    "local_epoch_fn": "feasjax.parallel",
    "mixing_helps": "feasjax.averaging",
    "mixing_mse": "feasjax.averaging",
    "multiplier_stats": "feasjax.metrics",
    "MultiplierBootstrap": "feasjax.uncertainty",
    "NuPIState": "feasjax.core.dual",
    "optimal_mixing_alpha": "feasjax.averaging",
    "OptimisticState": "feasjax.core.dual",
    "pad_samples": "feasjax.parallel",
    "PenaltyState": "feasjax.core.formulations",
    "pmap_epoch": "feasjax.parallel",
    "power_decay_schedule": "feasjax.uncertainty",
    "predict_fn": "feasjax.models",
    "project_nonnegative": "feasjax.core.dual",
    "quantile": "feasjax.metrics",
    "replicate": "feasjax.parallel",
    "restore_checkpoint": "feasjax.training",
    "Restored": "feasjax.training",
    "sample_mask": "feasjax.parallel",
    "save_checkpoint": "feasjax.training",
    "scatter_rows": "feasjax.core.rows",
    "shard_layout": "feasjax.parallel",
    "ShardLayout": "feasjax.parallel",
    "slack": "feasjax.core.formulations",
    "squared_error": "feasjax.models",
    "stack_runs": "feasjax.parallel",
    "state_partition_specs": "feasjax.parallel",
    "StepInfo": "feasjax.core",
    "summarize_runs": "feasjax.parallel",
    "sweep_epoch": "feasjax.parallel",
    "SweepHistory": "feasjax.parallel",
    "train_sweep": "feasjax.parallel",
    "unpad_samples": "feasjax.parallel",
    "unstack_runs": "feasjax.parallel",
    "weighted_sum": "feasjax.core",
    "worst_class_accuracy": "feasjax.metrics",
}


# Each public name is imported on first use, from its subpackage (PEP 562): ``import feasjax``
# costs no more than importing JAX, and ``feasjax --help`` imports no JAX at all.
__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_MOVED, lazy={
    "feasjax.core": (
        "core", "feasible", "constrained", "multipliers", "dual_update", "constrained_state",
        "ConstrainedState", "feasible_learning", "empirical_risk", "per_example", "primal_dual",
        "PrimalDual", "PrimalDualState", "ConstraintGroup", "ConstraintValue", "ProblemOutput",
        "SAMPLES", "ascent", "nupi", "optimistic", "lagrangian", "resilient",
        "augmented_lagrangian", "quadratic_penalty", "indexed"),
    "feasjax.averaging": ("averaging", "averaged", "averaged_params", "ema", "polyak",
                          "tail_polyak", "lawa", "swa", "swa_schedule", "indexed_averaged", "mix"),
    "feasjax.uncertainty": ("uncertainty", "multiplier_bootstrap", "coordinate_intervals",
                            "confidence_ball"),
    "feasjax.training": ("training", "train", "nnx_step", "nnx_update", "train_resumable",
                         "epoch_fn", "epoch_indices"),
    "feasjax.parallel": ("parallel", "data_mesh", "shard_data", "init_sharded",
                         "data_parallel_epoch", "DATA_AXIS"),
    "feasjax.models": ("models", "MLP", "CNN", "ResNet", "per_sample_loss_fn"),
    "feasjax.data": ("data", "load_dataset"),
    "feasjax.metrics": ("metrics", "loss_summary"),
    "feasjax.experiments": ("experiments",),
    "feasjax.federated": ("federated",),
})
