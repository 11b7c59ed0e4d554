"""Dual optimizers for Lagrange multipliers: gradient ascent, nuPI and optimistic ascent.

Multipliers *maximise* the Lagrangian: every optimizer here ascends along the violation ``g``
and is marked as an :class:`AscentTransformation`, so that a constraint group can refuse a plain
optax one, which would silently descend. All are element-wise (per sample under ``indexed``).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from feasjax.core import checks

__all__ = ["ascent", "nupi", "optimistic"]


class AscentTransformation(optax.GradientTransformationExtraArgs):
    """An optax transformation marked as an *ascent* (moves along ``+g``); see :func:`ascent`.
    Optax treats it as any other ``(init, update)`` pair; only :func:`is_ascent` reads the mark."""

    __slots__ = ()


def ascent(inner: optax.GradientTransformation, *,
           negate: bool = True) -> AscentTransformation:
    """Turn a descent optimizer into an ascent one (maximise instead of minimise), marked.

    .. math:: \\lambda_{t+1} = \\lambda_t + \\mathrm{inner}(-g_t)

    A marked ``inner`` (``ascent(...)``, :func:`nupi`, :func:`optimistic`) is returned as is.

    Args:
      inner: any optax optimizer, e.g. ``optax.sgd(0.1)``.
      negate: ``False`` only marks an ``inner`` that already ascends (e.g.
        ``optax.inject_hyperparams(nupi)(...)``).

    Returns:
      An :class:`AscentTransformation` that forwards extra args.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import ascent
      >>> tx = ascent(optax.sgd(0.1))
      >>> upd, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> upd.tolist(), ascent(tx) is tx
      ([0.2...], True)
    """
    if is_ascent(inner):
        return inner
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax GradientTransformation, "
                        f"got {type(inner).__name__}")
    tx = optax.chain(optax.scale(-1.0), inner) if negate else optax.with_extra_args_support(inner)
    return AscentTransformation(tx.init, tx.update)


def is_ascent(tx: object) -> bool:
    """Whether ``tx`` is marked as an ascent (built by :func:`ascent`, :func:`nupi`, ...)."""
    return isinstance(tx, AscentTransformation)


def check_ascent(tx: object, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``tx`` is a marked ascent transformation."""
    if is_ascent(tx):
        return
    if not isinstance(tx, optax.GradientTransformation):
        raise ValueError(f"{name} must be an ascent optimizer such as "
                         f"fj.ascent(optax.sgd(0.1)), got {type(tx).__name__}")
    raise ValueError(f"{name} must be an ascent optimizer (the multipliers maximise the "
                     f"Lagrangian): wrap it as fj.ascent(optax.sgd(0.1)), or mark one that "
                     f"already ascends with fj.ascent(tx, negate=False); got a descent "
                     f"transformation (an unmarked optax optimizer minimises)")


def project_nonnegative(multipliers: jax.Array) -> jax.Array:
    """Projection of inequality multipliers onto ``λ >= 0``."""
    return jnp.maximum(multipliers, 0)


class NuPIState(NamedTuple):
    """State of :func:`nupi`."""

    xi: optax.Updates  # EMA of the error, like params
    count: jax.Array  # shape=(), int32: steps taken


