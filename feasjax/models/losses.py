"""Per-sample losses: the loss of one example, vmapped over a batch through a functional model.

The model is split outside ``jit`` and merged inside the returned function (flax's
``nnx_toy_examples/01_functional_api.py``), so ``params`` is a pytree optax can update. The
functions set the mode on the model they merge, so a ``graphdef`` split in either mode works; a
Dropout mask depends only on the seed and the number of steps taken.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

__all__ = ["LOSSES", "cross_entropy", "squared_error", "per_sample_loss_fn", "split_model",
           "has_model_state", "predict_fn"]

LOSSES = ("cross_entropy", "squared_error")

Batch = Mapping[str, jax.Array]
SingleLoss = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, label: jax.Array) -> jax.Array:
    """Softmax cross-entropy of one example with an integer label ``y`` in ``[0, C)``.

    .. math:: \\ell(z, y) = -\\log \\mathrm{softmax}(z)_y = \\mathrm{logsumexp}(z) - z_y

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.models import cross_entropy
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

    ``prediction`` has shape ``()``, ``(1,)`` or ``(K,)``; ``target`` shape ``()`` or the
    prediction's.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.models import squared_error
      >>> float(squared_error(jnp.array([3.0]), jnp.array(1.0)))
      4.0
    """
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    if prediction.shape == (1,) and target.ndim == 0:
        prediction = prediction[0]
    if prediction.shape != target.shape:
        raise ValueError("prediction and target must have the same shape (or (1,) and ()), got "
                         f"{prediction.shape=} and {target.shape=}")
    return jnp.sum(jnp.square(prediction - target))


_BY_NAME: dict[str, SingleLoss] = {"cross_entropy": cross_entropy, "squared_error": squared_error}


def check_batch(batch: Any) -> None:
    """Raise ``ValueError`` unless ``batch`` maps ``"x"`` and ``"y"`` (other keys are ignored) to
    arrays of one leading size."""
    if not isinstance(batch, Mapping) or "x" not in batch or "y" not in batch:
        keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
        raise ValueError(f"batch must be a mapping with keys 'x' and 'y', got {keys}")
    x_shape, y_shape = jnp.shape(batch["x"]), jnp.shape(batch["y"])
    if not x_shape or not y_shape or x_shape[0] != y_shape[0]:
        raise ValueError("batch['x'] and batch['y'] must have the same leading (batch) size, got "
                         f"shapes {x_shape} and {y_shape}")


def _check_graphdef(graphdef: Any) -> None:
    if not isinstance(graphdef, nnx.GraphDef):
        raise TypeError("graphdef must be the nnx.GraphDef from `graphdef, params = "
                        f"nnx.split(model)`, got {type(graphdef).__name__}")


def per_sample_loss_fn(
    graphdef: nnx.GraphDef, loss: str | SingleLoss = "cross_entropy", *, train: bool = True,
    axis_name: Hashable | None = None, dropout: bool = True,
) -> Callable[..., Any]:
    """Build ``f(params, batch, model_state=None)``: the per-sample losses of a model.

    Without ``model_state``, ``f`` returns the ``(B,)`` losses of the merged model. With a
    ``model_state`` (from :func:`split_model`) and ``train=True``, ``f`` runs ``model.train()``
    (BatchNorm uses and updates batch statistics, Dropout draws a fresh mask) and returns
    ``(losses, new_model_state)``; with ``train=False``, the losses under ``model.eval()``
    (running statistics, no dropout). A solver built on ``f`` (:func:`feasjax.feasible_learning`,
    ...) threads the model state when its ``init`` is given one.

    Args:
      graphdef: the static part of ``nnx.split(model)`` or :func:`split_model` (outside jit).
      loss: ``"cross_entropy"`` (integer labels), ``"squared_error"``, or a callable
        ``loss(output, target) -> scalar`` for one example.
      train: training mode (with a model state) or evaluation mode.
      axis_name: the mapped data axis inside ``shard_map``/``pmap`` (each device folds its index
        into the dropout keys, the running statistics are ``pmean``-ed), else ``None``.
      dropout: ``False`` turns the ``nnx.Dropout`` layers off in training mode (BatchNorm still
        uses the batch; the RNG counts do not advance): the loss Feasible Learning weights.

    Returns:
      A pure, jittable ``f(params, batch, model_state=None)``, ``batch = {"x": (B, ...), "y":
      (B, ...)}``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import CNN, MLP, per_sample_loss_fn, split_model
      >>> batch = {"x": jnp.ones((5, 64)), "y": jnp.zeros(5, jnp.int32)}
      >>> graphdef, params = nnx.split(MLP(64, [8], 3, rngs=nnx.Rngs(0)))
      >>> jax.jit(per_sample_loss_fn(graphdef))(params, batch).shape
      (5,)
      >>> graphdef, params, model_state = split_model(
      ...     CNN((8, 8, 1), 3, features=(4,), hidden=8, batch_norm=True, dropout=0.5,
      ...         rngs=nnx.Rngs(0)))
      >>> losses, model_state = jax.jit(per_sample_loss_fn(graphdef))(params, batch,
      ...                                                             model_state)
      >>> losses.shape, int(model_state["dropout"]["rngs"]["count"][...])
      ((5,), 1)
    """
    _check_graphdef(graphdef)
    if not callable(loss) and loss not in _BY_NAME:
        raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss=}")
    single = loss if callable(loss) else _BY_NAME[loss]

    def per_sample_loss(params: Any, batch: Batch, model_state: Any = None) -> Any:
        check_batch(batch)
        if train and model_state is not None:
            return _train_losses(graphdef, single, params, batch, model_state, axis_name, dropout)
        model = nnx.merge(graphdef, params) if train else _eval_model(graphdef, params, model_state)
        return jax.vmap(single)(model(batch["x"]), batch["y"])

    return per_sample_loss


def _train_losses(graphdef, single, params, batch, model_state, axis_name, dropout):
    """Losses in training mode and the updated model state (:func:`per_sample_loss_fn`)."""
    keys, rest = nnx.split_state(model_state, nnx.RngKey, ...)
    local_keys = keys if axis_name is None else jax.tree.map(
        lambda k: jax.random.fold_in(k, jax.lax.axis_index(axis_name)), keys)
    # copy: without it an eager call would update the caller's Variables in place.
    model = nnx.merge(graphdef, params, local_keys, rest, copy=True)
    model.train()
    if not dropout:
        model.set_attributes(nnx.Dropout, deterministic=True, raise_if_not_found=False)
    losses = jax.vmap(single)(model(batch["x"]), batch["y"])
    # The stored keys are the caller's (a forward pass only advances the counts).
    _, _, stats, _, others = nnx.split(model, nnx.Param, nnx.BatchStat, nnx.RngKey, ...)
    if axis_name is not None:
        stats = jax.tree.map(lambda s: jax.lax.pmean(s, axis_name), stats)
    keys = jax.tree.map(lambda k: k, keys)  # fresh Variables, not the caller's
    return losses, nnx.merge_state(keys, stats, others)


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """Split ``model`` into ``graphdef, params, model_state``: ``nnx.split(model, nnx.Param, ...)``.

    ``model_state`` is everything but the ``nnx.Param`` leaves (BatchNorm statistics, dropout RNG),
    empty for a model without any.

    Example:
      >>> from flax import nnx
      >>> from feasjax.models import CNN, has_model_state, split_model
      >>> model = CNN((8, 8, 1), 3, batch_norm=True, rngs=nnx.Rngs(0))
      >>> has_model_state(split_model(model)[2])
      True
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be an nnx.Module, got {type(model).__name__}")
    return nnx.split(model, nnx.Param, ...)


