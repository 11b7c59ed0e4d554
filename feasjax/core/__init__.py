"""The constrained core: everything that turns per-sample (or per-constraint) losses into
multipliers, a Lagrangian and a primal-dual step. ``transform`` holds the Optax transformations
(``feasible``, ``constrained``) and the primal step, ``solver`` the primal-dual solver
(``primal_dual``), ``learning`` Feasible Learning and ERM on top of it, ``dual``,
``formulations`` and ``problem`` the dual optimizers, Lagrangian formulations and constraint
groups, ``rows`` indexed (per-row) optimizer states, and ``dual_step`` the one dual step that
every entry point shares; ``reweighting`` the group weights of subpopulation shift and
``robust`` group DRO as a dense constraint group.

``__all__`` is what a user calls. The helpers (row gathers and scatters, argument checks, the
parts of the dual step, ``primal_step``, the states of the dual optimizers and formulations)
live in their modules and are imported from there, e.g. ``feasjax.core.rows.unique_rows``; they
are not API and may change. The names 0.1 exported here still resolve until 0.3, with a
``DeprecationWarning`` naming their module.
"""
from feasjax._exports import module_attributes
from feasjax.core.weighting import weighted_sum
from feasjax.core.reweighting import group_weights
from feasjax.core.reweighting import reweighted
from feasjax.core.robust import exponentiated_gradient
from feasjax.core.robust import group_dro
from feasjax.core.rows import IndexedState
from feasjax.core.rows import indexed
from feasjax.core.dual import ascent
from feasjax.core.dual import nupi
from feasjax.core.dual import optimistic
from feasjax.core.formulations import lagrangian
from feasjax.core.formulations import resilient
from feasjax.core.formulations import quadratic_penalty
from feasjax.core.formulations import augmented_lagrangian
from feasjax.core.problem import ConstraintValue
from feasjax.core.problem import ProblemOutput
from feasjax.core.problem import ConstraintGroup
from feasjax.core.transform import SAMPLES
from feasjax.core.transform import ConstrainedState
from feasjax.core.transform import constrained
from feasjax.core.transform import feasible
from feasjax.core.transform import constrained_state
from feasjax.core.transform import multipliers
from feasjax.core.transform import dual_update
from feasjax.core.solver import PrimalDual
from feasjax.core.solver import PrimalDualState
from feasjax.core.solver import StepInfo
from feasjax.core.solver import primal_dual
from feasjax.core.learning import feasible_learning
from feasjax.core.learning import empirical_risk
from feasjax.core.learning import per_example

__all__ = [
    "exponentiated_gradient",
    "group_dro",
    "group_weights",
    "reweighted",
    "ascent",
    "augmented_lagrangian",
    "constrained",
    "constrained_state",
    "ConstrainedState",
    "ConstraintGroup",
    "ConstraintValue",
    "dual_update",
    "empirical_risk",
    "feasible",
    "feasible_learning",
    "indexed",
    "IndexedState",
    "lagrangian",
    "multipliers",
    "nupi",
    "optimistic",
    "per_example",
    "primal_dual",
    "PrimalDual",
    "PrimalDualState",
    "ProblemOutput",
    "quadratic_penalty",
    "resilient",
    "SAMPLES",
    "StepInfo",
    "weighted_sum",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "apply_row_updates": "feasjax.core.rows",
    "AscentTransformation": "feasjax.core.dual",
    "check_ascent": "feasjax.core.dual",
    "check_indices": "feasjax.core.checks",
    "check_scheme": "feasjax.core.transform",
    "combine_duplicates": "feasjax.core.rows",
    "Formulation": "feasjax.core.formulations",
    "gather_rows": "feasjax.core.rows",
    "group_counts": "feasjax.core.reweighting",
    "group_mean_losses": "feasjax.core.robust",
    "GROUPS": "feasjax.core.robust",
    "in_range": "feasjax.core.rows",
    "is_ascent": "feasjax.core.dual",
    "KINDS": "feasjax.core.formulations",
    "NuPIState": "feasjax.core.dual",
    "OptimisticState": "feasjax.core.dual",
    "PenaltyState": "feasjax.core.formulations",
    "primal_step": "feasjax.core.transform",
    "project_nonnegative": "feasjax.core.dual",
    "REDUCTIONS": "feasjax.core.weighting",
    "scatter_rows": "feasjax.core.rows",
    "SCHEMES": "feasjax.core.transform",
    "slack": "feasjax.core.formulations",
    "unique_rows": "feasjax.core.rows",
    "update_rows": "feasjax.core.rows",
    "write_rows": "feasjax.core.rows",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