def nupi(
    learning_rate: float, kp: float = 0.0, ki: float = 1.0, nu: float = 0.0
) -> AscentTransformation:
    """nuPI controller (Sohrabi et al., ICML 2024) for multipliers: a marked ascent.

    With error ``e_t`` (the constraint violation):

    .. math::
      \\xi_t = \\nu \\xi_{t-1} + (1-\\nu) e_t, \\quad \\xi_{-1} = 0 \\\\
      \\theta_{t+1} = \\theta_t + \\eta\\,(K_I e_t + K_P (\\xi_t - \\xi_{t-1}))

    The first step has no proportional term (no kick at start-up); ``K_P = 0`` is gradient
    ascent with rate ``η K_I``. Under ``optax.inject_hyperparams``, mark the result with
    ``ascent(..., negate=False)``.

    Args:
      learning_rate: ``η > 0``.
      kp: proportional gain ``K_P >= 0``.
      ki: integral gain ``K_I >= 0``.
      nu: EMA coefficient ``ν`` in ``[0, 1)``.

    Returns:
      An element-wise :class:`AscentTransformation` whose state is a :class:`NuPIState`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import nupi
      >>> tx = nupi(0.1, kp=1.0, ki=1.0, nu=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> upd, state = tx.update(jnp.array([1.0]), state)   # first step: +η K_I e_0
      >>> # +η (K_I e_1 + K_P (e_1 - e_0))
      >>> upd, state = tx.update(jnp.array([3.0]), state)
      >>> [round(float(u), 6) for u in upd]
      [0.5]

    References:
      Sohrabi, Ramirez, Zhang, Lacoste-Julien, Gallego-Posada, *On PI controllers for updating
      Lagrange multipliers in constrained optimization*, ICML 2024.
    """
    checks.check_positive(learning_rate, "learning_rate")
    checks.check_positive(kp, "kp", allow_zero=True)
    checks.check_positive(ki, "ki", allow_zero=True)
    checks.check_unit_interval(nu, "nu")

    def init_fn(params):
        return NuPIState(xi=optax.tree.zeros_like(params), count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        xi = jax.tree.map(lambda x, e: nu * x + (1 - nu) * e, state.xi, updates)
        first = state.count == 0
        # nuPI, Sohrabi et al. 2024: the error drives the multipliers up (ascent).
        new_updates = jax.tree.map(
            lambda e, new, old: (learning_rate * (ki * e + jnp.where(first, 0.0, kp * (new - old)))
                                 ).astype(e.dtype), updates, xi, state.xi)
        return new_updates, NuPIState(xi=xi, count=optax.safe_increment(state.count))

    return AscentTransformation(init_fn, update_fn)


class OptimisticState(NamedTuple):
    """State of :func:`optimistic`."""

    previous: optax.Updates  # last gradient, like params
    count: jax.Array  # shape=(), int32


def optimistic(learning_rate: float, alpha: float = 1.0) -> AscentTransformation:
    """Optimistic gradient ascent (extrapolation-free extragradient), element-wise, marked.

    .. math:: \\theta_{t+1} = \\theta_t + \\eta\\,((1+\\alpha) g_t - \\alpha g_{t-1})

    The first step is plain ascent (``g_{-1} = g_0``). It damps the oscillations of
    simultaneous descent-ascent on bilinear problems for one extra buffer. Under
    ``optax.inject_hyperparams``, mark with ``ascent(..., negate=False)``.

    Args:
      learning_rate: ``η > 0``.
      alpha: optimism ``α >= 0``; ``α = 0`` is gradient ascent.

    Returns:
      An element-wise :class:`AscentTransformation` with an :class:`OptimisticState`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import optimistic
      >>> tx = optimistic(0.1, alpha=1.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.array([1.0]), state)
      >>> upd, _ = tx.update(jnp.array([2.0]), state)      # +0.1 * (2*2 - 1)
      >>> round(float(upd[0]), 6)
      0.3

    References:
      Popov, *A modification of the Arrow-Hurwicz method for search of saddle points*, 1980;
      Daskalakis, Ilyas, Syrgkanis, Zeng, *Training GANs with optimism*, ICLR 2018.
    """
    checks.check_positive(learning_rate, "learning_rate")
    checks.check_positive(alpha, "alpha", allow_zero=True)

    def init_fn(params):
        return OptimisticState(previous=optax.tree.zeros_like(params),
                               count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        first = state.count == 0
        new_updates = jax.tree.map(
            lambda g, p: learning_rate * ((1 + alpha) * g - alpha * jnp.where(first, g, p)),
            updates, state.previous)
        return new_updates, OptimisticState(previous=updates,
                                            count=optax.safe_increment(state.count))

    return AscentTransformation(init_fn, update_fn)
