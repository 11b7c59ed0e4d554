"""Per-sample losses: the loss of one example, vmapped over a batch through a functional model.

Feasible Learning needs one loss per sample (each has its own multiplier), so losses are written
for a single example and ``jax.vmap``-ed; the model is applied to the whole batch at once, which
gives the same per-sample outputs because the models hold no batch statistics.

The model is split outside ``jit`` by the caller (``graphdef, params = nnx.split(model)``) and
merged inside the returned function, as in flax's ``examples/nnx_toy_examples/
01_functional_api.py``: ``params`` is then an ordinary pytree that optax can update.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

LOSSES = ("cross_entropy", "squared_error")

Batch = Mapping[str, jax.Array]
SingleLoss = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, label: jax.Array) -> jax.Array:
    """Softmax cross-entropy of one example with an integer label.

    .. math:: \\ell(z, y) = -\\log \\mathrm{softmax}(z)_y = \\mathrm{logsumexp}(z) - z_y

    computed stably (through ``optax.softmax_cross_entropy_with_integer_labels``).

    Args:
      logits: unnormalised scores, shape ``(C,)``.
      label: the class index, an integer array of shape ``()`` in ``[0, C)``.

    Returns:
      A scalar loss.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.losses import cross_entropy
      >>> round(float(cross_entropy(jnp.array([0.0, 0.0]), jnp.array(1))), 4)  # log 2
      0.6931
    """
    logits, label = jnp.asarray(logits), jnp.asarray(label)
    if logits.ndim != 1:
        raise ValueError(f"logits must have shape (C,) for one example, got {logits.shape=}")
    if label.ndim != 0:
        raise ValueError(f"label must be a scalar class index, got {label.shape=}")
    if not jnp.issubdtype(label.dtype, jnp.integer):
        raise TypeError(f"label must have an integer dtype, got {label.dtype=}")
    return optax.softmax_cross_entropy_with_integer_labels(logits, label)


def squared_error(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Squared error of one example, summed over output dimensions.

    .. math:: \\ell(\\hat y, y) = \\sum_k (\\hat y_k - y_k)^2

    A prediction of shape ``(1,)`` (a regression head with one output) is compared with a scalar
    target.

    Args:
      prediction: model output for one example, shape ``()``, ``(1,)`` or ``(K,)``.
      target: the target, shape ``()`` or the prediction's shape.

    Returns:
      A scalar loss.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.losses import squared_error
      >>> float(squared_error(jnp.array([3.0]), jnp.array(1.0)))
      4.0
    """
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    if prediction.shape == (1,) and target.ndim == 0:
        prediction = prediction[0]
    if prediction.shape != target.shape:
        raise ValueError(
            "prediction and target must have the same shape (or (1,) and ()), got "
            f"{prediction.shape=} and {target.shape=}"
        )
    return jnp.sum(jnp.square(prediction - target))


_BY_NAME: dict[str, SingleLoss] = {"cross_entropy": cross_entropy, "squared_error": squared_error}


def check_batch(batch: Any) -> None:
    """Raise ``ValueError`` unless ``batch`` maps ``"x"`` and ``"y"`` to arrays of equal length.

    Other keys (e.g. sample indices for the dual update) are allowed and ignored.

    Example:
      >>> import numpy as np
      >>> from feasjax.losses import check_batch
      >>> check_batch({"x": np.zeros((4, 2)), "y": np.zeros(4)})
    """
    if not isinstance(batch, Mapping) or "x" not in batch or "y" not in batch:
        keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
        raise ValueError(f"batch must be a mapping with keys 'x' and 'y', got {keys}")
    x_shape, y_shape = jnp.shape(batch["x"]), jnp.shape(batch["y"])
    if not x_shape or not y_shape or x_shape[0] != y_shape[0]:
        raise ValueError(
            "batch['x'] and batch['y'] must have the same leading (batch) size, got "
            f"shapes {x_shape} and {y_shape}"
        )


def _check_graphdef(graphdef: Any) -> None:
    if not isinstance(graphdef, nnx.GraphDef):
        raise TypeError(
            "graphdef must be the nnx.GraphDef from `graphdef, params = nnx.split(model)`, got "
            f"{type(graphdef).__name__}"
        )


def per_sample_loss_fn(
    graphdef: nnx.GraphDef, loss: str | SingleLoss = "cross_entropy"
) -> Callable[[Any, Batch], jax.Array]:
    """Build ``f(params, batch) -> (B,)`` per-sample losses of the model split as ``graphdef``.

    .. math:: f(\\theta, \\{(x_i, y_i)\\}_{i=1}^B)_i = \\ell(\\mathrm{model}_\\theta(x)_i, y_i)

    Args:
      graphdef: the static half of ``graphdef, params = nnx.split(model)`` (split outside jit).
      loss: ``"cross_entropy"`` (integer labels), ``"squared_error"``, or a callable
        ``loss(output, target) -> scalar`` for one example.

    Returns:
      A pure function of ``(params, batch)`` with ``batch = {"x": (B, ...), "y": (B, ...)}``
      returning per-sample losses of shape ``(B,)``; it merges ``graphdef`` and ``params``
      internally, so it can be jitted and differentiated with respect to ``params``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import MLP
      >>> from feasjax.losses import per_sample_loss_fn
      >>> graphdef, params = nnx.split(MLP(4, [8], 3, rngs=nnx.Rngs(0)))
      >>> f = jax.jit(per_sample_loss_fn(graphdef, "cross_entropy"))
      >>> f(params, {"x": jnp.ones((5, 4)), "y": jnp.zeros(5, jnp.int32)}).shape
      (5,)
    """
    _check_graphdef(graphdef)
    if callable(loss):
        single = loss
    elif loss in _BY_NAME:
        single = _BY_NAME[loss]
    else:
        raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss=}")

    def per_sample_loss(params: Any, batch: Batch) -> jax.Array:
        check_batch(batch)
        outputs = nnx.merge(graphdef, params)(batch["x"])
        return jax.vmap(single)(outputs, batch["y"])

    return per_sample_loss


def predict_fn(graphdef: nnx.GraphDef) -> Callable[[Any, jax.Array], jax.Array]:
    """Build ``f(params, x) -> outputs``, the model's forward pass in functional form.

    Args:
      graphdef: the static half of ``graphdef, params = nnx.split(model)``.

    Returns:
      A pure function mapping ``params`` and a batch ``x`` of shape ``(B, ...)`` to the model's
      outputs ``(B, out_features)`` (logits for classification).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import MLP
      >>> from feasjax.losses import predict_fn
      >>> graphdef, params = nnx.split(MLP(4, [8], 3, rngs=nnx.Rngs(0)))
      >>> predict_fn(graphdef)(params, jnp.ones((2, 4))).shape
      (2, 3)
    """
    _check_graphdef(graphdef)

    def predict(params: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params)(x)

    return predict


__all__ = [
    "LOSSES",
    "cross_entropy",
    "squared_error",
    "check_batch",
    "per_sample_loss_fn",
    "predict_fn",
]
