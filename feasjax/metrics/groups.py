"""Group metrics for subpopulation shift (Sagawa et al. 2020): pure, jit-able, with an optional
boolean ``mask``. An empty group has ``nan`` accuracy and loss and is left out of the worst-group
and balanced accuracies."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from feasjax.metrics.summary import _correct, _group_mean, _masked_mean, _prepare, _worst

__all__ = ["GROUP_SUMMARY_KEYS", "group_mean", "group_accuracy", "group_loss",
           "worst_group_accuracy", "group_summary"]

GROUP_SUMMARY_KEYS = ("average_accuracy", "worst_group_accuracy", "balanced_accuracy",
                      "group_accuracy", "group_loss")


def group_mean(values: jax.Array, groups: jax.Array, num_groups: int,
               mask: jax.Array | None = None) -> jax.Array:
    """Mean of ``values`` within each group, ``(num_groups,)``; ``nan`` for an empty group.
    Groups outside ``[0, num_groups)`` are ignored (like masked samples).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import group_mean
      >>> group_mean(jnp.array([1.0, 3.0, 5.0]), jnp.array([0, 0, 2]), 3).tolist()
      [2.0, nan, 5.0]
    """
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups=}")
    groups, mask = _prepare(groups, mask, "groups")
    if not jnp.issubdtype(groups.dtype, jnp.integer):
        raise TypeError(f"groups must be an int array, got dtype {groups.dtype}")
    values = jnp.asarray(values, jnp.float32)
    if values.shape != groups.shape:
        raise ValueError(f"values must have the shape of groups {groups.shape}, got "
                         f"{values.shape}")
    return _group_mean(values, groups, num_groups, mask)


def group_accuracy(logits_or_preds: jax.Array, labels: jax.Array, groups: jax.Array,
                   num_groups: int, mask: jax.Array | None = None) -> jax.Array:
    """Accuracy within each group, ``(num_groups,)``; ``nan`` for an empty group.

    Args:
      logits_or_preds: logits ``(N, C)`` or predicted labels ``(N,)``.
      labels: integer labels ``(N,)``.
      groups: integer groups ``(N,)`` in ``[0, num_groups)``.
      num_groups: number of groups (a static Python int).
      mask: optional boolean ``(N,)``; ``False`` entries are ignored.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import group_accuracy
      >>> acc = group_accuracy(jnp.array([0, 1, 1, 1]), jnp.array([0, 1, 0, 0]),
      ...                      jnp.array([0, 1, 1, 1]), 2)
      >>> [round(a, 4) for a in acc.tolist()]
      [1.0, 0.3333]
    """
    return group_mean(_correct(logits_or_preds, labels), groups, num_groups, mask)


def group_loss(losses: jax.Array, groups: jax.Array, num_groups: int,
               mask: jax.Array | None = None) -> jax.Array:
    """Mean loss within each group, ``(num_groups,)``; ``nan`` for an empty group.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import group_loss
      >>> group_loss(jnp.array([0.5, 1.5, 2.0]), jnp.array([1, 1, 0]), 2).tolist()
      [2.0, 1.0]
    """
    return group_mean(losses, groups, num_groups, mask)


def worst_group_accuracy(logits_or_preds: jax.Array, labels: jax.Array, groups: jax.Array,
                         num_groups: int, mask: jax.Array | None = None) -> jax.Array:
    """Lowest accuracy over the groups that have at least one (unmasked) sample.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.metrics import worst_group_accuracy
      >>> pred, labels = jnp.array([0, 1, 1, 1]), jnp.array([0, 1, 0, 0])
      >>> groups = jnp.array([0, 1, 1, 1])
      >>> round(float(worst_group_accuracy(pred, labels, groups, 3)), 4)
      0.3333
    """
    return _worst(group_accuracy(logits_or_preds, labels, groups, num_groups, mask))


def group_summary(logits_or_preds: jax.Array, labels: jax.Array, groups: jax.Array,
                  num_groups: int, losses: jax.Array | None = None,
                  mask: jax.Array | None = None) -> dict:
    """Average, worst-group and group-balanced accuracy, per-group accuracy and loss.

    ``balanced_accuracy`` is the mean of the accuracies of the groups present (each counts
    once); ``group_loss`` is ``nan`` without ``losses``.

    Returns:
      A dict with the keys of ``GROUP_SUMMARY_KEYS``: scalars, and ``(num_groups,)`` arrays
      for ``group_accuracy`` and ``group_loss``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.metrics import group_summary
      >>> pred, labels = jnp.array([0, 1, 1, 1]), jnp.array([0, 1, 0, 0])
      >>> groups = jnp.array([0, 1, 1, 1])
      >>> out = jax.jit(group_summary, static_argnums=3)(pred, labels, groups, 2)
      >>> [round(float(out[k]), 4) for k in ("average_accuracy", "balanced_accuracy")]
      [0.5, 0.6667]
    """
    correct = _correct(logits_or_preds, labels)
    per_group = group_mean(correct, groups, num_groups, mask)
    _, full_mask = _prepare(labels, mask, "labels")
    losses = jnp.full(jnp.shape(labels), jnp.nan, jnp.float32) if losses is None else losses
    return {"average_accuracy": _masked_mean(correct, full_mask),
            "worst_group_accuracy": _worst(per_group),
            "balanced_accuracy": _masked_mean(per_group, ~jnp.isnan(per_group)),
            "group_accuracy": per_group,
            "group_loss": group_mean(losses, groups, num_groups, mask)}
