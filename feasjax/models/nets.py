"""Small Flax NNX models for the demo and the tests: an MLP, a CNN and a ResNet for small images,
each mapping ``(B, ...)`` to ``(B, out_features)``. ``CNN(batch_norm=True)``, ``CNN(dropout=p)``
and :class:`ResNet` also hold batch statistics and dropout RNG state (see
:func:`feasjax.models.split_model`). BatchNorm has PyTorch's defaults, ``momentum=0.9`` (its 0.1,
the weight of the new batch) and ``epsilon=1e-5``; layers with state are created last, so
``CNN(batch_norm=True)`` starts from the same weights as ``CNN()`` with the same seed."""
from __future__ import annotations

import functools
import math
from typing import Any
from collections.abc import Sequence

import jax
from flax import nnx

from feasjax.models.tied_dropout import ExampleTiedDropout, TiedDropout

__all__ = ["MLP", "CNN", "BasicBlock", "ResNet"]


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    return value


def _check_positive_ints(values: object, name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not all(
            not isinstance(v, bool) and isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{name} must be a sequence of positive ints, got {name}={values!r}")
    return tuple(values)


def _check_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a float in [0, 1), got {name}={value!r}")
    return float(value)


def _check_image_shape(image_shape: object) -> tuple[int, ...]:
    image_shape = _check_positive_ints(image_shape, "image_shape")
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (H, W, C), got {image_shape=}")
    return image_shape


def _as_images(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Reshape a batch given flat, ``(B, H, W)`` (one channel) or HWC to ``(B, H, W, C)``."""
    accepted = [shape, (math.prod(shape),)] + ([shape[:2]] if shape[2] == 1 else [])
    if x.ndim < 2 or tuple(x.shape[1:]) not in accepted:
        raise ValueError(f"x must have shape (B, *s) with s one of {accepted}, got {x.shape=}")
    return x.reshape(x.shape[0], *shape)


def _tied(config: TiedDropout | None, hidden: Sequence[int]
          ) -> tuple[int, ExampleTiedDropout | None]:
    """The hidden layer and the :class:`ExampleTiedDropout` of a ``tied_dropout`` option."""
    if config is None:
        return -1, None
    if not isinstance(config, TiedDropout):
        raise TypeError(f"tied_dropout must be a feasjax.models.TiedDropout or None, got "
                        f"{type(config).__name__}")
    if not hidden or not -len(hidden) <= config.layer < len(hidden):
        raise ValueError(f"tied_dropout.layer must index one of the {len(hidden)} hidden "
                         f"layers, got layer={config.layer}")
    layer = config.layer % len(hidden)
    return layer, ExampleTiedDropout(hidden[layer], p_gen=config.p_gen, p_mem=config.p_mem,
                                     seed=config.seed)


def _batch_norm(features: int, rngs: nnx.Rngs, dtype: Any = None) -> nnx.BatchNorm:
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)


class MLP(nnx.Module):
    """A multilayer perceptron with ReLU activations; inputs are flattened to ``(B, in_features)``.

    .. math:: f(x) = W_L\\,\\mathrm{relu}(\\cdots \\mathrm{relu}(W_1 x + b_1) \\cdots) + b_L

    Args:
      in_features: number of input features (product of the non-batch input dimensions).
      hidden: widths of the hidden layers, possibly empty (a linear model).
      out_features: number of outputs.
      rngs: ``nnx.Rngs`` used to initialise the parameters.
      tied_dropout: optional :class:`feasjax.models.TiedDropout` (FairDropout) after the ReLU of
        hidden layer ``tied_dropout.layer``; call ``model(x, indices)`` in training mode. It holds
        no state, so the model stays parameter-only.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import MLP, TiedDropout
      >>> tied = MLP(64, [32], 10, tied_dropout=TiedDropout(0.5, 0.2),
      ...            rngs=nnx.Rngs(0))
      >>> tied(jnp.ones((5, 64)), indices=jnp.arange(5)).shape
      (5, 10)
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, *, rngs: nnx.Rngs,
        tied_dropout: TiedDropout | None = None,
    ) -> None:
        self.in_features = _check_positive_int(in_features, "in_features")
        hidden = _check_positive_ints(hidden, "hidden")
        self.out_features = _check_positive_int(out_features, "out_features")
        sizes = (in_features, *hidden, out_features)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.tied_layer, self.tied = _tied(tied_dropout, hidden)

    def __call__(self, x: jax.Array, indices: jax.Array | None = None) -> jax.Array:
        """Apply the MLP to ``x`` of shape ``(B, ...)``; ``indices`` pick the tied-dropout masks."""
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(f"x must have shape (B, ...) with {self.in_features} features per "
                             f"sample, got {x.shape=}")
        x = x.reshape(x.shape[0], self.in_features)
        for i, layer in enumerate(self.layers[:-1]):
            x = jax.nn.relu(layer(x))
            if self.tied is not None and i == self.tied_layer:
                x = self.tied(x, indices)
        return self.layers[-1](x)


class CNN(nnx.Module):
    """A small convolutional network for small images (e.g. 8x8x1 digits).

    Blocks of a 3x3 ``SAME`` convolution, optional batch norm, ReLU and a 2x2 ``SAME`` average pool,
    then a head ``Linear -> relu -> [Dropout] -> Linear``. Inputs may be ``(B, H, W, C)``, flat
    ``(B, H * W * C)``, or ``(B, H, W)`` when ``C == 1``.

    Args:
      image_shape: ``(H, W, C)`` of one input image.
      out_features: number of outputs.
      features: channels of the successive convolutional blocks.
      hidden: width of the dense hidden layer of the head.
      batch_norm: put an ``nnx.BatchNorm`` after each convolution (before the ReLU).
      dropout: rate of an ``nnx.Dropout`` before the last ``Linear``, in ``[0, 1)``.
      rngs: ``nnx.Rngs`` for the parameters; dropout forks the ``"dropout"`` (or default) stream.
      tied_dropout: optional :class:`feasjax.models.TiedDropout` on the dense hidden layer.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import CNN
      >>> CNN((8, 8, 1), 10, batch_norm=True, dropout=0.5, rngs=nnx.Rngs(0))(
      ...     jnp.ones((3, 8, 8))).shape
      (3, 10)
    """

    def __init__(
        self, image_shape: Sequence[int], out_features: int, *, features: Sequence[int] = (16, 32),
        hidden: int = 64, batch_norm: bool = False, dropout: float = 0.0, rngs: nnx.Rngs,
        tied_dropout: TiedDropout | None = None,
    ) -> None:
        self.image_shape = image_shape = _check_image_shape(image_shape)
        self.out_features = _check_positive_int(out_features, "out_features")
        features = _check_positive_ints(features, "features")
        if not features:
            raise ValueError(f"features must name at least one conv block, got {features=}")
        _check_positive_int(hidden, "hidden")
        if not isinstance(batch_norm, bool):
            raise ValueError(f"batch_norm must be a bool, got {batch_norm=}")
        dropout = _check_rate(dropout, "dropout")
        channels = (image_shape[2], *features)
        self.convs = nnx.List([nnx.Conv(a, b, (3, 3), rngs=rngs)
                               for a, b in zip(channels, channels[1:])])
        # Each SAME 2x2 pool takes a side d to ceil(d / 2).
        pooled = math.prod(-(-d // 2 ** len(features)) for d in image_shape[:2])
        self.dense = nnx.Linear(pooled * features[-1], hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, out_features, rngs=rngs)
        # Stateful layers last: they draw from `rngs` too, and must not shift the keys (hence
        # the initial values) of the layers above, which predate them.
        self.norms = nnx.List([_batch_norm(f, rngs) for f in features] if batch_norm else [])
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None
        self.tied = _tied(tied_dropout, (hidden,))[1]

    def __call__(self, x: jax.Array, indices: jax.Array | None = None) -> jax.Array:
        """Apply the CNN to images, flat or HWC; ``indices`` pick the tied-dropout masks."""
        x = _as_images(x, self.image_shape)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = jax.nn.relu(self.norms[i](x) if self.norms else x)
            x = nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")
        x = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
        if self.tied is not None:
            x = self.tied(x, indices)
        return self.head(self.dropout(x) if self.dropout is not None else x)


class BasicBlock(nnx.Module):
    """ResNet's basic block: ``relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))``.

    The shortcut is the identity, or a strided 1x1 convolution and a batch normalisation when the
    stride or the number of channels changes (He et al. 2016, option B).

    Args:
      in_features: input channels.
      out_features: output channels.
      stride: stride of the first convolution (and of the projection).
      rngs: ``nnx.Rngs`` used to initialise the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import BasicBlock
      >>> block = BasicBlock(4, 4, stride=1, rngs=nnx.Rngs(0))  # identity shortcut
      >>> block(jnp.ones((2, 8, 8, 4))).shape, block.project is None
      ((2, 8, 8, 4), True)
    """

    def __init__(self, in_features: int, out_features: int, *, stride: int,
                 rngs: nnx.Rngs, dtype: Any = None) -> None:
        # BN adds the bias; dtype: the computation's (bfloat16: mixed precision, float32 params)
        conv = functools.partial(nnx.Conv, use_bias=False, dtype=dtype, rngs=rngs)
        self.conv1 = conv(in_features, out_features, (3, 3), strides=stride)
        self.bn1 = _batch_norm(out_features, rngs, dtype)
        self.conv2 = conv(out_features, out_features, (3, 3))
        self.bn2 = _batch_norm(out_features, rngs, dtype)
        project = stride != 1 or in_features != out_features
        self.project = conv(in_features, out_features, (1, 1), strides=stride) if project else None
        self.project_bn = _batch_norm(out_features, rngs, dtype) if project else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block to ``(B, H, W, in_features)``; returns ``(B, H', W', out_features)``."""
        h = self.bn2(self.conv2(jax.nn.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.project is None else self.project_bn(self.project(x))
        return jax.nn.relu(h + shortcut)


class ResNet(nnx.Module):
    """A residual network of basic blocks: the CIFAR-style ResNet-18 family (He et al. 2016).

    A 3x3 stem (conv, batch norm, ReLU), stages of ``blocks[i]`` :class:`BasicBlock` s of
    ``widths[i]`` channels (later stages halve the resolution), a global average pool, optional
    dropout and a ``Linear`` head. ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is the
    ResNet-18 of the Feasible Learning paper's CIFAR-10 runs; the defaults are a narrow, quick
    three-stage version. Inputs as for :class:`CNN`.

    Args:
      image_shape: ``(H, W, C)`` of one input image.
      out_features: number of outputs.
      widths: channels of the successive stages.
      blocks: number of basic blocks per stage, as long as ``widths``.
      dropout: rate of an ``nnx.Dropout`` before the head, in ``[0, 1)``; 0 adds none.
      dtype: the computation's dtype (``jnp.bfloat16`` for mixed precision; the parameters
        stay float32); ``None``: the inputs'.
      rngs: ``nnx.Rngs`` used to initialise the parameters (and to seed dropout).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import ResNet
      >>> model = ResNet((8, 8, 1), 10, widths=(4,), blocks=(1,), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((3, 64))).shape
      (3, 10)

    References:
      He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(
        self, image_shape: Sequence[int], out_features: int, *,
        widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] = (2, 2, 2),
        dropout: float = 0.0, dtype: Any = None, rngs: nnx.Rngs,
    ) -> None:
        self.image_shape = image_shape = _check_image_shape(image_shape)
        self.out_features = _check_positive_int(out_features, "out_features")
        widths = _check_positive_ints(widths, "widths")
        blocks = _check_positive_ints(blocks, "blocks")
        if not widths or len(blocks) != len(widths):
            raise ValueError(f"widths and blocks must be non-empty and of equal length, got "
                             f"{widths=}, {blocks=}")
        dropout = _check_rate(dropout, "dropout")
        self.stem = nnx.Conv(image_shape[2], widths[0], (3, 3), use_bias=False, dtype=dtype,
                             rngs=rngs)
        self.stem_bn = _batch_norm(widths[0], rngs, dtype)
        # A stage's first block takes the previous stage's channels and, after the first stage,
        # halves the resolution.
        self.layers = nnx.List([
            BasicBlock(prev if i == 0 else width, width, stride=2 if i == 0 and s > 0 else 1,
                       rngs=rngs, dtype=dtype)
            for s, (prev, width, count) in enumerate(zip((widths[0], *widths), widths, blocks))
            for i in range(count)])
        self.head = nnx.Linear(widths[-1], out_features, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the ResNet to a batch of images, flat or HWC; returns ``(B, out_features)``."""
        x = jax.nn.relu(self.stem_bn(self.stem(_as_images(x, self.image_shape))))
        for block in self.layers:
            x = block(x)
        x = x.mean(axis=(1, 2))  # global average pool
        return self.head(self.dropout(x) if self.dropout is not None else x)
