"""The user's own data for ``feasjax train`` (``.npz`` or ``.npy``), checked before training:
every problem raises ``ValueError`` naming the file and the array."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from feasjax.data.datasets import Dataset, _split_rows, from_arrays, validate_arrays

__all__ = ["load_arrays", "user_dataset"]

OPTIONAL = ("group", "x_test", "y_test")


def _load(path: str, what: str) -> np.ndarray:
    """A memory-mapped ``.npy``, or a ``ValueError`` naming it."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: cannot read {path!r} as a .npy array ({e})") from None


def load_arrays(data: str | None = None, *, x: str | None = None, y: str | None = None,
                group: str | None = None) -> dict[str, np.ndarray]:
    """Read ``x``, ``y`` (and ``group``, ``x_test``, ``y_test`` if present) from files.

    Args:
      data: an ``.npz`` with arrays ``x``, ``y`` (and the optional ones); or None.
      x, y, group: ``.npy`` paths (memory-mapped) instead of ``data``; ``group`` optional.

    Returns:
      A dict of numpy arrays, for :func:`user_dataset` to validate.

    Example:
      >>> import numpy as np, tempfile, os
      >>> from feasjax.data import load_arrays
      >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
      >>> np.savez(path, x=np.zeros((4, 2)), y=np.arange(4) % 2)
      >>> sorted(load_arrays(path))
      ['x', 'y']
    """
    if (data is None) == (x is None and y is None):
        raise ValueError("give either an .npz file (--data) or .npy files (--x and --y)")
    if data is None:
        if x is None or y is None:
            raise ValueError("--x and --y must be given together")
        paths = {"x": x, "y": y, "group": group}
        return {k: _load(path, k) for k, path in paths.items() if path is not None}
    if group is not None:
        raise ValueError("--group goes with --x/--y; put 'group' inside the .npz instead")
    try:
        with np.load(data, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {k: npz[k] for k in ("x", "y", *OPTIONAL) if k in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        corrupt = isinstance(e, (zipfile.BadZipFile, EOFError))
        raise ValueError(f"cannot read {data!r} as an .npz of numeric arrays"
                         f"{' (truncated or corrupted?)' if corrupt else ''} "
                         f"({type(e).__name__}: {e})") from None
    if missing := [k for k in ("x", "y") if k not in names]:
        raise ValueError(f"{data!r} has no array {missing[0]!r} (found {names}); an .npz needs "
                         f"arrays 'x' and 'y' (optional {list(OPTIONAL)})")
    return arrays


def user_dataset(arrays: dict, *, task: str = "classification", num_classes: int | None = None,
                 seed: int = 0, test_fraction: float = 0.3,
                 image_shape: tuple[int, int, int] | None = None,
                 name: str = "user") -> tuple[Dataset, dict]:
    """Validate and split user arrays with :func:`feasjax.data.from_arrays`, keeping their rows.

    An ``.npz`` of a bundled dataset without ``x_test``/``y_test`` gives the demo's exact split.

    Args:
      arrays: from :func:`load_arrays`.
      task, num_classes, seed, test_fraction, name: see :func:`feasjax.data.from_arrays`.
      image_shape: ``(H, W, C)`` of a sample for a CNN; inferred when ``x`` is 4-D.

    Returns:
      ``(dataset, extras)``; ``extras`` holds ``train_index``/``test_index`` (rows of the
      original arrays, ``test_index`` is None for an explicit test set) and, if given,
      ``group_train``/``group_test``.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import user_dataset
      >>> arrays = {"x": np.arange(20.0).reshape(10, 2), "y": np.arange(10) % 2}
      >>> ds, extras = user_dataset(arrays, test_fraction=0.4)
      >>> ds.x_train.shape, extras["train_index"].shape
      ((6, 2), (6,))
    """
    x, y = validate_arrays(arrays["x"], arrays["y"], task=task, num_classes=num_classes)
    n = x.shape[0]
    if image_shape is None and x.ndim == 4:
        image_shape = tuple(x.shape[1:])
    group = arrays.get("group")
    if group is not None:  # one integer group >= 0 per sample
        group = np.asarray(group)
        if group.shape != (n,):
            raise ValueError(f"group must have one entry per sample of x ({n}), got "
                             f"group.shape={group.shape}")
        if group.dtype.kind not in "iub" or (group.size and group.min() < 0):
            raise ValueError(f"group must hold integers >= 0, got dtype {group.dtype}")
        group = group.astype(np.int32)
    given = "x_test" in arrays or "y_test" in arrays
    if given and not {"x_test", "y_test"} <= arrays.keys():
        raise ValueError("an explicit test set needs both 'x_test' and 'y_test'")
    dataset = from_arrays(x, y, arrays.get("x_test"), arrays.get("y_test"), task=task,
                          num_classes=num_classes, seed=seed if not given else 0,
                          test_fraction=test_fraction, name=name, image_shape=image_shape)
    # from_arrays' split of the same labels: the rows of the original arrays.
    train, test = (np.arange(n), None) if given else _split_rows(y, task, seed, test_fraction)
    extras = {"train_index": train, "test_index": test}
    if group is not None:
        if test is not None:
            extras["group_test"] = group[test]
        extras["group_train"] = group[train]
    return dataset, extras


def name_of(path: str | None) -> str:
    """A dataset name from a file path (its stem), ``"user"`` without one."""
    return os.path.splitext(os.path.basename(path))[0] if path else "user"
