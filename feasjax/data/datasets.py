"""scikit-learn's bundled datasets (no network) and checks of user arrays, in host numpy: a
:class:`Dataset` is split, standardised with training statistics and cast once, before the
training loop puts it on the device."""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

__all__ = ["TASKS", "DATASETS", "Dataset", "validate_arrays", "from_arrays", "load_dataset"]

TASKS = ("classification", "regression")
# name -> (task, image shape of one sample or None); the loader is sklearn.datasets.load_<name>
# (scikit-learn takes ~0.5 s to import: it is imported when a dataset is loaded, not before).
_BUNDLED = {"digits": ("classification", (8, 8, 1)), "breast_cancer": ("classification", None),
            "diabetes": ("regression", None)}
DATASETS = tuple(_BUNDLED)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split ready for training, made by :func:`load_dataset` or :func:`from_arrays`.

    Example:
      >>> from feasjax.data import load_dataset
      >>> data = load_dataset("digits")
      >>> data.task, data.num_classes, data.x_train.dtype
      ('classification', 10, dtype('float32'))
    """

    x_train: np.ndarray  # shape=(N_train, ...), float32, standardised with train statistics
    y_train: np.ndarray  # shape=(N_train,), int32 labels | (N_train, ...) float32 targets
    x_test: np.ndarray  # shape=(N_test, ...), float32, standardised with train statistics
    y_test: np.ndarray  # like y_train
    task: str  # "classification" | "regression"
    num_classes: int  # 0 for regression
    name: str
    image_shape: tuple[int, int, int] | None = None  # (H, W, C) of one sample, if it is an image
    # Regression targets were standardised, y = (raw - target_mean) / target_std (averaged over
    # output dimensions for vector targets); 0 and 1 for classification.
    target_mean: float = 0.0
    target_std: float = 1.0


def _check_int(value: object, name: str, low: int) -> int:
    """``value`` as an int (not a bool) >= ``low``, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
    return int(value)


def _check_fraction(test_fraction: object) -> float:
    if not (isinstance(test_fraction, numbers.Real) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction=}")
    return float(test_fraction)


def _check_ids(ids: object, y: np.ndarray, name: str) -> np.ndarray:
    """One integer id >= 0 per sample of ``y`` (a group or a client), as ``int32``."""
    ids = np.asarray(ids)
    if ids.shape != y.shape or ids.dtype.kind not in "iu" or (ids.size and ids.min() < 0):
        raise ValueError(f"{name} must hold one integer id >= 0 per sample ({len(y)}), got "
                         f"shape {ids.shape} and dtype {ids.dtype}")
    return ids.astype(np.int32)


def _given_rows(arrays: dict, features: tuple, need: str, num_classes: int | None = None):
    """Optional extra rows ``{x name: x, y name: y, ids name: ids}``: None if none is given, else
    the three checked (all or none: "``{need}`` all of ...") with ``x``'s ``features`` shape."""
    given = [k for k, v in arrays.items() if v is not None]
    if given and len(given) < len(arrays):
        raise ValueError(f"{need} all of {list(arrays)}, got only {given}")
    if not given:
        return None
    (x_name, x), (y_name, y), (ids_name, ids) = arrays.items()
    x, y = validate_arrays(x, y, num_classes=num_classes, names=(x_name, y_name))
    if x.shape[1:] != features:
        raise ValueError(f"{x_name} must have the feature shape of x {features}, got "
                         f"{x.shape[1:]}")
    return x, y, _check_ids(ids, y, ids_name)


def _check_y(y: object, n: int, task: str, num_classes: int | None, x_name: str, name: str):
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{name} must have one entry per sample of {x_name} ({n}), got "
                         f"{name}.shape={y.shape}")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {y.dtype}")
    if task == "regression":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} must be finite, got {(~np.isfinite(y)).sum()} nan/inf")
        return y.astype(np.float32)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a vector of class labels, got {name}.shape={y.shape}")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise ValueError(f"{name} must hold integer class labels, got non-integer {y.dtype} values")
    if y.min() < 0:
        raise ValueError(f"{name} labels must be >= 0, got minimum {y.min()}")
    if num_classes is not None and y.max() >= num_classes:
        raise ValueError(f"{name} labels must be in [0, {num_classes}) for {num_classes=}, got "
                         f"max {y.max()}")
    return y.astype(np.int32)


def validate_arrays(x: object, y: object, *, task: str = "classification",
                    num_classes: int | None = None, names: tuple[str, str] = ("x", "y")
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Check user arrays and cast them: ``float32`` inputs, ``int32`` labels or ``float32`` targets.

    Args:
      x: inputs, shape ``(N, ...)``, real and finite.
      y: labels ``(N,)`` (integers, or floats with integer values, in ``[0, num_classes)``) for
        ``task="classification"``; finite targets ``(N, ...)`` for ``task="regression"``.
      task: ``"classification"`` or ``"regression"``.
      num_classes: if given, labels must be below it.
      names: names of the two arrays in the ``ValueError`` of bad input.

    Returns:
      ``(x, y)``, cast.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import validate_arrays
      >>> x, y = validate_arrays(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]))
      >>> x.dtype, y.dtype
      (dtype('float32'), dtype('int32'))
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task=}")
    if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1
                                    or not isinstance(num_classes, numbers.Integral)):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes=}")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{names[0]} must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{names[0]} must have shape (N, features...) with N >= 1, got "
                         f"{x.shape=}")
    bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{names[0]} must be finite, got nan or inf in {bad.sum()} samples "
                         f"(first at index {np.flatnonzero(bad)[0]})")
    return x.astype(np.float32), _check_y(y, x.shape[0], task, num_classes, *names)


