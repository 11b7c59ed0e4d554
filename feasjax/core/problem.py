"""Constrained problems: ``problem_fn(params, batch) -> ProblemOutput`` (an objective and the
batch's :class:`ConstraintValue` of each group) and each group's static :class:`ConstraintGroup`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from feasjax.core import checks, defaults
from feasjax.core.dual import check_ascent
from feasjax.core.formulations import KINDS, Formulation, lagrangian
from feasjax.core.implicit import ImplicitMultipliers
from feasjax.core.weighting import check_reduction

__all__ = ["ConstraintValue", "ProblemOutput", "ConstraintGroup"]


class ConstraintValue(NamedTuple):
    """Values of one constraint group ``g(θ) <= 0`` (or ``= 0``) on a batch.

    ``violation`` is differentiable and drives the primal step; ``measurement``, if given, drives
    the dual step instead and is never differentiated (a *proxy constraint*, e.g. the 0-1 error).

    Example:
      >>> import jax.numpy as jnp, feasjax as fj
      >>> # dual step: violation
      >>> fj.ConstraintValue(jnp.array([0.5, -0.1])).measurement is None
      True
    """

    violation: jax.Array  # shape=(B,) for indexed groups, (m,) for dense ones
    measurement: jax.Array | None = None  # same shape, or None to use `violation`


class ProblemOutput(NamedTuple):
    """What ``problem_fn(params, batch)`` returns.

    Example:
      >>> import jax.numpy as jnp, feasjax as fj
      >>> def problem_fn(w, batch):  # min ||w||² subject to 1 - w_0 <= 0
      ...     c = fj.ConstraintValue(1.0 - w[:1])
      ...     return fj.ProblemOutput(jnp.sum(w**2), {"c": c})
      >>> sorted(problem_fn(jnp.zeros(2), None).constraints)
      ['c']
    """

    objective: jax.Array  # shape=(), the part of the loss without multipliers (0 for FL)
    constraints: dict  # name -> ConstraintValue
    aux: Any = None  # anything else the caller wants back, e.g. per-sample losses


class ConstraintGroup(NamedTuple):
    """Static description of one group of constraints (defaults: :mod:`feasjax.core.defaults`).

    Three kinds: dense (all ``size`` multipliers stored and seen every step), indexed (one
    stored per sample, the batch names its rows) and implicit (``multipliers=``: a model
    predicts each sample's multiplier from the features the batch passes).

    Attributes:
      size: number of constraints ``N`` (indexed) or ``m`` (dense); ``None`` for implicit ones.
      kind: ``"inequality"`` (multipliers projected onto ``λ >= 0``) or ``"equality"``.
      formulation: e.g. :func:`feasjax.core.resilient` (default: the Lagrangian).
      dual_optimizer: a marked ascent optimizer (default ``ascent(optax.sgd(0.1))``;
        :func:`feasjax.ascent`, :func:`feasjax.nupi`, ...): a plain optax one would descend.
        Element-wise when ``indexed``.
      indexed: the batch names which of the ``size`` constraints it evaluates (``indices``);
        only their multipliers and dual state are read and written (O(B) per step).
      reduction: ``"mean"`` (``None``, the default) or ``"sum"`` of the primal terms (a mean
        over ``m`` dense constraints makes the multipliers ``m`` times the textbook ones).
      init_multiplier: initial value of every multiplier (default 1.0).
      multipliers: :func:`feasjax.implicit_multipliers` for an implicit group of per-sample
        inequality constraints (no ``size``; its optimizer and model replace
        ``dual_optimizer`` and ``init_multiplier``), or ``None`` to store them.

    Example:
      >>> import feasjax as fj
      >>> # one multiplier per sample
      >>> group = fj.ConstraintGroup(size=100, indexed=True)
      >>> group.kind, group.resolved_reduction(), group.init_multiplier
      ('inequality', 'mean', 1.0)
    """

    size: int | None = None
    kind: str = "inequality"
    formulation: Formulation = lagrangian()
    dual_optimizer: optax.GradientTransformation = defaults.dual_optimizer()
    indexed: bool = False
    reduction: str | None = None
    init_multiplier: float = defaults.INIT_MULTIPLIER
    multipliers: ImplicitMultipliers | None = None

    @property
    def implicit(self) -> bool:
        """Whether a model predicts the multipliers (``multipliers=``) instead of a vector."""
        return self.multipliers is not None

    @property
    def per_sample(self) -> bool:
        """Whether the batch holds its samples' own values (indexed or implicit, not averaged)."""
        return self.indexed or self.implicit

    def resolved_reduction(self) -> str:
        """The reduction in force (``reduction``, or ``defaults.REDUCTION`` when ``None``)."""
        return defaults.REDUCTION if self.reduction is None else self.reduction

    def validate(self, name: str) -> None:
        """Raise ``ValueError`` naming ``name`` if the description is inconsistent."""
        if self.implicit:
            if not isinstance(self.multipliers, ImplicitMultipliers):
                raise TypeError(f"constraint group {name!r}: multipliers must be built by fj."
                                f"implicit_multipliers(...), got {type(self.multipliers).__name__}")
            default = self._field_defaults
            stored = {"size": self.size is not None, "indexed": self.indexed,
                      "dual_optimizer": self.dual_optimizer is not default["dual_optimizer"],
                      "init_multiplier": self.init_multiplier != default["init_multiplier"]}
            if any(stored.values()):
                raise ValueError(f"constraint group {name!r}: with implicit multipliers, "
                                 f"{', '.join(k for k, v in stored.items() if v)} do not apply: "
                                 f"the multiplier model, its parameters and "
                                 f"fj.implicit_multipliers(..., optimizer=) replace them")
            if self.kind != "inequality" or not self.formulation.has_multipliers:
                raise ValueError(f"constraint group {name!r}: implicit multipliers (λ >= 0) are "
                                 f"for inequality groups with multipliers, got kind={self.kind!r}"
                                 f", formulation={self.formulation.name!r}")
        elif not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"constraint group {name!r}: size must be a positive int, "
                             f"got size={self.size!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got kind={self.kind!r}")
        check_reduction(self.resolved_reduction())
        # An implicit group's (default) dual optimizer and initial multiplier pass these.
        if self.formulation.has_multipliers:
            check_ascent(self.dual_optimizer, f"dual_optimizer of constraint group {name!r}")
        if self.kind == "inequality":
            checks.check_positive(self.init_multiplier, f"{name}.init_multiplier",
                                  allow_zero=True)
