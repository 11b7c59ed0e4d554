"""Bootstrap confidence sets from a centre ``θ̄`` and replicas ``θ̄_b``."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["METHODS", "Interval", "ConfidenceBall", "coordinate_intervals", "confidence_ball",
           "linear_functional_interval"]

METHODS = ("percentile", "basic", "normal")


class Interval(NamedTuple):
    """Closed intervals ``[lower, upper]``, elementwise."""
    lower: jax.Array  # shape like the centre
    upper: jax.Array  # shape like the centre

    def contains(self, x: jax.Array) -> jax.Array:
        """Elementwise ``lower <= x <= upper`` (boolean, shape like the centre)."""
        return (self.lower <= x) & (x <= self.upper)


class ConfidenceBall(NamedTuple):
    """The Euclidean ball ``{θ : ||θ − center||_2 <= radius}``."""
    center: jax.Array  # shape=(d,)
    radius: jax.Array  # shape=()

    def contains(self, theta: jax.Array) -> jax.Array:
        """Whether ``theta`` (shape ``(d,)``) lies in the ball (boolean scalar)."""
        return jnp.linalg.norm(theta - self.center) <= self.radius


def _check(center: jax.Array, replicas: jax.Array, level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level=}")
    if (replicas.ndim != center.ndim + 1 or replicas.shape[1:] != center.shape
            or replicas.shape[0] < 2):
        raise ValueError(f"replicas must have shape (B >= 2, *center.shape), got "
                         f"{replicas.shape=} and {center.shape=}")


def coordinate_intervals(center: jax.Array, replicas: jax.Array, *, level: float = 0.95,
                         method: str = "percentile") -> Interval:
    """Per-coordinate bootstrap intervals. With ``q_p`` the replicas' ``p``-quantile (linear
    interpolation) and ``α = 1 − level``:

    - percentile: ``[q_{α/2}, q_{1−α/2}]``;
    - basic: ``[2θ̄ − q_{1−α/2}, 2θ̄ − q_{α/2}]`` (reflects ``θ̄_b − θ̄`` onto ``θ* − θ̄``);
    - normal: ``θ̄ ± z_{1−α/2} sd(θ̄_b)``, the replicas' standard deviation with ``ddof=1``.

    Args:
      center: the main estimate ``θ̄``, any shape ``S`` (usually ``(d,)``).
      replicas: bootstrap estimates ``θ̄_b``, shape ``(B, *S)``.
      level: nominal coverage ``1 − α`` in ``(0, 1)``.
      method: ``"percentile"``, ``"basic"`` or ``"normal"``.

    Returns:
      An :class:`Interval` with ``lower`` and ``upper`` of shape ``S``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.uncertainty import coordinate_intervals
      >>> reps = jnp.arange(11.0)[:, None]
      >>> lo, hi = coordinate_intervals(jnp.array([4.0]), reps, level=0.8,
      ...                               method="basic")
      >>> float(lo[0]), float(hi[0])
      (-1.0, 7.0)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method=}")
    center, replicas = jnp.asarray(center), jnp.asarray(replicas)
    _check(center, replicas, level)
    alpha = 1.0 - level
    if method == "normal":
        z = jax.scipy.stats.norm.ppf(1.0 - alpha / 2)
        half = z * jnp.std(replicas, axis=0, ddof=1)
        return Interval(center - half, center + half)
    low, high = jnp.quantile(replicas, jnp.array([alpha / 2, 1.0 - alpha / 2]), axis=0)
    if method == "percentile":
        return Interval(low, high)
    return Interval(2 * center - high, 2 * center - low)


def confidence_ball(center: jax.Array, replicas: jax.Array, *,
                    level: float = 0.95) -> ConfidenceBall:
    """The ball ``{θ : ||θ̄ − θ||_2 <= q̂}``, ``q̂`` the ``level``-quantile of ``||θ̄_b − θ̄||_2``.

    Args:
      center, replicas: ``θ̄``, shape ``(d,)``, and ``θ̄_b``, shape ``(B, d)``.
      level: nominal coverage in ``(0, 1)``.

    Returns:
      A :class:`ConfidenceBall`; ``ball.contains(theta)`` tests membership.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.uncertainty import confidence_ball
      >>> reps = jnp.array([[3.0, 4.0], [0.0, 1.0]])
      >>> ball = confidence_ball(jnp.zeros(2), reps, level=0.5)
      >>> float(ball.radius), bool(ball.contains(jnp.array([0.0, 2.0])))
      (3.0, True)
    """
    center, replicas = jnp.asarray(center), jnp.asarray(replicas)
    _check(center, replicas, level)
    if center.ndim != 1:
        raise ValueError(f"center must have shape (d,), got {center.shape=}")
    distances = jnp.linalg.norm(replicas - center[None, :], axis=1)
    return ConfidenceBall(center, jnp.quantile(distances, level))


def linear_functional_interval(center: jax.Array, replicas: jax.Array, v: jax.Array, *,
                               level: float = 0.95, method: str = "percentile") -> Interval:
    """Bootstrap interval for ``vᵀθ`` (e.g. a prediction ``xᵀθ``) from the projected replicas.

    Args:
      center, replicas: ``θ̄``, shape ``(d,)``, and ``θ̄_b``, shape ``(B, d)``.
      v: one functional, shape ``(d,)``, or ``k`` of them, shape ``(k, d)``.
      level, method: as in :func:`coordinate_intervals`.

    Returns:
      An :class:`Interval` of shape ``()`` (or ``(k,)``) for ``vᵀθ``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.uncertainty import linear_functional_interval
      >>> reps = jnp.stack([jnp.arange(11.0), jnp.zeros(11)], axis=1)
      >>> v = jnp.array([2.0, 1.0])
      >>> lo, hi = linear_functional_interval(jnp.zeros(2), reps, v, level=0.8)
      >>> float(lo), float(hi)
      (2.0, 18.0)
    """
    center, replicas, v = jnp.asarray(center), jnp.asarray(replicas), jnp.asarray(v)
    _check(center, replicas, level)
    if v.ndim not in (1, 2) or v.shape[-1] != center.shape[-1] or center.ndim != 1:
        raise ValueError(f"v must have shape (d,) or (k, d) with d={center.shape[-1]}, got "
                         f"{v.shape=}")
    project = lambda theta: v @ theta  # noqa: E731
    return coordinate_intervals(project(center), jax.vmap(project)(replicas), level=level,
                                method=method)
