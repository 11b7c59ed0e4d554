"""A tabular group-robustness benchmark: a weak core feature and a strong spurious one (groups
``2 * label + attribute``, as in ``spurious_digits``)."""
from __future__ import annotations

import numbers
import statistics

import numpy as np

from feasjax.data.datasets import _check_int
from feasjax.data.spurious import GroupDataset, _group_splits

__all__ = ["spurious_tabular"]


def _group_sizes(n: int, p_agree: float) -> np.ndarray:
    """Rows per group ``2 * y + a`` for balanced labels and ``P(a = y) = p_agree``, summing to n."""
    minority = int(round(n / 2 * (1 - p_agree)))  # per label
    sizes = np.array([n // 2 - minority, minority, minority, n - n // 2 - minority])
    if sizes.min() < 1:
        raise ValueError(f"{n} rows with P(attribute = label) = {p_agree} leave a group empty")
    return sizes


def _rows(rng: np.random.Generator, sizes: np.ndarray, core_shift: float,
          spurious_shift: float, noise_features: int) -> tuple:
    """Shuffled rows ``[core, spurious, noise...]`` of the groups' sizes, with labels and groups."""
    group = rng.permutation(np.repeat(np.arange(4, dtype=np.int32), sizes))
    y, a = group // 2, group % 2
    core = (2 * y - 1) * core_shift + rng.standard_normal(len(y))
    spurious = (2 * a - 1) * spurious_shift + rng.standard_normal(len(y))
    noise = rng.standard_normal((len(y), noise_features))
    x = np.column_stack([core, spurious, noise]).astype(np.float32)
    return x, y, group


def spurious_tabular(seed: int = 0, *, train_size: int = 400, val_size: int = 200,
                     test_size: int = 400, correlation: float = 0.95, core_accuracy: float = 0.85,
                     spurious_shift: float = 3.0, noise_features: int = 8) -> GroupDataset:
    """Tabular rows ``[core, spurious, noise...]``: the spurious feature is easier to read.

    Labels are balanced. Feature 0 is ``(2y - 1) c + N(0, 1)`` with ``c = Φ^{-1}(core_accuracy)``:
    the best rule on it alone is right with probability ``core_accuracy``, on every split.
    Feature 1 is ``(2a - 1) s + N(0, 1)`` with the attribute ``a``, and the group sizes are
    exact: ``P(a = y) = correlation`` on train, ``1/2`` on validation and test. The
    ``noise_features`` further columns are ``N(0, 1)`` (room to memorise the minority rows).
    Inputs are standardised with training statistics.

    Args:
      seed: seed of the numpy generator that draws every row.
      train_size, val_size, test_size: rows per split, each >= 4.
      correlation: ``P(attribute = label)`` on the training split, in ``[0.5, 1)``.
      core_accuracy: accuracy of the best rule on the core feature alone, in ``(0.5, 1)``.
      spurious_shift: ``s``, the margin of the spurious feature (the attribute is read with
        accuracy ``Φ(s)``).
      noise_features: number of pure-noise columns, ``>= 0``.

    Returns:
      A :class:`GroupDataset` with ``2 + noise_features`` features, 2 classes and groups
      ``2 * label + attribute``.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import spurious_tabular
      >>> data = spurious_tabular(seed=0)
      >>> data.group_counts()["train"]  # 400 rows at correlation 0.95
      [190, 10, 10, 190]
      >>> # the core feature predicts the label everywhere, the spurious one on train
      >>> agree = lambda x, y, col: float(np.mean((x[:, col] > 0) == (y == 1)))
      >>> [round(agree(data.x_train, data.y_train, col), 2) for col in (0, 1)]
      [0.87, 0.95]
      >>> [round(agree(data.x_test, data.y_test, col), 2) for col in (0, 1)]
      [0.85, 0.5]
    """
    if not 0.5 <= correlation < 1:
        raise ValueError(f"correlation must be in [0.5, 1), got {correlation=}")
    if not 0.5 < core_accuracy < 1:
        raise ValueError(f"core_accuracy must be in (0.5, 1), got {core_accuracy=}")
    if not (isinstance(spurious_shift, numbers.Real) and 0 < spurious_shift < float("inf")):
        raise ValueError(f"spurious_shift must be a finite number > 0, got {spurious_shift=}")
    for name, value, low in (("train_size", train_size, 4), ("val_size", val_size, 4),
                             ("test_size", test_size, 4), ("noise_features", noise_features, 0)):
        _check_int(value, name, low)
    core_shift = statistics.NormalDist().inv_cdf(core_accuracy)
    rng = np.random.default_rng(seed)
    splits = [_rows(rng, _group_sizes(n, p), core_shift, float(spurious_shift), noise_features)
              for n, p in ((train_size, correlation), (val_size, 0.5), (test_size, 0.5))]
    return _group_splits(splits, num_classes=2, num_groups=4, name="spurious_tabular")
