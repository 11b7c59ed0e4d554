"""Data with groups: the spurious-digits benchmark, your arrays with groups, and the
class-conditional Gaussian model of Stromberg, Thrampoulidis and Sankar (2025, arXiv 2506.20025).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.datasets import (Dataset, _check_ids, _given_rows, _standardise,
                                   validate_arrays)

__all__ = ["GroupDataset", "spurious_digits", "group_dataset", "gaussian_classes"]


@dataclasses.dataclass(frozen=True, eq=False)
class GroupDataset:
    """Train / validation / test splits with a group label per sample (host numpy arrays).

    Example:
      >>> from feasjax.data import spurious_digits
      >>> data = spurious_digits(seed=0)
      >>> data.num_groups, data.as_dataset().num_classes
      (4, 2)
    """

    x_train: np.ndarray  # shape=(N_train, F), float32, standardised with train statistics
    y_train: np.ndarray  # shape=(N_train,), int32
    g_train: np.ndarray  # shape=(N_train,), int32 group labels in [0, num_groups)
    x_val: np.ndarray
    y_val: np.ndarray
    g_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    g_test: np.ndarray
    num_classes: int
    num_groups: int
    name: str
    image_shape: tuple[int, int, int] | None = None
    given: tuple[str, ...] = ()  # the splits ("val", "test") taken as the user gave them

    def group_counts(self) -> dict[str, list[int]]:
        """Samples per group in each split, ``{"train": [...], "val": [...], "test": [...]}``."""
        return {s: np.bincount(getattr(self, f"g_{s}"), minlength=self.num_groups).tolist()
                for s in ("train", "val", "test")}

    def as_dataset(self) -> Dataset:
        """The train/test part as a :class:`feasjax.data.Dataset` (for the model builders)."""
        return Dataset(self.x_train, self.y_train, self.x_test, self.y_test, "classification",
                       self.num_classes, self.name, self.image_shape)


def _group_splits(splits: list, **fields) -> GroupDataset:
    """A :class:`GroupDataset` of ``(x, y, group)`` train, val and test splits, the inputs
    standardised with training statistics."""
    xs, _, _ = _standardise(*(x for x, _, _ in splits))
    return GroupDataset(*(a for x, (_, y, g) in zip(xs, splits) for a in (x, y, g)), **fields)


def _frame(images: np.ndarray, on: np.ndarray, value: float) -> np.ndarray:
    """Draw a one-pixel frame of brightness ``value`` around the 8x8 images where ``on``."""
    out = images.reshape(-1, 8, 8).copy()
    border = np.ones((8, 8), bool)
    border[1:-1, 1:-1] = False
    out[on[:, None, None] & border[None]] = value
    return out.reshape(images.shape)


def _cut(strata: np.ndarray, seed: int, fractions: tuple, *, test: bool = True,
         val: bool = True) -> tuple[np.ndarray, dict]:
    """The rows left to train and those cut off as ``"test"`` and ``"val"`` (as asked), in the
    proportions of ``fractions`` and stratified by ``strata``."""
    if (len(fractions) != 3 or any(not 0 < f < 1 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-9):
        raise ValueError(f"fractions must be three numbers in (0, 1) summing to 1 (train, val, "
                         f"test), got {fractions=}")
    train_f, val_f, test_f = fractions
    # scikit-learn takes ~0.5 s to import: only when data is split.
    from sklearn.model_selection import train_test_split

    index, cut = np.arange(len(strata)), {}
    if test:  # as a fraction of what is left to split
        rest = train_f + test_f + (val_f if val else 0.0)
        index, cut["test"] = train_test_split(index, test_size=test_f / rest,
                                              random_state=seed, stratify=strata[index])
    if val:
        index, cut["val"] = train_test_split(index, test_size=val_f / (train_f + val_f),
                                             random_state=seed, stratify=strata[index])
    return index, cut


def spurious_digits(seed: int = 0, *, correlation: float = 0.95, threshold: int = 5,
                    fractions: tuple[float, float, float] = (0.5, 0.2, 0.3),
                    brightness: float = 16.0) -> GroupDataset:
    """The spurious-digits benchmark: label ``digit >= threshold``, a frame as the attribute.

    The 1797 digits are split (stratified by digit) into train / validation / test; the
    attribute is drawn with ``P(a = y) = correlation`` on train and ``1/2`` on validation and
    test, then the frame is drawn and the pixels are standardised with training statistics.

    Args:
      seed: seed of the split and of the attributes.
      correlation: ``P(attribute = label)`` on the training split, in ``[0.5, 1)``.
      threshold: the label is ``digit >= threshold``, in ``[1, 9]``.
      fractions: train, validation, test fractions.
      brightness: pixel value of the frame (digits range over 0..16).

    Returns:
      A :class:`GroupDataset` with groups ``2 * label + attribute`` (4 groups).

    Example:
      >>> import numpy as np
      >>> from feasjax.data import spurious_digits
      >>> data = spurious_digits(seed=0)
      >>> agree = lambda g: float(np.mean(g % 2 == g // 2))  # attribute == label
      >>> round(agree(data.g_train), 2), abs(agree(data.g_test) - 0.5) < 0.1
      (0.95, True)
    """
    if not 0.5 <= correlation < 1:
        raise ValueError(f"correlation must be in [0.5, 1), got {correlation=}")
    if not (isinstance(threshold, int) and 1 <= threshold <= 9):
        raise ValueError(f"threshold must be an int in [1, 9], got {threshold=}")
    from sklearn import datasets as sk_datasets

    x, digit = sk_datasets.load_digits(return_X_y=True)
    i_train, cut = _cut(digit, seed, fractions)
    rng = np.random.default_rng(seed)
    splits = []
    for idx, p in ((i_train, correlation), (cut["val"], 0.5), (cut["test"], 0.5)):
        y = (digit[idx] >= threshold).astype(np.int32)
        attribute = np.where(rng.random(len(idx)) < p, y, 1 - y).astype(np.int32)
        splits.append((_frame(x[idx], attribute == 1, brightness), y, 2 * y + attribute))
    return _group_splits(splits, num_classes=2, num_groups=4, name="spurious_digits",
                         image_shape=(8, 8, 1))


def group_dataset(x: np.ndarray, y: np.ndarray, group: np.ndarray, *,
                  x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                  group_val: np.ndarray | None = None, x_test: np.ndarray | None = None,
                  y_test: np.ndarray | None = None, group_test: np.ndarray | None = None,
                  seed: int = 0, fractions: tuple[float, float, float] = (0.5, 0.2, 0.3),
                  name: str = "arrays") -> GroupDataset:
    """Your arrays with a ``group`` per sample as train / validation / test splits.

    A split you give is used as it is (``GroupDataset.given`` names it); a missing one is cut
    from ``x`` (stratified by group), and the rest of ``x`` trains. Inputs are standardised with
    training statistics.

    Args:
      x, y, group: inputs ``(N, ...)``, integer labels and integer groups ``(N,)``.
      x_val, y_val, group_val: an optional validation split (all three, or none).
      x_test, y_test, group_test: an optional test split (all three, or none).
      seed: seed of the split of what is missing.
      fractions: train, validation, test fractions of ``x`` when both splits are missing
        (with one given, the other takes its share of ``train + it``).
      name: the dataset's name.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import group_dataset
      >>> x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
      >>> data = group_dataset(x, y, group=np.arange(40) % 4)
      >>> len(data.y_train), len(data.y_val), len(data.y_test), data.num_groups
      (19, 9, 12, 4)
    """
    x, y = validate_arrays(x, y)
    group = _check_ids(group, y, "group")
    given = {s: _given_rows(dict(zip((f"x_{s}", f"y_{s}", f"group_{s}"), rows)), x.shape[1:],
                            f"a given {s} split needs")
             for s, rows in (("val", (x_val, y_val, group_val)),
                             ("test", (x_test, y_test, group_test)))}
    index, cut = _cut(group, seed, fractions, test=given["test"] is None,
                      val=given["val"] is None)
    splits = [(x[index], y[index], group[index])]
    splits += [given[s] or (x[cut[s]], y[cut[s]], group[cut[s]]) for s in ("val", "test")]
    return _group_splits(splits, num_classes=int(max(s[1].max() for s in splits)) + 1,
                         num_groups=int(max(s[2].max(initial=0) for s in splits)) + 1, name=name,
                         given=tuple(s for s in ("val", "test") if given[s] is not None))


def gaussian_classes(key: jax.Array, n: int, d: int, *, pi_plus: float, snr: float = 1.0
                     ) -> tuple[jax.Array, jax.Array]:
    """Sample the class-conditional Gaussian model ``x = y μ + z`` (pure, vmappable over keys).

    ``y = +1`` with probability ``π_+`` (else ``-1``), ``μ = snr · e_1`` and ``z ~ N(0, I_d)``.

    Args:
      key: a ``jax.random`` key.
      n, d: number of samples and dimension (static).
      pi_plus: ``P(y = +1)``, in ``(0, 1)``.
      snr: ``||μ||``.

    Returns:
      ``(x, y)``: ``(n, d)`` float32 and ``(n,)`` float32 labels in ``{-1, +1}``.

    Example:
      >>> import jax
      >>> from feasjax.data import gaussian_classes
      >>> x, y = gaussian_classes(jax.random.key(0), 1000, 5, pi_plus=0.2)
      >>> x.shape, round(float((y > 0).mean()), 1)
      ((1000, 5), 0.2)
    """
    if not 0 < pi_plus < 1:
        raise ValueError(f"pi_plus must be in (0, 1), got {pi_plus=}")
    k_y, k_z = jax.random.split(key)
    y = jnp.where(jax.random.uniform(k_y, (n,)) < pi_plus, 1.0, -1.0)
    mu = jnp.zeros((d,)).at[0].set(snr)
    return y[:, None] * mu[None, :] + jax.random.normal(k_z, (n, d)), y
