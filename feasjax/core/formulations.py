"""Formulations: how constraints ``g(θ) <= 0`` (or ``= 0``) enter the primal and dual steps.

A formulation gives the element-wise ``primal_term(λ, g, state, kind)`` (its derivative in ``g``
weighs ``∇g_i``), ``dual_gradient(λ, g, state, kind)`` and ``update_state``, so it applies to
per-sample rows and dense groups alike.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from feasjax.core import checks

__all__ = ["lagrangian", "resilient", "quadratic_penalty", "augmented_lagrangian"]

KINDS = ("inequality", "equality")


class PenaltyState(NamedTuple):
    """State of the augmented Lagrangian's penalty schedule (see :func:`augmented_lagrangian`)."""

    penalty: jax.Array  # shape=(), float32: current ρ
    reference: jax.Array  # shape=(), float32: violation norm of the last window (inf at start)
    window_max: jax.Array  # shape=(), float32: largest violation norm in the current window
    count: jax.Array  # shape=(), int32: dual steps taken in the current window


class Formulation(NamedTuple):
    """A formulation: pure functions of multipliers and violations (see module docstring)."""

    name: str
    has_multipliers: bool
    init: Callable[[], Any]
    primal_term: Callable[[jax.Array, jax.Array, Any, str], jax.Array]
    dual_gradient: Callable[[jax.Array, jax.Array, Any, str], jax.Array]
    update_state: Callable[[Any, jax.Array, str], Any]


def _keep_state(state: Any, violation: jax.Array, kind: str) -> Any:
    del violation, kind
    return state


def _positive_part(g: jax.Array, kind: str) -> jax.Array:
    return jnp.maximum(g, 0) if kind == "inequality" else g


def lagrangian() -> Formulation:
    """The Lagrangian ``L(θ, λ) = f(θ) + Σ λ_i g_i(θ)``: primal descent, dual ascent on ``g``.

    Returns:
      A :class:`Formulation`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import lagrangian
      >>> form = lagrangian()
      >>> lam, g = jnp.array([1.0]), jnp.array([0.5])
      >>> form.dual_gradient(lam, g, form.init(), "inequality")
      Array([0.5], dtype=float32)
    """
    return Formulation(
        name="lagrangian",
        has_multipliers=True,
        init=tuple,
        primal_term=lambda lam, g, state, kind: lam * g,
        dual_gradient=lambda lam, g, state, kind: g,
        update_state=_keep_state,
    )


def resilient(alpha: float) -> Formulation:
    """Resilient constraints (RFL): ``g_i(θ) <= u_i`` with slack cost ``α/2 ||u||²``.

    The optimal slack is ``u_i = λ_i / α`` (:func:`slack`), so the dual gradient is the relaxed
    violation ``g_i − λ_i/α``; with θ fixed, ascent converges to ``λ_i = α max(0, g_i)``.

    Args:
      alpha: slack cost ``α > 0``; ``α → ∞`` recovers the Lagrangian.

    Returns:
      A :class:`Formulation`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import resilient
      >>> form = resilient(alpha=2.0)
      >>> lam, g = jnp.array([1.0]), jnp.array([0.5])
      >>> form.dual_gradient(lam, g, form.init(), "inequality")
      Array([0.], dtype=float32)

    References:
      Hounie, Ribeiro, Chamon, *Resilient constrained learning*, NeurIPS 2023.
    """
    checks.check_positive(alpha, "alpha")
    return lagrangian()._replace(name="resilient",
                                 dual_gradient=lambda lam, g, state, kind: g - lam / alpha)


def slack(multipliers: jax.Array, alpha: float) -> jax.Array:
    """The optimal resilient slack ``u = λ / α`` of :func:`resilient`."""
    checks.check_positive(alpha, "alpha")
    return multipliers / alpha


def quadratic_penalty(penalty: float) -> Formulation:
    """Quadratic penalty ``ρ/2 max(0, g)²`` (or ``ρ/2 g²`` for equalities); no multipliers.

    Args:
      penalty: ``ρ > 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import quadratic_penalty
      >>> form = quadratic_penalty(2.0)
      >>> g = jnp.array([-1.0, 3.0])
      >>> form.primal_term(None, g, form.init(), "inequality").tolist()
      [0.0, 9.0]
    """
    checks.check_positive(penalty, "penalty")
    return lagrangian()._replace(  # stateless, as the Lagrangian, but with no multipliers
        name="quadratic_penalty", has_multipliers=False,
        primal_term=lambda lam, g, state, kind: 0.5 * penalty * _positive_part(g, kind) ** 2,
        dual_gradient=lambda lam, g, state, kind: jnp.zeros_like(g))


