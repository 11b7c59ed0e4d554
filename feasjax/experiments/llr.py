"""Last-layer retraining (LLR) with loss weights, selected on validation worst-group accuracy.

Kirichenko, Izmailov and Wilson (2023, *Last Layer Re-Training is Sufficient for Robustness to
Spurious Correlations*, DFR) freeze the features of an ERM model and retrain its linear head on
held-out data; Stromberg, Thrampoulidis and Sankar (2025, arXiv 2506.20025) study the loss
weights of that retraining. Here the head is fitted full-batch with the cross-entropy weighted
by :func:`feasjax.core.group_weights`, for every temper ``γ`` at once (``vmap``).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from feasjax.core.reweighting import group_counts, group_weights
from feasjax.core.weighting import weighted_sum
from feasjax.metrics.groups import worst_group_accuracy
from feasjax.models.losses import cross_entropy

__all__ = ["retrain_last_layer", "cross_validated_head"]


class LinearHead(NamedTuple):
    """A linear classifier: ``head(features) = features @ kernel + bias``."""

    kernel: jax.Array  # shape=(F, C)
    bias: jax.Array  # shape=(C,)

    def __call__(self, features: jax.Array) -> jax.Array:
        """The logits ``(n, C)`` of ``features`` ``(n, F)``."""
        return features @ self.kernel + self.bias[None, :]


def fit_head(features: jax.Array, labels: jax.Array, weights: jax.Array, num_classes: int, *,
             steps: int = 300, learning_rate: float = 0.05, l2: float = 1e-3) -> LinearHead:
    """Fit a linear head full-batch with per-sample ``weights`` (Adam, ``steps`` in a scan).

    .. math:: \\min_{W, b}\\ \\tfrac1n \\textstyle\\sum_i w_i\\, \\ell(W^\\top f_i + b, y_i)
       + \\tfrac{l_2}{2} \\|W\\|^2
    """
    tx = optax.adam(learning_rate)
    head = LinearHead(jnp.zeros((features.shape[1], num_classes)), jnp.zeros((num_classes,)))

    def objective(h):
        losses = jax.vmap(cross_entropy)(h(features), labels)
        return weighted_sum(losses, weights) + 0.5 * l2 * jnp.sum(h.kernel ** 2)

    def step(carry, _):
        h, s = carry
        updates, s = tx.update(jax.grad(objective)(h), s, h)
        return (optax.apply_updates(h, updates), s), None

    (head, _), _ = jax.lax.scan(step, (head, tx.init(head)), None, length=steps)
    return head


def retrain_last_layer(features: tuple[jax.Array, jax.Array], labels: tuple[jax.Array, jax.Array],
                       groups: tuple[jax.Array, jax.Array], num_classes: int, num_groups: int, *,
                       gammas: jax.typing.ArrayLike = (0.0, 0.5, 1.0, 1.5, 2.0),
                       steps: int = 300, learning_rate: float = 0.05, l2: float = 1e-3
                       ) -> tuple[LinearHead, jax.Array, jax.Array]:
    """Retrain the head on ``(fit, select)`` splits for every ``γ``; keep the best on ``select``.

    The earlier method; :func:`cross_validated_head` uses all of one split.

    Args:
      features: frozen features of the two halves, ``(n_fit, F)`` and ``(n_select, F)``.
      labels, groups: their labels and groups.
      num_classes, num_groups: static sizes.
      gammas: the tempers of :func:`feasjax.core.group_weights` to try (``(K,)``).
      steps, learning_rate, l2: of :func:`fit_head`.

    Returns:
      ``(head, gamma, worst)``: the selected head, its ``γ`` and the worst-group accuracy of
      every ``γ`` on the selection half (``(K,)``). Pure: vmap it over seeds.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.experiments import retrain_last_layer
      >>> f = jnp.array([[1.0], [-1.0], [1.0], [-1.0]])
      >>> y, g = jnp.array([1, 0, 1, 0]), jnp.array([1, 0, 1, 0])
      >>> head, gamma, worst = retrain_last_layer((f, f), (y, y), (g, g), 2, 2,
      ...                                         steps=50)
      >>> worst.tolist()
      [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    (f_fit, f_sel), (y_fit, y_sel), (g_fit, g_sel) = features, labels, groups
    fit = functools.partial(_group_weighted_head, f_fit, y_fit, g_fit, num_classes, num_groups,
                            steps=steps, learning_rate=learning_rate, l2=l2)

    def one(gamma):
        head = fit(gamma)
        return head, worst_group_accuracy(head(f_sel), y_sel, g_sel, num_groups)

    heads, worst = jax.vmap(one)(jnp.asarray(gammas, jnp.float32))
    best = jnp.argmax(jnp.nan_to_num(worst, nan=-1.0))
    return jax.tree.map(lambda h: h[best], heads), jnp.asarray(gammas, jnp.float32)[best], worst


def _group_weighted_head(features, labels, groups, num_classes, num_groups, gamma, mask=None,
                         **options):
    """:func:`fit_head` on the samples of ``mask`` (all: ``None``), weighted by
    :func:`feasjax.core.group_weights` of their group counts with temper ``gamma``."""
    weights = group_weights(group_counts(groups, num_groups, mask=mask), gamma=gamma)[groups]
    return fit_head(features, labels, weights if mask is None else weights * mask, num_classes,
                    **options)


def _folds(groups: jax.Array, num_groups: int, folds: int) -> jax.Array:
    """Fold of each sample: its rank among the samples of its group, modulo ``folds``, so that
    every group is spread over the folds as evenly as it can be."""
    onehot = jax.nn.one_hot(groups, num_groups, dtype=jnp.int32)
    rank = jnp.sum((jnp.cumsum(onehot, axis=0) - onehot) * onehot, axis=1)
    return rank % folds


def cross_validated_head(features: jax.Array, labels: jax.Array, groups: jax.Array,
                         num_classes: int, num_groups: int, *,
                         gammas: jax.typing.ArrayLike = (0.0, 0.5, 1.0, 1.5, 2.0),
                         folds: int = 5, steps: int = 300, learning_rate: float = 0.05,
                         l2: float = 1e-3) -> tuple[LinearHead, jax.Array, jax.Array]:
    """Choose ``γ`` by ``folds``-fold cross-validation on one split, then refit on all of it.

    For every ``γ`` and fold (folds stratified by group), a head is fitted on the other folds
    (group weights from their counts) and predicts the fold; the pooled held-out predictions
    give each ``γ`` one worst-group accuracy, so that a handful of minority samples all count
    (ties go to the better average accuracy, then the smaller ``γ``).

    Args:
      features: frozen features ``(n, F)`` of the split (the validation split).
      labels, groups: its ``(n,)`` labels and groups.
      num_classes, num_groups: static sizes.
      gammas: the tempers of :func:`feasjax.core.group_weights` to try (``(K,)``).
      folds: folds, ``>= 2``, stratified by group.
      steps, learning_rate, l2: of :func:`fit_head`.

    Returns:
      ``(head, gamma, worst)``: the head refitted on the whole split with the chosen ``γ``,
      that ``γ``, and the cross-validated worst-group accuracy of every ``γ`` (``(K,)``).
      Pure: vmap it over seeds.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.experiments import cross_validated_head
      >>> f = jnp.array([[1.0], [-1.0]] * 6)
      >>> y = g = jnp.array([1, 0] * 6)
      >>> head, gamma, worst = cross_validated_head(f, y, g, 2, 2, folds=3, steps=50)
      >>> worst.tolist(), float(gamma)
      ([1.0, 1.0, 1.0, 1.0, 1.0], 0.0)
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds=}")
    gammas = jnp.asarray(gammas, jnp.float32)
    fold = _folds(groups, num_groups, folds)
    fit = functools.partial(_group_weighted_head, features, labels, groups, num_classes,
                            num_groups, steps=steps, learning_rate=learning_rate, l2=l2)

    def score(gamma):  # each fold predicted by the head fitted on the other folds: (folds, n)
        predictions = jax.vmap(lambda k: jnp.argmax(fit(gamma, fold != k)(features), axis=-1))(
            jnp.arange(folds))
        pooled = jnp.take_along_axis(predictions, fold[None, :], axis=0)[0]
        worst = worst_group_accuracy(pooled, labels, groups, num_groups)
        return worst, jnp.mean(pooled == labels)

    worst, average = jax.vmap(score)(gammas)
    # Lexicographic: worst-group first, then average accuracy, then the first (smallest) γ.
    best = jnp.lexsort((-average, -jnp.nan_to_num(worst, nan=-1.0)))[0]
    return fit(gammas[best]), gammas[best], worst
