"""Personalization per client: local, global, fine-tuned and mixed models (Grimberg, Hartley,
Karimireddy, Jaggi 2021, https://arxiv.org/abs/2110.12946); ``alpha_k``, the global model's
weight, is chosen on held-out training rows. Pure and unjitted: wrap the pipeline in ``jax.jit``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from feasjax.averaging.mixing import mix

__all__ = ["train_clients", "client_metrics", "held_out_split", "mix_clients", "alpha_curve",
           "select_alpha"]

Predict = Callable[[Any, jax.Array], jax.Array]  # (params, x (B, ...)) -> logits (B, C)


def train_clients(train: Callable, params: Any, clients: dict, key: jax.Array, *,
                  per_client: bool = False) -> Any:
    """Train every client from ``params`` (shared, or one per client) in one ``vmap``.

    Args:
      train: ``train(params, client, key)``, e.g. from :func:`feasjax.federated.client_update`.
      params: the starting model, or per-client models (leading axis K) with ``per_client``.
      clients: ``{"x", "y", "mask"}`` with a leading client axis.
      key: PRNG key, split over clients.

    Returns:
      Per-client models, leading axis K.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax.federated import client_update, train_clients
      >>> train = client_update(lambda w, b: (b["x"] @ w - b["y"]) ** 2,
      ...                       optax.sgd(0.5), 50)
      >>> clients = {"x": jnp.ones((2, 3, 1)),
      ...            "y": jnp.stack([jnp.zeros(3), jnp.ones(3)]),
      ...            "mask": jnp.ones((2, 3), bool)}
      >>> train_clients(train, jnp.zeros(1), clients,
      ...               jax.random.key(0)).round(3).tolist()
      [[0.0], [1.0]]
    """
    keys = jax.random.split(key, clients["mask"].shape[0])
    return jax.vmap(train, in_axes=(0 if per_client else None, 0, 0))(params, clients, keys)


def _metrics(predict: Predict, params: Any, data: dict) -> tuple[jax.Array, jax.Array]:
    logits = predict(params, data["x"])
    mask = data["mask"].astype(logits.dtype)
    n = jnp.maximum(jnp.sum(mask), 1.0)
    correct = (jnp.argmax(logits, axis=-1) == data["y"]).astype(logits.dtype)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), data["y"][:, None], axis=-1)[:, 0]
    return jnp.sum(mask * correct) / n, jnp.sum(mask * nll) / n


def client_metrics(predict: Predict, params: Any, data: dict, *,
                   per_client: bool = True) -> tuple[jax.Array, jax.Array]:
    """Accuracy and mean cross-entropy of each client's model on its own (masked) data.

    Args:
      predict: ``(params, x) -> logits``.
      params: per-client models (leading axis K), or one shared model (``per_client=False``).
      data: ``{"x", "y", "mask"}`` with a leading client axis.

    Returns:
      ``(accuracy, loss)``, each of shape ``(K,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import client_metrics
      >>> data = {"x": jnp.eye(2)[None], "y": jnp.array([[0, 0]]),
      ...         "mask": jnp.ones((1, 2), bool)}
      >>> acc, loss = client_metrics(lambda w, x: x @ w, jnp.eye(2), data,
      ...                            per_client=False)
      >>> acc.tolist()
      [0.5]
    """
    fn = jax.vmap(lambda p, d: _metrics(predict, p, d), in_axes=(0 if per_client else None, 0))
    return fn(params, data)


def held_out_split(clients: dict, fraction: float = 0.2) -> tuple[dict, dict]:
    """Split each client's real rows (first in ``clients["mask"]``): the first ``1 - fraction``
    to fit, the rest held out, at least one row each side of two. Only the masks change.

    Returns:
      ``(fit, held_out)``, the same arrays with their own masks.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import held_out_split
      >>> c = {"x": jnp.zeros((1, 6, 1)), "y": jnp.zeros((1, 6), int),
      ...      "mask": jnp.array([[1, 1, 1, 1, 1, 0]], bool)}
      >>> fit, held = held_out_split(c, 0.4)
      >>> fit["mask"].astype(int).tolist(), held["mask"].astype(int).tolist()
      ([[1, 1, 1, 0, 0, 0]], [[0, 0, 0, 1, 1, 0]])
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction=}")
    count = jnp.sum(clients["mask"], axis=1, keepdims=True)
    n_fit = jnp.clip(jnp.round(count * (1 - fraction)), 1, jnp.maximum(count - 1, 1))
    rows = jnp.arange(clients["mask"].shape[1])
    fit = clients["mask"] & (rows[None, :] < n_fit)
    return {**clients, "mask": fit}, {**clients, "mask": clients["mask"] & ~fit}


def mix_clients(local: Any, global_params: Any, alpha: jax.Array) -> Any:
    """``feasjax.mix(local_k, global, alpha_k)`` for every client (``alpha``: shape ``(K,)``).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import mix_clients
      >>> mix_clients(jnp.zeros((2, 1)), jnp.ones(1), jnp.array([0.25, 1.0])).tolist()
      [[0.25], [1.0]]
    """
    return jax.vmap(mix, in_axes=(0, None, 0))(local, global_params, jnp.asarray(alpha))


def alpha_curve(predict: Predict, local: Any, global_params: Any, data: dict,
                alphas: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Accuracy and loss of every client's mix for every ``alpha`` of a grid.

    Args:
      predict: ``(params, x) -> logits``.
      local, global_params: per-client local models (leading axis K) and the global model.
      data: ``{"x", "y", "mask"}`` per client (held-out or test rows).
      alphas: grid of coefficients in ``[0, 1]``, shape ``(G,)``.

    Returns:
      ``(accuracy, loss)``, each of shape ``(K, G)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import alpha_curve
      >>> data = {"x": jnp.eye(2)[None], "y": jnp.array([[1, 1]]),
      ...         "mask": jnp.ones((1, 2), bool)}
      >>> acc, _ = alpha_curve(lambda w, x: x @ w, jnp.eye(2)[None], jnp.eye(2)[::-1],
      ...                      data, jnp.array([0.0, 1.0]))
      >>> acc.tolist()
      [[0.5, 0.5]]
    """
    def one(lo, d):
        return jax.vmap(lambda a: _metrics(predict, mix(lo, global_params, a), d))(alphas)

    return jax.vmap(one)(local, data)


def select_alpha(losses: jax.Array, alphas: jax.Array) -> jax.Array:
    """Per client, the grid coefficient with the smallest loss (ties: the first).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import select_alpha
      >>> select_alpha(jnp.array([[3.0, 1.0, 2.0]]),
      ...              jnp.array([0.0, 0.5, 1.0])).tolist()
      [0.5]
    """
    return jnp.asarray(alphas)[jnp.argmin(losses, axis=-1)]
