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
from feasjax._exports import by_name, module_attributes
from feasjax.core.weighting import weighted_sum
from feasjax.core.reweighting import group_weights, reweighted
from feasjax.core.robust import exponentiated_gradient, group_dro
from feasjax.core.rows import IndexedState, indexed
from feasjax.core.dual import ascent, nupi, optimistic
from feasjax.core.formulations import lagrangian, resilient, quadratic_penalty, augmented_lagrangian
from feasjax.core.problem import ConstraintValue, ProblemOutput, ConstraintGroup
from feasjax.core.transform import (SAMPLES, ConstrainedState, constrained, feasible,
                                    constrained_state, multipliers, dual_update)
from feasjax.core.solver import PrimalDual, PrimalDualState, StepInfo, primal_dual
from feasjax.core.learning import feasible_learning, empirical_risk, per_example

__all__ = ["exponentiated_gradient", "group_dro", "group_weights", "reweighted", "ascent",
           "augmented_lagrangian", "constrained", "constrained_state", "ConstrainedState",
           "ConstraintGroup", "ConstraintValue", "dual_update", "empirical_risk", "feasible",
           "feasible_learning", "indexed", "IndexedState", "lagrangian", "multipliers", "nupi",
           "optimistic", "per_example", "primal_dual", "PrimalDual", "PrimalDualState",
           "ProblemOutput", "quadratic_penalty", "resilient", "SAMPLES", "StepInfo", "weighted_sum"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({
    "feasjax.core.checks": ("check_indices",),
    "feasjax.core.dual": ("AscentTransformation", "check_ascent", "is_ascent", "NuPIState",
                          "OptimisticState", "project_nonnegative"),
    "feasjax.core.formulations": ("Formulation", "KINDS", "PenaltyState", "slack"),
    "feasjax.core.reweighting": ("group_counts",),
    "feasjax.core.robust": ("group_mean_losses", "GROUPS"),
    "feasjax.core.rows": ("apply_row_updates", "combine_duplicates", "gather_rows", "in_range",
                          "scatter_rows", "unique_rows", "update_rows", "write_rows"),
    "feasjax.core.transform": ("check_scheme", "primal_step", "SCHEMES"),
    "feasjax.core.weighting": ("REDUCTIONS",),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
