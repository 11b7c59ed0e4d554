"""Tail metrics over per-sample arrays: quantiles, CVaR, feasible fraction, accuracies. Every
function is pure and jit-able and takes an optional boolean ``mask`` ``(N,)``: samples where it is
``False`` (padding that splits a dataset evenly over devices) never count, and the statistics of
an empty selection are ``nan``. Functions sort the whole array, so on a sample-sharded array they
give exact global values, not averages of per-device values."""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core import checks

__all__ = ["LOSS_SUMMARY_KEYS", "quantile", "cvar", "feasible_fraction", "accuracy",
           "per_class_accuracy", "worst_class_accuracy", "multiplier_stats", "loss_summary"]

LOSS_SUMMARY_KEYS = ("mean_loss", "q50_loss", "q90_loss", "q99_loss", "max_loss", "cvar90_loss",
                     "feasible_fraction")


def _prepare(values: jax.Array, mask: jax.Array | None, name: str, *,
             pad_empty: bool = False) -> tuple[jax.Array, jax.Array]:
    """Check ``values`` is ``(N,)`` and return it with a boolean mask (all True if None); with
    ``pad_empty`` an empty input becomes one masked-out entry, so its statistics are ``nan``."""
    values = jnp.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got {name}.shape={values.shape}")
    mask = jnp.ones(values.shape, bool) if mask is None else jnp.asarray(mask)
    if mask.shape != values.shape:
        raise ValueError(f"mask must have the shape of {name} {values.shape}, got {mask.shape=}")
    if mask.dtype != jnp.bool_:
        raise TypeError(f"mask must be boolean, got {mask.dtype=}")
    if pad_empty and values.shape[0] == 0:
        return jnp.zeros((1,), values.dtype), jnp.zeros((1,), bool)
    return values, mask


def _check_unit(value: object, name: str, upper_open: bool = False) -> None:
    """Check a concrete Python number lies in [0, 1] (or [0, 1)); traced values pass through."""
    if isinstance(value, numbers.Real) and not (0 <= value < 1 if upper_open else 0 <= value <= 1):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {name}={value!r}")


def _gather_for_sort(values: jax.Array) -> jax.Array:
    """Replicate a vector explicitly sharded along its samples: ``jnp.sort`` refuses one, and exact
    global quantiles need every sample anyway (issue 6). ``Auto``/unsharded inputs pass."""
    sharding = jax.typeof(values).sharding
    spec = getattr(sharding, "spec", None)
    if spec and spec[0] is not None:
        replicated = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        values = jax.sharding.reshard(values, replicated)
    return values


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(mask, values, 0)) / jnp.sum(mask)