def augmented_lagrangian(
    penalty: float, *, growth: float = 1.0, tolerance: float = 0.25, patience: int = 100,
    atol: float = 1e-6, max_penalty: float = 1e4,
) -> Formulation:
    """Augmented Lagrangian (method of multipliers) with a penalty-growth rule.

    With ``L = f + λ g`` (``λ >= 0`` for ``g <= 0``) the primal term is

    .. math::
      \\text{equality:}\\quad \\lambda g + \\tfrac{\\rho}{2} g^2, \\qquad
      \\text{inequality:}\\quad \\frac{\\max(0, \\lambda + \\rho g)^2 - \\lambda^2}{2\\rho}

    and the dual gradient ``ρ g``: with ``ascent(optax.sgd(1.0))`` and the projection this is
    ``λ ← max(0, λ + ρ g)``. Penalty growth (Bertsekas 1982, ch. 2; Nocedal & Wright 2006, Alg.
    17.4): at the end of each window of ``patience`` dual steps, with ``v`` its largest violation
    norm (``||max(0, g)||`` for inequalities) and ``r`` the last window's, ρ is kept if
    ``v <= tolerance · r`` or ``v <= atol``, else ``ρ ← min(growth · ρ, max_penalty)``; then
    ``r ← v`` (the first window only sets ``r``). ``growth = 1`` (default) keeps ρ fixed, the
    sensible choice for noisy per-sample batches. Cap ρ where the primal step stays stable (SGD
    with step ``η`` needs about ``η ρ ||∇g||² < 2``) or lengthen ``patience``.

    Args:
      penalty: initial ``ρ > 0``.
      growth: factor ``>= 1``.
      tolerance: required decrease factor per window, in ``(0, 1]``.
      patience: window length in dual steps, ``>= 1``.
      atol: violation norm ``>= 0`` at or below which ρ never grows.
      max_penalty: cap on ``ρ``, ``>= penalty``.

    Returns:
      A :class:`Formulation` whose state is a :class:`PenaltyState`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import augmented_lagrangian
      >>> form = augmented_lagrangian(1.0, growth=2.0, patience=1)
      >>> state = form.init()
      >>> # the first window sets r; no decrease: grow; a decrease: keep
      >>> for g in (1.0, 0.9, 0.1):
      ...     state = form.update_state(state, jnp.array([g]), "equality")
      ...     print(float(state.penalty))
      1.0
      2.0
      2.0
    """
    checks.check_positive(penalty, "penalty")
    if growth < 1.0:
        raise ValueError(f"growth must be >= 1, got {growth=}")
    if not 0.0 < tolerance <= 1.0:
        raise ValueError(f"tolerance must be in (0, 1], got {tolerance=}")
    if not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive int, got {patience=}")
    checks.check_positive(atol, "atol", allow_zero=True)
    if max_penalty < penalty:
        raise ValueError(f"max_penalty must be >= penalty, got {max_penalty=} < {penalty=}")

    def init():
        return PenaltyState(penalty=jnp.asarray(penalty, jnp.float32),
                            reference=jnp.asarray(jnp.inf, jnp.float32),
                            window_max=jnp.zeros([], jnp.float32),
                            count=jnp.zeros([], jnp.int32))

    def primal_term(lam, g, state, kind):
        rho = state.penalty.astype(g.dtype)
        if kind == "equality":
            return lam * g + 0.5 * rho * g**2
        return (jnp.maximum(lam + rho * g, 0) ** 2 - lam**2) / (2 * rho)

    def dual_gradient(lam, g, state, kind):
        del lam, kind
        return state.penalty.astype(g.dtype) * g

    def update_state(state, g, kind):
        norm = jnp.linalg.norm(_positive_part(g, kind)).astype(jnp.float32)
        window_max = jnp.maximum(state.window_max, norm)
        count = state.count + 1
        done = count >= patience
        # Bertsekas 1982, ch. 2: grow ρ when an outer iteration did not cut the violation enough.
        stalled = (window_max > tolerance * state.reference) & (window_max > atol)
        grown = jnp.minimum(growth * state.penalty, max_penalty)
        return PenaltyState(
            penalty=jnp.where(done & stalled, grown, state.penalty),
            reference=jnp.where(done, window_max, state.reference),
            window_max=jnp.where(done, 0.0, window_max),
            count=jnp.where(done, 0, count),
        )

    return Formulation("augmented_lagrangian", True, init, primal_term, dual_gradient,
                       update_state)
