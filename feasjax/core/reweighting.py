"""Group and class loss weights, applied through the per-sample weighting of the core.

``w_g ∝ p_g^{-γ}`` normalised so that the mean weight over the samples is 1: ``γ = 1`` is
importance weighting, ``γ = 0`` ERM. Stromberg, Thrampoulidis and Sankar (2025, arXiv
2506.20025) show that the optimal weights depend on ``δ = d / n`` in last-layer retraining;
feasjax does not implement their closed form (``benchmarks/llr_weighting_theory.py`` measures it).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = ["group_weights", "reweighted"]


def group_counts(groups: jax.Array, num_groups: int, mask: jax.Array | None = None
                 ) -> jax.Array:
    """Number of (unmasked) samples in each group, shape ``(num_groups,)``, float32."""
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups=}")
    groups = jnp.asarray(groups)
    if groups.ndim != 1 or not jnp.issubdtype(groups.dtype, jnp.integer):
        raise ValueError(f"groups must be a 1-D int array, got shape {groups.shape} and dtype "
                         f"{groups.dtype}")
    ones = jnp.ones(groups.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    return jax.ops.segment_sum(ones, groups, num_segments=num_groups)


def group_weights(counts: jax.Array, *, gamma: float | jax.Array = 1.0) -> jax.Array:
    """Tempered inverse-frequency weights ``w_g ∝ p_g^{-γ}`` with ``Σ_g p_g w_g = 1``.

    Args:
      counts: ``(G,)`` samples per group; empty groups get weight 0.
      gamma: the temper ``γ`` (may be traced): 0 is ERM, 1 importance weighting ``1/p_g``.

    Returns:
      ``(G,)`` float32 weights.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core import group_weights
      >>> group_weights(jnp.array([30.0, 10.0])).tolist()  # importance: 1/(2 p_g)
      [0.6666666..., 2.0]
    """
    counts = jnp.asarray(counts, jnp.float32)
    if counts.ndim != 1:
        raise ValueError(f"counts must have shape (G,), got {counts.shape}")
    p = counts / jnp.sum(counts)
    raw = jnp.where(p > 0, jnp.maximum(p, 1e-12) ** -jnp.asarray(gamma, jnp.float32), 0.0)
    return raw / jnp.sum(p * raw)


def reweighted(per_sample_loss: Callable[[Any, Any], jax.Array], weights: jax.Array, *,
               key: str = "group") -> Callable[[Any, Any], jax.Array]:
    """Per-sample losses scaled by the weight of each sample's group, ``w[batch[key]] ℓ_i``.

    Args:
      per_sample_loss: ``(params, batch) -> (B,)`` losses; ``batch`` is a dict.
      weights: ``(G,)`` per-group weights (:func:`group_weights`), or per-class with ``key="y"``.
      key: the batch entry holding each sample's group (int).

    Returns:
      ``(params, batch) -> (B,)`` weighted losses.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core import reweighted
      >>> loss = reweighted(lambda w, b: (w - b["x"]) ** 2, jnp.array([1.0, 3.0]))
      >>> loss(0.0, {"x": jnp.array([1.0, 1.0]), "group": jnp.array([0, 1])}).tolist()
      [1.0, 3.0]
    """
    weights = jnp.asarray(weights)
    if weights.ndim != 1:
        raise ValueError(f"weights must have shape (G,), got {weights.shape}")

    def loss(params, batch):
        if key not in batch:
            raise ValueError(f"batch must hold the groups under {key!r}, got keys "
                             f"{sorted(batch)}")
        return weights[batch[key]] * per_sample_loss(params, batch)

    return loss
