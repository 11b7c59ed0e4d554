"""The constrained core: everything that turns per-sample (or per-constraint) losses into
multipliers, a Lagrangian and a primal-dual step. ``transform`` holds the Optax transformations
(``feasible``, ``constrained``) and the primal step, ``solver`` the primal-dual solver
(``primal_dual``), ``learning`` Feasible Learning and ERM on top of it, ``dual``,
``formulations`` and ``problem`` the dual optimizers, Lagrangian formulations and constraint
groups, ``rows`` indexed (per-row) optimizer states, and ``dual_step`` the one dual step that
every entry point shares; ``reweighting`` the group weights of subpopulation shift and
``robust`` group DRO as a dense constraint group. The machinery modules ``checks``,
``defaults`` and ``dual_step`` are reached as modules (``feasjax.core.defaults.SCHEME``); of
their helpers only ``check_indices`` is exported here.
"""
from feasjax.core.weighting import REDUCTIONS
from feasjax.core.weighting import weighted_sum
from feasjax.core.reweighting import group_counts
from feasjax.core.reweighting import group_weights
from feasjax.core.reweighting import reweighted
from feasjax.core.robust import GROUPS
from feasjax.core.robust import exponentiated_gradient
from feasjax.core.robust import group_mean_losses
from feasjax.core.robust import group_dro
from feasjax.core.rows import IndexedState
from feasjax.core.rows import indexed
from feasjax.core.rows import gather_rows
from feasjax.core.rows import scatter_rows
from feasjax.core.rows import apply_row_updates
from feasjax.core.rows import combine_duplicates
from feasjax.core.rows import unique_rows
from feasjax.core.rows import update_rows
from feasjax.core.rows import write_rows
from feasjax.core.rows import in_range
from feasjax.core.dual import AscentTransformation
from feasjax.core.dual import ascent
from feasjax.core.dual import is_ascent
from feasjax.core.dual import check_ascent
from feasjax.core.dual import project_nonnegative
from feasjax.core.dual import NuPIState
from feasjax.core.dual import nupi
from feasjax.core.dual import OptimisticState
from feasjax.core.dual import optimistic
from feasjax.core.formulations import Formulation
from feasjax.core.formulations import PenaltyState
from feasjax.core.formulations import KINDS
from feasjax.core.formulations import lagrangian
from feasjax.core.formulations import resilient
from feasjax.core.formulations import slack
from feasjax.core.formulations import quadratic_penalty
from feasjax.core.formulations import augmented_lagrangian
from feasjax.core.problem import ConstraintValue
from feasjax.core.problem import ProblemOutput
from feasjax.core.problem import ConstraintGroup
from feasjax.core.transform import SAMPLES
from feasjax.core.transform import SCHEMES
from feasjax.core.transform import ConstrainedState
from feasjax.core.transform import constrained
from feasjax.core.transform import feasible
from feasjax.core.transform import constrained_state
from feasjax.core.transform import multipliers
from feasjax.core.transform import dual_update
from feasjax.core.transform import check_scheme
from feasjax.core.transform import primal_step
from feasjax.core.solver import PrimalDual
from feasjax.core.solver import PrimalDualState
from feasjax.core.solver import StepInfo
from feasjax.core.solver import primal_dual
from feasjax.core.learning import feasible_learning
from feasjax.core.learning import empirical_risk
from feasjax.core.learning import per_example
from feasjax.core.checks import check_indices

__all__ = [
    "exponentiated_gradient",
    "group_counts",
    "group_dro",
    "group_mean_losses",
    "group_weights",
    "GROUPS",
    "reweighted",
    "apply_row_updates",
    "ascent",
    "AscentTransformation",
    "augmented_lagrangian",
    "check_ascent",
    "check_indices",
    "check_scheme",
    "combine_duplicates",
    "constrained",
    "constrained_state",
    "ConstrainedState",
    "ConstraintGroup",
    "ConstraintValue",
    "dual_update",
    "empirical_risk",
    "feasible",
    "feasible_learning",
    "Formulation",
    "gather_rows",
    "in_range",
    "indexed",
    "IndexedState",
    "is_ascent",
    "KINDS",
    "lagrangian",
    "multipliers",
    "nupi",
    "NuPIState",
    "optimistic",
    "OptimisticState",
    "PenaltyState",
    "per_example",
    "primal_dual",
    "primal_step",
    "PrimalDual",
    "PrimalDualState",
    "ProblemOutput",
    "project_nonnegative",
    "quadratic_penalty",
    "REDUCTIONS",
    "resilient",
    "SAMPLES",
    "scatter_rows",
    "SCHEMES",
    "slack",
    "StepInfo",
    "unique_rows",
    "update_rows",
    "weighted_sum",
    "write_rows",
]
