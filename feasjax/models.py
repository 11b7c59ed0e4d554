"""Small Flax NNX models for the demo and the tests: an MLP and a CNN for small images.

Both take a batch ``x`` of shape ``(B, ...)`` and return outputs of shape ``(B, out_features)``.
They hold only parameters (no dropout, no batch statistics), so ``graphdef, params =
nnx.split(model)`` captures everything and a per-sample loss can be computed from a batched forward
pass (see :func:`feasjax.losses.per_sample_loss_fn`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    return value


def _check_positive_ints(values: object, name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of positive ints, got {name}={values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a sequence of positive ints, got {name}={values!r}")
    return tuple(values)


class MLP(nnx.Module):
    """A multilayer perceptron with ReLU activations between its dense layers.

    .. math:: f(x) = W_L\\,\\mathrm{relu}(\\cdots \\mathrm{relu}(W_1 x + b_1) \\cdots) + b_L

    Inputs with more than two axes are flattened to ``(B, in_features)``.

    Args:
      in_features: number of input features (product of the non-batch input dimensions).
      hidden: widths of the hidden layers, possibly empty (a linear model).
      out_features: number of outputs (classes for classification, 1 for scalar regression).
      rngs: ``nnx.Rngs`` used to initialise the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import MLP
      >>> model = MLP(64, [32, 32], 10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((5, 64))).shape
      (5, 10)
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, *, rngs: nnx.Rngs
    ):
        self.in_features = _check_positive_int(in_features, "in_features")
        hidden = _check_positive_ints(hidden, "hidden")
        self.out_features = _check_positive_int(out_features, "out_features")
        sizes = (in_features, *hidden, out_features)
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the MLP to a batch ``x`` of shape ``(B, ...)``; returns ``(B, out_features)``."""
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(
                f"x must have shape (B, ...) with {self.in_features} features per sample, "
                f"got {x.shape=}"
            )
        x = x.reshape(x.shape[0], self.in_features)
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class CNN(nnx.Module):
    """A small convolutional network for small images (e.g. 8x8x1 digits).

    Each block is a 3x3 ``SAME`` convolution, a ReLU and a 2x2 average pool (``SAME`` padding, so a
    spatial size ``s`` becomes ``ceil(s / 2)``); the feature map is then flattened into a dense
    head ``Linear -> relu -> Linear``.

    Inputs may be given as images ``(B, H, W, C)``, flat ``(B, H * W * C)`` (as scikit-learn's
    ``digits`` comes), or ``(B, H, W)`` when ``C == 1``.

    Args:
      image_shape: ``(H, W, C)`` of one input image.
      out_features: number of outputs.
      features: channels of the successive convolutional blocks.
      hidden: width of the dense hidden layer of the head.
      rngs: ``nnx.Rngs`` used to initialise the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import CNN
      >>> model = CNN((8, 8, 1), 10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((3, 64))).shape
      (3, 10)
      >>> model(jnp.ones((3, 8, 8, 1))).shape
      (3, 10)
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        *,
        features: Sequence[int] = (16, 32),
        hidden: int = 64,
        rngs: nnx.Rngs,
    ):
        image_shape = _check_positive_ints(image_shape, "image_shape")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape=}")
        self.image_shape = image_shape
        self.out_features = _check_positive_int(out_features, "out_features")
        features = _check_positive_ints(features, "features")
        if not features:
            raise ValueError(f"features must name at least one conv block, got {features=}")
        _check_positive_int(hidden, "hidden")
        channels = (image_shape[2], *features)
        self.convs = nnx.List(
            [nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip(channels[:-1], channels[1:])]
        )
        height, width = image_shape[:2]
        for _ in features:
            height, width = -(-height // 2), -(-width // 2)
        self.dense = nnx.Linear(height * width * features[-1], hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the CNN to a batch of images, flat or HWC; returns ``(B, out_features)``."""
        shape = self.image_shape
        accepted = [shape, (math.prod(shape),)] + ([shape[:2]] if shape[2] == 1 else [])
        if x.ndim < 2 or tuple(x.shape[1:]) not in accepted:
            raise ValueError(
                f"x must have shape (B, *s) with s one of {accepted}, got {x.shape=}"
            )
        x = x.reshape(x.shape[0], *shape)
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
            x = nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")
        x = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
        return self.head(x)


__all__ = ["MLP", "CNN"]