def _masked_max(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(jnp.any(mask), jnp.max(jnp.where(mask, values, -jnp.inf)), jnp.nan)


def _worst(per_group: jax.Array) -> jax.Array:
    """The smallest non-``nan`` entry (``nan`` if none): the worst present group or class."""
    present = ~jnp.isnan(per_group)
    return jnp.where(jnp.any(present), jnp.min(jnp.where(present, per_group, jnp.inf)), jnp.nan)


def _group_mean(values: jax.Array, groups: jax.Array, num_groups: int,
                mask: jax.Array) -> jax.Array:
    """Mean of ``values`` within each group (``nan`` if empty); masked samples and groups outside
    ``[0, num_groups)`` (a zero one-hot row) never count."""
    members = jax.nn.one_hot(groups, num_groups, dtype=jnp.float32) * mask[:, None]
    counts = jnp.sum(members, axis=0)
    totals = jnp.sum(members * jnp.where(mask, values, 0.0)[:, None], axis=0)
    return jnp.where(counts > 0, totals / jnp.maximum(counts, 1.0), jnp.nan)


def quantile(losses: jax.Array, q: jax.Array | float, mask: jax.Array | None = None) -> jax.Array:
    """Quantile(s) of the unmasked entries, with ``numpy.quantile``'s linear interpolation.

    With the ``n`` unmasked values sorted and :math:`h = q (n - 1)`:
    :math:`Q(q) = v_{(\\lfloor h\\rfloor)} + (h - \\lfloor h\\rfloor)
    (v_{(\\lfloor h\\rfloor + 1)} - v_{(\\lfloor h\\rfloor)})`. ``nan`` if a selected entry is
    ``nan`` or none is selected.

    Args:
      losses: per-sample values, shape ``(N,)``.
      q: quantile level(s) in ``[0, 1]``; the result has its shape.
      mask: optional boolean ``(N,)``; ``False`` entries are ignored.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import quantile
      >>> mask = jnp.array([True, True, True, False])
      >>> float(quantile(jnp.array([1.0, 2.0, 3.0, 100.0]), 0.5, mask=mask))
      2.0
    """
    losses, mask = _prepare(losses, mask, "losses", pad_empty=True)
    _check_unit(q, "q")
    q = jnp.asarray(q, dtype=jnp.result_type(losses.dtype, jnp.float32))
    ordered = jnp.sort(_gather_for_sort(jnp.where(mask, losses, jnp.inf)))
    n = jnp.sum(mask)
    h = q * (n - 1).astype(q.dtype)
    lo = jnp.clip(jnp.floor(h).astype(jnp.int32), 0, jnp.maximum(n - 1, 0))
    hi = jnp.minimum(lo + 1, jnp.maximum(n - 1, 0))
    t = h - lo.astype(q.dtype)
    a, b = ordered[lo], ordered[hi]
    # numpy's _lerp: interpolate from the nearer end for accuracy.
    value = jnp.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
    invalid = (n == 0) | jnp.any(mask & jnp.isnan(losses))
    return jnp.where(invalid, jnp.nan, value)


def cvar(losses: jax.Array, level: jax.Array | float, mask: jax.Array | None = None) -> jax.Array:
    """Conditional value at risk: the mean of the worst ``(1 - level)`` fraction of the losses.

    The empirical superquantile (Rockafellar & Uryasev 2002): with the unmasked losses sorted in
    decreasing order and :math:`k = (1 - \\text{level})\\, n`,

    .. math:: \\mathrm{CVaR} = \\frac{1}{k}\\Big(\\sum_{j \\le \\lfloor k\\rfloor} v_{(j)}
              + (k - \\lfloor k\\rfloor)\\, v_{(\\lfloor k\\rfloor + 1)}\\Big)

    so ``level=0`` is the mean and ``k <= 1`` the maximum.

    Args:
      losses: per-sample losses, shape ``(N,)``.
      level: in ``[0, 1)``; ``0.9`` averages the worst 10%.
      mask: optional boolean ``(N,)``; ``False`` entries are ignored.

    Returns:
      A scalar (``nan`` if a selected entry is ``nan`` or none is selected).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import cvar
      >>> float(cvar(jnp.arange(10.0), 0.8))  # mean of the two largest
      8.5
    """
    losses, mask = _prepare(losses, mask, "losses", pad_empty=True)
    _check_unit(level, "level", upper_open=True)
    dtype = jnp.result_type(losses.dtype, jnp.float32)
    n = jnp.sum(mask)
    descending = -jnp.sort(_gather_for_sort(jnp.where(mask, -losses, jnp.inf)))
    rank = jnp.arange(losses.shape[0])
    descending = jnp.where(rank < n, descending, 0)  # masked entries sit at the end
    k = (1 - jnp.asarray(level, dtype)) * n.astype(dtype)
    # (1 - 0.9) * 1000 is 100.0000015 in float32: snap rounding noise so that an integer k means
    # exactly the mean of the k largest losses.
    snapped = jnp.round(k)
    k = jnp.where(jnp.abs(k - snapped) <= 8 * jnp.finfo(dtype).eps * jnp.maximum(k, 1), snapped, k)
    weights = jnp.clip(k - rank.astype(dtype), 0, 1)
    invalid = (n == 0) | jnp.any(mask & jnp.isnan(losses))  # sort would hide a nan at the end
    return jnp.where(invalid, jnp.nan, jnp.sum(weights * descending) / k)


def feasible_fraction(losses: jax.Array, epsilon: jax.Array | float,
                      mask: jax.Array | None = None) -> jax.Array:
    """Fraction of (unmasked) samples with ``loss_i <= epsilon`` (``nan`` if none is selected).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import feasible_fraction
      >>> float(feasible_fraction(jnp.array([0.05, 0.1, 0.2, 0.5]), 0.1))
      0.5
    """
    losses, mask = _prepare(losses, mask, "losses", pad_empty=True)
    return _masked_mean((losses <= epsilon).astype(jnp.float32), mask)


def _correct(logits_or_preds: jax.Array, labels: jax.Array) -> jax.Array:
    """1.0 where the prediction (argmax of logits) equals the label, else 0.0, float32."""
    labels, outputs = jnp.asarray(labels), jnp.asarray(logits_or_preds)
    if outputs.ndim == 2:
        outputs = jnp.argmax(outputs, axis=-1)
    if outputs.shape != labels.shape:
        raise ValueError("logits must be (N, C) or predicted labels (N,) matching labels, got "
                         f"{jnp.shape(logits_or_preds)=} and {jnp.shape(labels)=}")
    return (outputs == labels).astype(jnp.float32)


def accuracy(logits_or_preds: jax.Array, labels: jax.Array,
             mask: jax.Array | None = None) -> jax.Array:
    """Fraction of (unmasked) samples classified correctly (``nan`` if none is selected).

    ``logits_or_preds`` are logits ``(N, C)`` (argmax is taken) or predicted labels ``(N,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import accuracy
      >>> logits = jnp.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
      >>> round(float(accuracy(logits, jnp.array([0, 1, 1]))), 4)
      0.6667
    """
    labels, mask = _prepare(labels, mask, "labels")
    return _masked_mean(_correct(logits_or_preds, labels), mask)


def per_class_accuracy(logits_or_preds: jax.Array, labels: jax.Array, num_classes: int,
                       mask: jax.Array | None = None) -> jax.Array:
    """Accuracy within each class, shape ``(num_classes,)``; ``nan`` for classes with no sample.

    ``num_classes`` is a static Python int; other arguments as for :func:`accuracy`.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import per_class_accuracy
      >>> acc = per_class_accuracy(jnp.array([0, 1, 0, 0]), jnp.array([0, 1, 1, 1]),
      ...                          3)
      >>> [round(a, 4) for a in acc.tolist()]
      [1.0, 0.3333, nan]
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive int, got {num_classes=}")
    labels, mask = _prepare(labels, mask, "labels")
    outside = mask & ((labels < 0) | (labels >= num_classes))
    if checks.is_concrete(outside) and bool(jnp.any(outside)):
        bad = sorted(set(np.asarray(labels)[np.asarray(outside)].tolist()))
        raise ValueError(f"labels must lie in [0, {num_classes}) (num_classes={num_classes}), "
                         f"got {bad[:10]}")
    per_class = _group_mean(_correct(logits_or_preds, labels), labels, num_classes, mask)
    # Inside jit a label outside the classes cannot raise: every class reads nan, not a
    # result that silently ignores the sample.
    return jnp.where(jnp.any(outside), jnp.nan, per_class)


def worst_class_accuracy(logits: jax.Array, labels: jax.Array, num_classes: int,
                         mask: jax.Array | None = None) -> jax.Array:
    """Lowest per-class accuracy over the classes with at least one (unmasked) sample.

    .. math:: \\min_{c:\\, n_c > 0} \\frac{1}{n_c} \\sum_{i: y_i = c} [\\hat y_i = y_i]

    Arguments as for :func:`per_class_accuracy`; ``nan`` if no entry is selected.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import worst_class_accuracy
      >>> pred, labels = jnp.array([0, 1, 0, 1]), jnp.array([0, 1, 1, 1])
      >>> float(worst_class_accuracy(pred, labels, 3))
      0.6666666...
    """
    return _worst(per_class_accuracy(logits, labels, num_classes, mask))


def multiplier_stats(multipliers: jax.Array,
                     mask: jax.Array | None = None) -> dict[str, jax.Array]:
    """Mean, maximum and fraction of non-zero entries of the (unmasked) per-sample multipliers.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import multiplier_stats
      >>> stats = multiplier_stats(jnp.array([0.0, 1.0, 3.0, 0.0]))
      >>> {k: float(v) for k, v in stats.items()}
      {'mean': 1.0, 'max': 3.0, 'nonzero_fraction': 0.5}
    """
    multipliers, mask = _prepare(multipliers, mask, "multipliers", pad_empty=True)
    return {"mean": _masked_mean(multipliers, mask), "max": _masked_max(multipliers, mask),
            "nonzero_fraction": _masked_mean((multipliers != 0).astype(jnp.float32), mask)}


def loss_summary(losses: jax.Array, epsilon: jax.Array | float,
                 mask: jax.Array | None = None) -> dict[str, jax.Array]:
    """The per-sample loss statistics reported by ``feasjax demo`` (a JSON contract).

    Returns:
      A dict with exactly the keys of ``LOSS_SUMMARY_KEYS``: ``mean_loss``, ``q50_loss``,
      ``q90_loss``, ``q99_loss``, ``max_loss``, ``cvar90_loss`` (:func:`cvar` at level 0.9) and
      ``feasible_fraction`` (at ``epsilon``), over the unmasked entries.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import loss_summary
      >>> s = loss_summary(jnp.arange(11.0), epsilon=2.0)
      >>> float(s["q50_loss"]), float(s["max_loss"])
      (5.0, 10.0)
      >>> round(float(s["feasible_fraction"]), 3)
      0.273
    """
    losses, mask = _prepare(losses, mask, "losses", pad_empty=True)
    q50, q90, q99 = quantile(losses, jnp.array([0.5, 0.9, 0.99]), mask)
    return {"mean_loss": _masked_mean(losses, mask), "q50_loss": q50, "q90_loss": q90,
            "q99_loss": q99, "max_loss": _masked_max(losses, mask),
            "cvar90_loss": cvar(losses, 0.9, mask),
            "feasible_fraction": feasible_fraction(losses, epsilon, mask)}
