"""Data with groups: a spurious-correlation benchmark and a class-conditional Gaussian model.

Groups of ``spurious_digits`` are ``2 * label + attribute``; ``gaussian_classes`` is the model of
Stromberg, Thrampoulidis and Sankar (2025, arXiv 2506.20025).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.data.datasets import Dataset, _standardise, validate_arrays

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


def _frame(images: np.ndarray, on: np.ndarray, value: float) -> np.ndarray:
    """Draw a one-pixel frame of brightness ``value`` around the 8x8 images where ``on``."""
    out = images.reshape(-1, 8, 8).copy()
    border = np.zeros((8, 8), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    out[on[:, None, None] & border[None]] = value
    return out.reshape(images.shape)


def _split_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    if (len(fractions) != 3 or any(not 0 < f < 1 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-9):
        raise ValueError(f"fractions must be three numbers in (0, 1) summing to 1 (train, val, "
                         f"test), got {fractions=}")
    return fractions


def spurious_digits(seed: int = 0, *, correlation: float = 0.95, threshold: int = 5,
                    fractions: tuple[float, float, float] = (0.5, 0.2, 0.3),
                    brightness: float = 16.0) -> GroupDataset:
    """The spurious-digits benchmark: label ``digit >= threshold``, a frame as the attribute.

    The 1797 digits are split (stratified by digit, ``random_state=seed``) into train /
    validation / test ``fractions``; the attribute is drawn with ``P(a = y) = correlation`` on
    train and ``1/2`` on validation and test (a seeded numpy generator), then the frame
    (brightness 16, the digits' maximum) is drawn and the pixels are standardised with
    training statistics.

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
    train_f, val_f, test_f = _split_fractions(fractions)
    # scikit-learn takes ~0.5 s to import: only when data is loaded.
    from sklearn import datasets as sk_datasets
    from sklearn.model_selection import train_test_split

    x, digit = sk_datasets.load_digits(return_X_y=True)
    index = np.arange(len(digit))
    rest, i_test = train_test_split(index, test_size=test_f, random_state=seed, stratify=digit)
    i_train, i_val = train_test_split(rest, test_size=val_f / (train_f + val_f),
                                      random_state=seed, stratify=digit[rest])
    rng = np.random.default_rng(seed)
    splits = []
    for idx, p in ((i_train, correlation), (i_val, 0.5), (i_test, 0.5)):
        y = (digit[idx] >= threshold).astype(np.int32)
        attribute = np.where(rng.random(len(idx)) < p, y, 1 - y).astype(np.int32)
        splits.append((_frame(x[idx], attribute == 1, brightness), y, 2 * y + attribute))
    (xs, _, _) = _standardise(*(s[0] for s in splits))
    return GroupDataset(xs[0], splits[0][1], splits[0][2], xs[1], splits[1][1], splits[1][2],
                        xs[2], splits[2][1], splits[2][2], num_classes=2, num_groups=4,
                        name="spurious_digits", image_shape=(8, 8, 1))


def _given_split(arrays: dict, split: str, features: tuple) -> tuple | None:
    """The user's ``x_<split>``, ``y_<split>``, ``group_<split>``, checked; None if absent."""
    names = (f"x_{split}", f"y_{split}", f"group_{split}")
    given = [arrays[k] is not None for k in names]
    if not any(given):
        return None
    if not all(given):
        raise ValueError(f"a given {split} split needs all of {list(names)}, got only "
                         f"{[k for k, g in zip(names, given) if g]}")
    x, y = validate_arrays(arrays[names[0]], arrays[names[1]], names=names[:2])
    if x.shape[1:] != features:
        raise ValueError(f"{names[0]} must have the feature shape of x {features}, got "
                         f"{x.shape[1:]}")
    return x, y, _check_group(arrays[names[2]], y, names[2])


def _check_group(group: object, y: np.ndarray, name: str) -> np.ndarray:
    group = np.asarray(group)
    if group.shape != y.shape or group.dtype.kind not in "iu" or (group.size and group.min() < 0):
        raise ValueError(f"{name} must hold one int >= 0 per sample, shape {y.shape}, got "
                         f"shape {group.shape} and dtype {group.dtype}")
    return group.astype(np.int32)


def group_dataset(x: np.ndarray, y: np.ndarray, group: np.ndarray, *,
                  x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                  group_val: np.ndarray | None = None, x_test: np.ndarray | None = None,
                  y_test: np.ndarray | None = None, group_test: np.ndarray | None = None,
                  seed: int = 0, fractions: tuple[float, float, float] = (0.5, 0.2, 0.3),
                  name: str = "arrays") -> GroupDataset:
    """Your arrays with a ``group`` per sample as train / validation / test splits.

    A split you give (``x_val``, ``y_val``, ``group_val``; ``x_test``, ``y_test``,
    ``group_test``) is used as it is; only a missing one is cut from ``x`` (stratified by group,
    ``random_state=seed``, in the proportions of ``fractions``), and the rest of ``x`` trains.
    ``GroupDataset.given`` names the splits you gave. Inputs are standardised with training
    statistics.

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
      >>> data = group_dataset(x, y, np.arange(40) % 4, x_test=x[:8], y_test=y[:8],
      ...                      group_test=np.arange(8) % 4)
      >>> len(data.y_train), len(data.y_val), len(data.y_test), data.given
      (28, 12, 8, ('test',))
    """
    x, y = validate_arrays(x, y)
    group = _check_group(group, y, "group")
    arrays = {"x_val": x_val, "y_val": y_val, "group_val": group_val, "x_test": x_test,
              "y_test": y_test, "group_test": group_test}
    given = {s: _given_split(arrays, s, x.shape[1:]) for s in ("val", "test")}
    train_f, val_f, test_f = _split_fractions(fractions)
    from sklearn.model_selection import train_test_split

    index, cut = np.arange(len(y)), {}
    if given["test"] is None:  # as a fraction of what is left to split
        rest = train_f + test_f + (val_f if given["val"] is None else 0.0)
        index, cut["test"] = train_test_split(index, test_size=test_f / rest,
                                              random_state=seed, stratify=group[index])
    if given["val"] is None:
        index, cut["val"] = train_test_split(index, test_size=val_f / (train_f + val_f),
                                             random_state=seed, stratify=group[index])
    splits = [(x[index], y[index], group[index])]
    splits += [given[s] or (x[cut[s]], y[cut[s]], group[cut[s]]) for s in ("val", "test")]
    (xt, xv, xe), _, _ = _standardise(*(s[0] for s in splits))
    (_, yt, gt), (_, yv, gv), (_, ye, ge) = splits
    return GroupDataset(xt, yt, gt, xv, yv, gv, xe, ye, ge,
                        num_classes=int(max(s[1].max() for s in splits)) + 1,
                        num_groups=int(max(s[2].max(initial=0) for s in splits)) + 1, name=name,
                        given=tuple(s for s in ("val", "test") if given[s] is not None))


def gaussian_classes(key: jax.Array, n: int, d: int, *, pi_plus: float, snr: float = 1.0
                     ) -> tuple[jax.Array, jax.Array]:
    """Sample the class-conditional Gaussian model ``x = y μ + z`` (pure, vmappable over keys).

    ``y = +1`` with probability ``π_+`` (else ``-1``), ``μ = snr · e_1`` and ``z ~ N(0, I_d)``.

    Args:
      key: a ``jax.random`` key.
      n: number of samples (static).
      d: dimension (static).
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