def has_model_state(model_state: Any) -> bool:
    """Whether ``model_state`` (from :func:`split_model`) has any leaves; ``None`` has none.

    Example:
      >>> from flax import nnx
      >>> from feasjax.models import has_model_state
      >>> has_model_state(nnx.State({}))
      False
    """
    return bool(jax.tree.leaves(model_state))


def _eval_model(graphdef: nnx.GraphDef, params: Any, model_state: Any) -> nnx.Module:
    """The merged model in evaluation mode (a copy: the caller's stays as is)."""
    states = () if model_state is None else (model_state,)
    model = nnx.merge(graphdef, params, *states, copy=True)
    model.eval()  # running statistics, no dropout
    return model


def stateful_loss_fn(graphdef: nnx.GraphDef, loss: str | SingleLoss = "cross_entropy", *,
                     axis_name: Hashable | None = None, dropout: bool = True
                     ) -> Callable[..., tuple[jax.Array, Any]]:
    """(0.1) ``f(params, batch, model_state) -> (losses, new_model_state)`` in training mode:
    :func:`per_sample_loss_fn` given a model state (``None`` returns ``(losses, None)``)."""
    losses = per_sample_loss_fn(graphdef, loss, axis_name=axis_name, dropout=dropout)

    def stateful_loss(params: Any, batch: Batch, model_state: Any) -> tuple[jax.Array, Any]:
        if model_state is None:
            return losses(params, batch, nnx.State({}))[0], None
        return losses(params, batch, model_state)

    return stateful_loss


def eval_loss_fn(graphdef: nnx.GraphDef, loss: str | SingleLoss = "cross_entropy"
                 ) -> Callable[[Any, Batch, Any], jax.Array]:
    """(0.1) ``f(params, batch, model_state) -> (B,)`` losses in evaluation mode:
    :func:`per_sample_loss_fn` with ``train=False``."""
    return per_sample_loss_fn(graphdef, loss, train=False)


def predict_fn(graphdef: nnx.GraphDef) -> Callable[..., jax.Array]:
    """Build ``f(params, x, model_state=None) -> (B, out_features)``, the forward pass.

    ``graphdef`` comes from ``nnx.split(model)`` or :func:`split_model`; a model with state runs
    in evaluation mode on ``model_state``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from feasjax.models import CNN, predict_fn, split_model
      >>> graphdef, params, model_state = split_model(
      ...     CNN((8, 8, 1), 3, batch_norm=True, rngs=nnx.Rngs(0)))
      >>> predict_fn(graphdef)(params, jnp.ones((2, 64)), model_state).shape
      (2, 3)
    """
    _check_graphdef(graphdef)

    def predict(params: Any, x: jax.Array, model_state: Any = None) -> jax.Array:
        if model_state is None:
            return nnx.merge(graphdef, params)(x)
        return _eval_model(graphdef, params, model_state)(x)

    return predict