def _standardise(train: np.ndarray, *others: np.ndarray):
    """(v - mean) / std per feature with training statistics; constant features keep std 1."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std = np.where(std > 1e-12, std, 1.0)
    scaled = [((v - mean) / std).astype(np.float32) for v in (train, *others)]
    return scaled, mean, std


def _split_rows(y: np.ndarray, task: str, seed: int, test_fraction: object):
    """The train and test rows of :func:`from_arrays`' split of ``y`` (validated labels)."""
    test_fraction = _check_fraction(test_fraction)
    stratify = None
    if task == "classification":
        counts = np.bincount(y)
        if (sparse := np.flatnonzero(counts == 1)).size:
            raise ValueError(f"y: class {sparse[0]} has a single sample; a stratified split "
                             f"needs >= 2")
        stratify = y
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                            stratify=stratify)


def from_arrays(x: object, y: object, x_test: object | None = None, y_test: object | None = None,
                *, task: str = "classification", num_classes: int | None = None, seed: int = 0,
                test_fraction: float = 0.3, standardize: bool = True, name: str = "arrays",
                image_shape: tuple[int, int, int] | None = None) -> Dataset:
    """Validate arrays and build a :class:`Dataset`, splitting off a test set if none is given.

    The split is stratified for classification (``random_state=seed``); inputs (and regression
    targets) are standardised per feature with training statistics.

    Args:
      x, y: training (or all) inputs and labels/targets, see :func:`validate_arrays`.
      x_test, y_test: an explicit test set (both or neither) instead of a split.
      task: ``"classification"`` or ``"regression"``.
      num_classes: number of classes; default ``max label + 1`` (classification).
      seed, test_fraction: seed of the split and fraction held out, in ``(0, 1)``.
      standardize: standardise with training statistics.
      name: the dataset's name.
      image_shape: ``(H, W, C)`` of one sample if it is an image (for a CNN), else None.

    Returns:
      The :class:`Dataset`.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import from_arrays
      >>> ds = from_arrays(np.arange(20.0).reshape(10, 2), np.arange(10) % 2,
      ...                  test_fraction=0.4)
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
      ((6, 2), (4, 2), 2)
    """
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test must be given together (or neither)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed=}")
    x, y = validate_arrays(x, y, task=task, num_classes=num_classes)
    if x_test is None:
        train, test = _split_rows(y, task, seed, test_fraction)
        x, x_test, y, y_test = x[train], x[test], y[train], y[test]
    else:
        x_test, y_test = validate_arrays(x_test, y_test, task=task, num_classes=num_classes,
                                         names=("x_test", "y_test"))
        if x_test.shape[1:] != x.shape[1:] or y_test.shape[1:] != y.shape[1:]:
            raise ValueError(f"test arrays must match the training sample shapes, got {x.shape=}, "
                             f"{x_test.shape=}, {y.shape=}, {y_test.shape=}")
    if task == "classification" and num_classes is None:
        num_classes = int(max(y.max(), y_test.max())) + 1
    target_mean, target_std = 0.0, 1.0
    if standardize:
        (x, x_test), _, _ = _standardise(x, x_test)
        if task == "regression":
            (y, y_test), mean, std = _standardise(y, y_test)
            target_mean, target_std = float(np.mean(mean)), float(np.mean(std))
    return Dataset(x, y, x_test, y_test, task,
                   int(num_classes) if task == "classification" else 0, name,
                   image_shape=image_shape, target_mean=target_mean, target_std=target_std)


def load_dataset(name: str = "digits", seed: int = 0, test_fraction: float = 0.3) -> Dataset:
    """Load a scikit-learn bundled dataset, split and standardised as by :func:`from_arrays`.

    ``digits`` (1797 8x8 images, 10 classes) and ``breast_cancer`` (569 x 30, 2 classes) are
    classification; ``diabetes`` (442 x 10) is regression with a standardised target.

    Args:
      name: one of :data:`DATASETS`.
      seed, test_fraction: as in :func:`from_arrays`.

    Returns:
      The :class:`Dataset`.

    Example:
      >>> from feasjax.data import load_dataset
      >>> ds = load_dataset("digits")
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes, ds.image_shape
      ((1257, 64), (540, 64), 10, (8, 8, 1))
    """
    if name not in _BUNDLED:
        raise ValueError(f"name must be one of {DATASETS}, got {name=}")
    from sklearn import datasets as sk_datasets

    task, image_shape = _BUNDLED[name]
    x, y = getattr(sk_datasets, f"load_{name}")(return_X_y=True)
    return from_arrays(x, y, task=task, seed=seed, test_fraction=test_fraction, name=name,
                       image_shape=image_shape)
