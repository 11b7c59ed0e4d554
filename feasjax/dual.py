"""Dual optimizers for Lagrange multipliers: gradient ascent, nuPI and optimistic ascent.

Optax minimises. Multipliers *maximise* the Lagrangian, so every dual optimizer here is an ascent:
it is fed the dual gradient (the constraint violation ``g``) and returns an update that moves the
multipliers along ``+g``. :func:`ascent` turns any optax optimizer into one (ascent is descent on
the negated gradient). :func:`nupi` and :func:`optimistic` are element-wise, so they also work per
sample under :func:`feasjax.indexed`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from feasjax import checks


def ascent(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Turn a descent optimizer into an ascent one (maximise instead of minimise).

    .. math:: \\lambda_{t+1} = \\lambda_t + \\mathrm{inner}(-g_t)

    Args:
      inner: any optax optimizer, e.g. ``optax.sgd(0.1)`` or ``optax.adam(1e-3)``.

    Returns:
      ``optax.chain(optax.scale(-1.0), inner)``, which forwards extra args.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import ascent
      >>> tx = ascent(optax.sgd(0.1))
      >>> upd, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> upd.tolist()
      [0.2...]
    """
    return optax.chain(optax.scale(-1.0), inner)


def project_nonnegative(multipliers: jax.Array) -> jax.Array:
    """Projection of inequality multipliers onto ``λ >= 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import project_nonnegative
      >>> project_nonnegative(jnp.array([-1.0, 2.0])).tolist()
      [0.0, 2.0]
    """
    return jnp.maximum(multipliers, 0)


class NuPIState(NamedTuple):
    """State of :func:`nupi`."""

    xi: optax.Updates  # EMA of the error, like params
    count: jax.Array  # shape=(), int32: steps taken


def nupi(
    learning_rate: float, kp: float = 0.0, ki: float = 1.0, nu: float = 0.0
) -> optax.GradientTransformationExtraArgs:
    """nuPI controller (Sohrabi et al., ICML 2024), written as an optax (descent) optimizer.

    With error ``e_t`` (for multipliers, the constraint violation; pass it through
    :func:`ascent`, which negates it, to get the paper's ascent):

    .. math::
      \\xi_t = \\nu \\xi_{t-1} + (1-\\nu) e_t, \\quad \\xi_{-1} = 0 \\\\
      \\theta_{t+1} = \\theta_t - \\eta\\,(K_I e_t + K_P (\\xi_t - \\xi_{t-1}))

    The first step has no proportional term (it is SGD with learning rate ``η K_I``), so a
    controller does not kick at start-up. ``K_P = 0`` gives SGD with learning rate ``η K_I``.

    Args:
      learning_rate: ``η > 0``.
      kp: proportional gain ``K_P >= 0``.
      ki: integral gain ``K_I >= 0``.
      nu: EMA coefficient ``ν`` in ``[0, 1)``.

    Returns:
      An element-wise ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import nupi
      >>> tx = nupi(0.1, kp=1.0, ki=1.0, nu=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> upd, state = tx.update(jnp.array([1.0]), state)   # first step: -η K_I e_0
      >>> upd, state = tx.update(jnp.array([3.0]), state)   # -η (K_I e_1 + K_P (e_1 - e_0))
      >>> [round(float(u), 6) for u in upd]
      [-0.5]

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
        new_updates = jax.tree.map(
            lambda e, x_new, x_old: -learning_rate
            * (ki * e + jnp.where(first, 0.0, kp * (x_new - x_old))).astype(e.dtype),
            updates, xi, state.xi,
        )
        return new_updates, NuPIState(xi=xi, count=optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class OptimisticState(NamedTuple):
    """State of :func:`optimistic`."""

    previous: optax.Updates  # last gradient, like params
    count: jax.Array  # shape=(), int32


def optimistic(learning_rate: float, alpha: float = 1.0) -> optax.GradientTransformationExtraArgs:
    """Optimistic gradient (extrapolation-free extragradient), element-wise.

    .. math:: \\theta_{t+1} = \\theta_t - \\eta\\,((1+\\alpha) g_t - \\alpha g_{t-1})

    The first step is plain SGD (``g_{-1} = g_0``). Using the previous gradient as a prediction
    of the next one damps the oscillations of simultaneous gradient descent-ascent on
    bilinear min-max problems, at the cost of one extra buffer (no second gradient evaluation).

    Args:
      learning_rate: ``η > 0``.
      alpha: optimism ``α >= 0``; ``α = 0`` is SGD.

    Returns:
      An element-wise ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import optimistic
      >>> tx = optimistic(0.1, alpha=1.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.array([1.0]), state)
      >>> upd, _ = tx.update(jnp.array([2.0]), state)      # -0.1 * (2*2 - 1)
      >>> round(float(upd[0]), 6)
      -0.3

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
            lambda g, p: -learning_rate * ((1 + alpha) * g - alpha * jnp.where(first, g, p)),
            updates, state.previous,
        )
        return new_updates, OptimisticState(previous=updates,
                                            count=optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
