"""The constrained core: per-sample (or per-constraint) losses to multipliers, a Lagrangian and a
primal-dual step (``transform``: the Optax transformations; ``solver``: ``primal_dual``;
``learning``: Feasible Learning and ERM; ``implicit``: multipliers predicted by a model of the
samples' features; ``dual``, ``formulations``, ``problem``, ``rows``, ``dual_step``;
``reweighting`` and ``robust`` for subpopulation shift). Helpers live in their modules
(``feasjax.core.rows.unique_rows``) and are not API.
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
from feasjax.core.implicit import implicit_multipliers

__all__ = ["exponentiated_gradient", "group_dro", "group_weights", "reweighted", "ascent",
           "augmented_lagrangian", "constrained", "constrained_state", "ConstrainedState",
           "ConstraintGroup", "ConstraintValue", "dual_update", "empirical_risk", "feasible",
           "feasible_learning", "implicit_multipliers", "indexed", "IndexedState", "lagrangian",
           "multipliers", "nupi", "optimistic", "per_example", "primal_dual", "PrimalDual",
           "PrimalDualState", "ProblemOutput", "quadratic_penalty", "resilient", "SAMPLES",
           "StepInfo", "weighted_sum"]

# No longer exported; until 0.3 they resolve with a DeprecationWarning naming their module.
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
