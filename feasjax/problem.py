"""Constrained problems: what a primal-dual step minimises and which constraints it keeps.

A problem is a pure function ``problem_fn(params, batch) -> ProblemOutput``: a scalar
objective, a dict of constraint groups (each a :class:`ConstraintValue`) and any auxiliary
output (per-sample losses, logits). The static description of each group (size, kind,
formulation, dual optimizer, whether it is sampled by index) is a :class:`ConstraintGroup`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from feasjax import checks
from feasjax.dual import ascent
from feasjax.formulations import Formulation, check_kind, lagrangian
from feasjax.weighting import check_reduction


class ConstraintValue(NamedTuple):
    """Values of one constraint group ``g(θ) <= 0`` (or ``= 0``) on a batch.

    ``violation`` is differentiable and drives the primal step. ``measurement``, if given,
    drives the dual step instead (a *proxy constraint*: e.g. a hinge surrogate for the primal
    step and the non-differentiable 0-1 error for the dual step); it is never differentiated.
    """

    violation: jax.Array  # shape=(B,) for indexed groups, (m,) for dense ones
    measurement: jax.Array | None = None  # same shape, or None to use `violation`


class ProblemOutput(NamedTuple):
    """What ``problem_fn(params, batch)`` returns."""

    objective: jax.Array  # shape=(), the part of the loss without multipliers (0 for FL)
    constraints: dict  # name -> ConstraintValue
    aux: Any = None  # anything else the caller wants back, e.g. per-sample losses


class ConstraintGroup(NamedTuple):
    """Static description of one group of constraints.

    Attributes:
      size: number of constraints ``N`` (indexed) or ``m`` (dense).
      kind: ``"inequality"`` (multipliers projected onto ``λ >= 0``) or ``"equality"``.
      formulation: a :class:`feasjax.Formulation` (default: the Lagrangian).
      dual_optimizer: an ascent optimizer for the multipliers (default
        ``ascent(optax.sgd(1.0))``); element-wise when ``indexed``.
      indexed: the batch names which of the ``size`` constraints it evaluates (``indices``);
        only their multipliers and dual state are read and written (O(B) per step).
      reduction: how the batch's primal terms are reduced: ``"mean"`` (``1/B Σ``, default for
        indexed groups) or ``"sum"`` (default for dense groups; the Feasible Learning paper's
        code also sums, which multiplies the primal gradient by ``B``).
      init_multiplier: initial value of every multiplier.
    """

    size: int
    kind: str = "inequality"
    formulation: Formulation = lagrangian()
    dual_optimizer: optax.GradientTransformation = ascent(optax.sgd(1.0))
    indexed: bool = False
    reduction: str | None = None
    init_multiplier: float = 0.0

    def resolved_reduction(self) -> str:
        """The reduction in force (``reduction`` or its default)."""
        if self.reduction is None:
            return "mean" if self.indexed else "sum"
        return self.reduction

    def validate(self, name: str) -> None:
        """Raise ``ValueError`` naming ``name`` if the description is inconsistent."""
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"constraint group {name!r}: size must be a positive int, "
                             f"got size={self.size!r}")
        check_kind(self.kind)
        check_reduction(self.resolved_reduction())
        if self.kind == "inequality":
            checks.check_positive(self.init_multiplier, f"{name}.init_multiplier",
                                  allow_zero=True)
