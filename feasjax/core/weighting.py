"""Per-sample weighting: the one place where per-sample losses become a scalar objective, for
Lagrange multipliers (Feasible Learning), bootstrap weights and group weights alike.
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

__all__ = ["weighted_sum"]

Reduction = Literal["mean", "sum"]
REDUCTIONS = ("mean", "sum")


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is ``"mean"`` or ``"sum"``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction=}")


def weighted_sum(values: jax.Array, weights: jax.Array, reduction: Reduction = "mean") -> jax.Array:
    """Reduce per-sample ``values`` weighted by ``weights`` over the leading (batch) axis.

    .. math::
      \\text{mean}: \\frac{1}{B}\\sum_{i\\in B} w_i v_i \\qquad \\text{sum}: \\sum_{i\\in B} w_i v_i

    Args:
      values: per-sample values, shape ``(B,)``.
      weights: per-sample weights, shape ``(B,)``.
      reduction: ``"mean"`` divides by ``B`` (not by the sum of weights); ``"sum"`` is the
        Feasible Learning paper's convention and scales the primal gradient by ``B``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core import weighted_sum
      >>> float(weighted_sum(jnp.array([1.0, 3.0]), jnp.array([2.0, 0.0])))
      1.0
    """
    check_reduction(reduction)
    if values.shape != weights.shape:
        raise ValueError(f"values and weights must have the same shape, got {values.shape=} and "
                         f"{weights.shape=}")
    total = jnp.sum(weights * values)
    return total / values.shape[0] if reduction == "mean" else total
