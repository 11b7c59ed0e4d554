"""Optimal mixing ``(1 - a) theta_L + a theta_G`` of a local and a global model (Grimberg,
Hartley, Karimireddy, Jaggi 2021, https://arxiv.org/abs/2110.12946): its error, best ``a`` and
plug-in estimate; :func:`mix` also serves prompt portfolios (https://arxiv.org/abs/2410.18456).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core.checks import is_concrete

__all__ = ["mixing_mse", "optimal_mixing_alpha", "mixing_helps", "estimate_mixing_alpha", "mix"]


def _check_moments(v_local: Any, v_global: Any, cov: Any) -> None:
    for name, value in (("v_local", v_local), ("v_global", v_global)):
        if is_concrete(value) and np.any(np.asarray(value) < 0):
            raise ValueError(f"{name} must be >= 0, got {name}={value!r}")
    if all(map(is_concrete, (v_local, v_global, cov))) and np.any(
        np.asarray(cov) ** 2 > np.asarray(v_local) * np.asarray(v_global) * (1 + 1e-6) + 1e-12
    ):
        raise ValueError(f"cov must satisfy cov**2 <= v_local * v_global, got {cov=}")


def mixing_mse(alpha: Any, v_local: Any, v_global: Any, bias: Any, cov: Any = 0.0) -> jax.Array:
    """Mean squared error of ``(1 - alpha) theta_L + alpha theta_G`` for the local target.

    .. math:: (1-\\alpha)^2 v_L + \\alpha^2 (v_G + \\Delta^2) + 2\\alpha(1-\\alpha) c

    Args:
      alpha: mixing coefficient(s); broadcasts with the moments.
      v_local: variance ``v_L >= 0`` of the local estimator.
      v_global: variance ``v_G >= 0`` of the global estimator.
      bias: ``Delta = E[theta_G] - mu_L``.
      cov: covariance ``c`` of the two estimators, ``c**2 <= v_L v_G``.

    Example:
      >>> from feasjax.averaging import mixing_mse
      >>> float(mixing_mse(0.5, v_local=1.0, v_global=1.0, bias=0.0))
      0.5
    """
    _check_moments(v_local, v_global, cov)
    a = jnp.asarray(alpha, jnp.float32)
    return (1 - a) ** 2 * v_local + a**2 * (v_global + jnp.square(bias)) + 2 * a * (1 - a) * cov


def optimal_mixing_alpha(v_local: Any, v_global: Any, bias: Any, cov: Any = 0.0) -> jax.Array:
    """Minimiser of :func:`mixing_mse`: ``(v_L - c) / (v_L + v_G + Delta^2 - 2c)`` (not clipped).

    0 where the denominator vanishes. Arguments as for :func:`mixing_mse`.

    Example:
      >>> from feasjax.averaging import optimal_mixing_alpha
      >>> float(optimal_mixing_alpha(v_local=1.0, v_global=0.5, bias=0.5))
      0.5714285969734192
    """
    _check_moments(v_local, v_global, cov)
    num = jnp.asarray(v_local, jnp.float32) - cov
    den = num + v_global - cov + jnp.square(bias)
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def mixing_helps(alpha: Any, v_local: Any, v_global: Any, bias: Any, cov: Any = 0.0) -> jax.Array:
    """Whether mixing with ``alpha`` beats the local model: ``0 < alpha < 2 alpha*``.

    Equivalent to ``mixing_mse(alpha) < mixing_mse(0)`` whenever ``v_L + v_G + Delta^2 > 2c``.
    Arguments as for :func:`mixing_mse`.

    Example:
      >>> from feasjax.averaging import mixing_helps
      >>> [bool(mixing_helps(a, 1.0, 1.0, 0.0)) for a in (0.0, 0.5, 0.99, 1.01)]
      [False, True, True, False]
    """
    a_star = optimal_mixing_alpha(v_local, v_global, bias, cov)
    return (alpha > 0) & (alpha < 2 * a_star)


def estimate_mixing_alpha(local_samples: jax.Array, global_samples: jax.Array, *,
                          debiased: bool = False) -> jax.Array:
    """Plug-in estimate of ``alpha*`` from independent local and global samples, clipped to [0, 1].

    With sample means ``m_L, m_G``, ``v_L = tr(S_L) / n_L``, ``v_G = tr(S_G) / n_G`` and
    ``Delta^2 = ||m_G - m_L||^2``, returns ``clip(v_L / (v_L + v_G + Delta^2), 0, 1)`` (``c = 0``).
    The plug-in ``Delta^2`` overestimates by ``v_L + v_G`` on average (a conservative estimate);
    ``debiased=True`` subtracts that excess (clipped at 0).

    Args:
      local_samples: shape ``(n_L,)`` or ``(n_L, d)``, ``n_L >= 2``.
      global_samples: shape ``(n_G,)`` or ``(n_G, d)``, ``n_G >= 2``, same ``d``.
      debiased: subtract ``v_L + v_G`` from ``Delta^2``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.averaging import estimate_mixing_alpha
      >>> a = estimate_mixing_alpha(jnp.array([0.0, 2.0]), jnp.array([3.0, 5.0]),
      ...                           debiased=True)
      >>> round(float(a), 3)  # v_L = v_G = 1, Delta^2 = 9 - 2 = 7
      0.111
    """
    xl, xg = jnp.asarray(local_samples), jnp.asarray(global_samples)
    if xl.ndim not in (1, 2) or xl.shape[1:] != xg.shape[1:] or min(len(xl), len(xg)) < 2:
        raise ValueError("local_samples and global_samples must have shapes (n, ) or (n, d) with "
                         f"the same d and n >= 2, got {xl.shape=} and {xg.shape=}")
    xl, xg = xl.reshape(len(xl), -1), xg.reshape(len(xg), -1)
    v_l, v_g = (jnp.sum(jnp.var(x, axis=0, ddof=1)) / len(x) for x in (xl, xg))
    delta2 = jnp.sum(jnp.square(jnp.mean(xg, axis=0) - jnp.mean(xl, axis=0)))
    if debiased:  # E ||m_G - m_L||^2 = Delta^2 + v_L + v_G for independent samples
        delta2 = jnp.maximum(delta2 - v_l - v_g, 0.0)
    return jnp.clip(optimal_mixing_alpha(v_l, v_g, jnp.sqrt(delta2)), 0.0, 1.0)


def _mix_leaf(a: Any, lo: jax.Array, gl: jax.Array) -> jax.Array:
    a = jnp.asarray(a)
    if a.ndim and a.shape != lo.shape:
        raise ValueError(f"alpha leaves must be scalars or have the leaf's shape, got {a.shape=} "
                         f"for {lo.shape=}")
    if is_concrete(a) and not np.all((np.asarray(a) >= 0) & (np.asarray(a) <= 1)):  # nan too
        raise ValueError(f"alpha must be in [0, 1], got alpha={a!r}")
    return ((1 - a) * lo + a * gl).astype(lo.dtype)


def mix(local_tree: Any, global_tree: Any, alpha: Any) -> Any:
    """``(1 - alpha) * local + alpha * global`` leaf by leaf, with the local tree's dtypes.

    Args:
      local_tree: pytree of arrays (a model, or a local prompt / adapter).
      global_tree: pytree with the same structure and leaf shapes.
      alpha: a scalar, or a pytree *prefix* of the trees (e.g. one per prompt of a portfolio);
        each coefficient is a scalar or an array of its leaf's shape, in ``[0, 1]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.averaging import mix
      >>> local = {"w": jnp.zeros(2), "p": jnp.zeros(1)}
      >>> global_ = {"w": jnp.ones(2), "p": jnp.ones(1)}
      >>> m = mix(local, global_, {"w": 0.25, "p": 1.0})
      >>> m["w"], m["p"]
      (Array([0.25, 0.25], dtype=float32), Array([1.], dtype=float32))
    """
    ls, gs = jax.tree.structure(local_tree), jax.tree.structure(global_tree)
    if ls != gs:
        raise ValueError(f"local_tree and global_tree must have the same structure, got {ls} "
                         f"and {gs}")
    for lo, gl in zip(jax.tree.leaves(local_tree), jax.tree.leaves(global_tree)):
        if jnp.shape(lo) != jnp.shape(gl):
            raise ValueError(f"leaf shapes differ: {jnp.shape(lo)} vs {jnp.shape(gl)}")
    try:
        return jax.tree.map(lambda a, lo, gl: jax.tree.map(lambda x, y: _mix_leaf(a, x, y), lo, gl),
                            alpha, local_tree, global_tree)
    except (ValueError, TypeError) as err:
        if "alpha" in str(err):
            raise
        raise ValueError(f"alpha must be a scalar or a pytree prefix of the models, got {alpha!r}"
                         ) from err
