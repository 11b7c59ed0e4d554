"""Prompt portfolios over a frozen feature extractor (PromptFolio, Pan, Huang, Shi 2024,
https://arxiv.org/abs/2409.19610): each client predicts with ``P = (1 - theta) P_G + theta P_k``,
a global prompt set averaged by the server and a local one."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.averaging.mixing import mix
from feasjax.core.checks import is_concrete

__all__ = ["random_features", "prompt_logits", "portfolio_params", "portfolio_prompts",
           "portfolio_loss"]


def random_features(key: jax.Array, in_features: int, num_features: int) -> Callable:
    """A frozen random feature map ``x -> normalize(tanh(x W / sqrt(d) + b))``, shape ``(B, F)``,
    standing in for a foundation model's encoder (``W, b ~ N(0, I)`` drawn from ``key``; ``d``
    is ``in_features`` of a flattened input, ``F`` is ``num_features``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.federated import random_features
      >>> phi = random_features(jax.random.key(0), 4, 8)
      >>> f = phi(jnp.ones((3, 4)))
      >>> f.shape, jnp.allclose(jnp.linalg.norm(f, axis=-1), 1.0).item()
      ((3, 8), True)
    """
    for value, name in ((in_features, "in_features"), (num_features, "num_features")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    kw, kb = jax.random.split(key)
    w = jax.random.normal(kw, (in_features, num_features)) / jnp.sqrt(in_features)
    b = jax.random.normal(kb, (num_features,))

    def phi(x):
        h = jnp.tanh(x.reshape(x.shape[0], -1) @ w + b[None, :])
        return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)

    return phi


def prompt_logits(prompts: jax.Array, features: jax.Array, scale: float = 20.0) -> jax.Array:
    """Scaled cosine similarity of unit-norm ``features (B, F)`` and ``prompts (C, F)``: ``(B, C)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.federated import prompt_logits
      >>> prompt_logits(jnp.array([[2.0, 0.0], [0.0, 1.0]]), jnp.array([[1.0, 0.0]]),
      ...               10.0)
      Array([[10.,  0.]], dtype=float32)
    """
    unit = prompts / jnp.maximum(jnp.linalg.norm(prompts, axis=-1, keepdims=True), 1e-12)
    return scale * features @ unit.T


def portfolio_params(key: jax.Array, num_classes: int, num_features: int, num_clients: int,
                     theta: Any = 0.5) -> tuple[jax.Array, dict]:
    """Initial global prompts ``(C, F)`` and personal parameters per client: local prompts (a
    copy of the global ones) and ``theta`` (a scalar or ``(K,)``), stored as its logit.

    Example:
      >>> import jax
      >>> from feasjax.federated import portfolio_params
      >>> g, personal = portfolio_params(jax.random.key(0), 3, 8, num_clients=2,
      ...                                theta=0.25)
      >>> g.shape, personal["prompts"].shape, personal["theta_logit"].shape
      ((3, 8), (2, 3, 8), (2,))
    """
    if is_concrete(theta) and not np.all((np.asarray(theta) >= 0) & (np.asarray(theta) <= 1)):
        raise ValueError(f"theta must be in [0, 1], got {theta=}")
    theta = jnp.broadcast_to(jnp.asarray(theta, jnp.float32), (num_clients,))
    prompts = jax.random.normal(key, (num_classes, num_features))
    logit = jnp.log(theta) - jnp.log1p(-theta)  # +-inf at 0 and 1: sigmoid gives them back
    return prompts, {"prompts": jnp.broadcast_to(prompts, (num_clients, *prompts.shape)),
                     "theta_logit": logit}


def portfolio_prompts(global_prompts: jax.Array, personal: dict,
                      learn_theta: bool = False) -> jax.Array:
    """One client's portfolio ``(1 - theta) P_G + theta P_k``, i.e. ``mix(P_k, P_G, 1 - theta)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.federated import portfolio_params, portfolio_prompts
      >>> g, personal = portfolio_params(jax.random.key(0), 2, 2, num_clients=1,
      ...                                theta=0.25)
      >>> mine = jax.tree.map(lambda v: v[0], personal)
      >>> mine["prompts"] = jnp.zeros((2, 2))
      >>> bool(jnp.allclose(portfolio_prompts(g, mine), 0.75 * g))
      True
    """
    theta = jax.nn.sigmoid(personal["theta_logit"])
    theta = theta if learn_theta else jax.lax.stop_gradient(theta)
    return mix(personal["prompts"], global_prompts, 1.0 - theta)


def portfolio_loss(features: Callable, scale: float = 20.0,
                   learn_theta: bool = False) -> Callable[[Any, dict], jax.Array]:
    """Per-sample cross-entropy of the portfolio, ``loss((global_prompts, personal), batch) ->
    (B,)``, for :func:`feasjax.federated.federated_averaging` with personal parameters.

    Args:
      features: the frozen ``x -> unit-norm features`` of ``batch["x"]`` (``lambda f: f`` for
        precomputed features).
      scale: logit scale of the cosine similarities.
      learn_theta: also train ``theta`` (per client) instead of keeping it fixed.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.federated import portfolio_loss, portfolio_params
      >>> g, personal = portfolio_params(jax.random.key(0), 3, 4, num_clients=1)
      >>> loss = portfolio_loss(lambda f: f)
      >>> mine = jax.tree.map(lambda v: v[0], personal)
      >>> loss((g, mine), {"x": jnp.eye(4)[:2], "y": jnp.array([0, 2])}).shape
      (2,)
    """
    def loss(params, batch):
        global_prompts, personal = params
        logits = prompt_logits(portfolio_prompts(global_prompts, personal, learn_theta),
                               features(batch["x"]), scale)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch["y"][:, None], -1)[:, 0]

    return loss
