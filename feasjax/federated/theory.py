"""Grimberg et al.'s mean-estimation setting, vectorised over clients and repetitions: a Monte
Carlo check of the optimal mixing coefficient (https://arxiv.org/abs/2110.12946, Section 3).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from feasjax.averaging.mixing import estimate_mixing_alpha, mixing_helps, optimal_mixing_alpha

__all__ = ["MeanEstimation", "mean_estimation"]


class MeanEstimation(NamedTuple):
    """Result of :func:`mean_estimation` (``K`` clients, ``G`` grid coefficients)."""
    alpha_star: jax.Array  # (K,), the closed form alpha*_k
    alpha_mse: jax.Array  # (K,), the Monte Carlo MSE-optimal alpha (minimiser of the MC MSE)
    alpha_estimated: jax.Array  # (R, K), estimate_mixing_alpha per repetition
    mse: jax.Array  # (K, G), Monte Carlo MSE of the mix for every grid alpha
    helps_predicted: jax.Array  # (K, G) bool, mixing_helps (0 < alpha < 2 alpha*)
    helps_observed: jax.Array  # (K, G) bool, MC MSE(alpha) < MC MSE(0)


def mean_estimation(key: jax.Array, *, num_clients: int = 10, num_samples: int = 20,
                    dim: int = 10, variance: float = 1.0, bias: float = 1.0,
                    repetitions: int = 200, alphas: jax.Array | None = None,
                    debiased: bool = True) -> MeanEstimation:
    """Monte Carlo of local/global mixing for mean estimation, all clients and repetitions at once.

    Args:
      key: PRNG key (client means, then the samples of every repetition).
      num_clients, num_samples, dim: ``K >= 2``, ``n >= 2`` samples per client, ``d >= 1``.
      variance: ``sigma^2 > 0`` of each coordinate.
      bias: scale of the client means' spread (0: identical clients).
      repetitions: ``R >= 2`` Monte Carlo draws.
      alphas: grid of coefficients for the MSE curve (default: 41 points in ``[0, 1]``).
      debiased: passed to :func:`feasjax.averaging.estimate_mixing_alpha`.

    Returns:
      A :class:`MeanEstimation`.

    Example:
      >>> import jax
      >>> from feasjax.federated import mean_estimation
      >>> res = mean_estimation(jax.random.key(0), num_clients=4, repetitions=50,
      ...                       bias=0.5)
      >>> res.alpha_estimated.shape, res.mse.shape
      ((50, 4), (4, 41))
    """
    for value, name, low in ((num_clients, "num_clients", 2), (num_samples, "num_samples", 2),
                             (dim, "dim", 1), (repetitions, "repetitions", 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
    if not variance > 0 or not bias >= 0:
        raise ValueError(f"variance must be > 0 and bias >= 0, got {variance=}, {bias=}")
    alphas = jnp.linspace(0.0, 1.0, 41) if alphas is None else jnp.asarray(alphas)
    return _simulate(key, jnp.float32(variance), jnp.float32(bias), alphas,
                     num_clients=num_clients, num_samples=num_samples, dim=dim,
                     repetitions=repetitions, debiased=bool(debiased))


@functools.partial(jax.jit, static_argnames=("num_clients", "num_samples", "dim", "repetitions",
                                             "debiased"))
def _simulate(key, variance, bias, alphas, *, num_clients, num_samples, dim, repetitions,
              debiased):
    k_mu, k_x = jax.random.split(key)
    mu = bias * jax.random.normal(k_mu, (num_clients, dim)) / jnp.sqrt(dim)  # (K, d)
    others = jnp.array([[j for j in range(num_clients) if j != k] for k in range(num_clients)])
    target_global = jnp.mean(mu[others], axis=1)  # (K, d), E of the leave-one-out mean
    v_local = variance * dim / num_samples
    v_global = v_local / (num_clients - 1)
    gap = jnp.linalg.norm(target_global - mu, axis=-1)  # (K,)
    alpha_star = optimal_mixing_alpha(v_local, v_global, gap)

    def repetition(k):
        x = mu[:, None] + jnp.sqrt(variance) * jax.random.normal(k, (num_clients, num_samples,
                                                                     dim))
        pooled = x[others].reshape(num_clients, -1, dim)  # (K, (K-1) n, d)
        est = jax.vmap(lambda a, b: estimate_mixing_alpha(a, b, debiased=debiased))(x, pooled)
        return x.mean(1), pooled.mean(1), est

    theta_l, theta_g, estimated = jax.vmap(repetition)(jax.random.split(k_x, repetitions))
    err_l, diff = theta_l - mu[None], theta_l - theta_g  # (R, K, d)
    # The MC MSE is a quadratic in alpha, mean_r ||err_l - alpha diff||^2 = a - 2 alpha b +
    # alpha^2 c (exact, per client), minimised at b / c.
    a, b, c = (jnp.mean(jnp.sum(u * v, axis=-1), axis=0)
               for u, v in ((err_l, err_l), (err_l, diff), (diff, diff)))  # (K,) each
    alpha_mse = b / c
    mse = a[:, None] - 2 * alphas[None, :] * b[:, None] + alphas[None, :] ** 2 * c[:, None]
    helps = mixing_helps(alphas[None, :], v_local, v_global, gap[:, None])
    return MeanEstimation(alpha_star, alpha_mse, estimated, mse, helps, mse < mse[:, :1])
