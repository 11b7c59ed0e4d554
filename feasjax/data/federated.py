"""A classification dataset split over K clients, each with its own train/test split.

Label skew follows Hsu, Qi, Brown 2019 (Dirichlet proportions per class). Clients are padded to
a common length: real rows first, then copies of the client's first row with ``mask == False``.
"""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from feasjax.data.datasets import (_check_fraction, _check_ids, _check_int, _given_rows,
                                   load_dataset, validate_arrays)

__all__ = ["FederatedData", "dirichlet_partition", "federated_dataset", "from_client_arrays",
           "pad_clients"]


@dataclasses.dataclass(frozen=True, eq=False)
class FederatedData:
    """K clients' padded train and test arrays (host numpy), made by :func:`federated_dataset`
    or :func:`from_client_arrays`.

    Example:
      >>> from feasjax.data import federated_dataset
      >>> fed = federated_dataset("digits", num_clients=4, beta=0.5)
      >>> fed.num_clients, int(fed.train_counts.sum() + fed.test["mask"].sum())
      (4, 1797)
    """

    train: dict  # {"x": (K, n, ...) float32, "y": (K, n) int32, "mask": (K, n) bool}
    test: dict  # same keys, (K, m, ...)
    num_classes: int
    name: str

    @property
    def num_clients(self) -> int:
        """K, the number of clients."""
        return int(self.train["y"].shape[0])

    @property
    def train_counts(self) -> np.ndarray:
        """Real training samples per client, shape ``(K,)``."""
        return self.train["mask"].sum(axis=1)


def dirichlet_partition(labels: np.ndarray, num_clients: int, beta: float, *, seed: int = 0,
                        min_size: int = 2, max_tries: int = 1000) -> np.ndarray:
    """Client id of every sample: each class split over clients by ``Dirichlet(beta)`` proportions.

    Redraws up to ``max_tries`` times (then ``ValueError``) until every client has at least
    ``min_size`` samples; ``beta > 0`` small means strong label skew.

    Returns:
      ``int32`` client ids in ``[0, K)``, shape ``(N,)``.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import dirichlet_partition
      >>> ids = dirichlet_partition(np.repeat(np.arange(3), 20), num_clients=4,
      ...                           beta=0.5)
      >>> ids.shape, int(np.bincount(ids, minlength=4).min()) >= 2
      ((60,), True)
    """
    labels = np.asarray(labels)
    num_clients = _check_int(num_clients, "num_clients", 1)
    if not (isinstance(beta, numbers.Real) and 0 < beta < float("inf")):
        raise ValueError(f"beta must be a finite number > 0, got {beta=}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a vector of integer labels, got {labels.shape=}, "
                         f"{labels.dtype=}")
    if num_clients * min_size > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {num_clients=} clients "
                         f"{min_size=} samples each")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        ids = np.empty(len(labels), np.int32)
        for c in np.unique(labels):
            where = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, float(beta))))[:-1]
                    * len(where)).astype(int)
            for k, part in enumerate(np.split(where, cuts)):
                ids[part] = k
        if np.bincount(ids, minlength=num_clients).min() >= min_size:
            return ids
    raise ValueError(f"no Dirichlet({beta}) draw gave every one of {num_clients} clients "
                     f"{min_size} samples in {max_tries} tries; raise beta or lower num_clients")


def pad_clients(rows: list, *, length: int | None = None) -> dict:
    """Stack per-client ``(x, y)`` arrays into padded ``{"x", "y", "mask"}`` arrays.

    Args:
      rows: one ``(x_k, y_k)`` pair per client (``n_k >= 1`` rows each, or 0 rows for a
        client that only pads a client axis: it repeats client 0's first row, all masked).
      length: padded length (default: the largest ``n_k``).

    Returns:
      ``{"x": (K, L, ...), "y": (K, L), "mask": (K, L)}`` numpy arrays.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import pad_clients
      >>> d = pad_clients([(np.ones((2, 3)), [0, 1]), (np.zeros((1, 3)), [2])])
      >>> d["x"].shape, d["y"].tolist(), d["mask"].tolist()
      ((2, 2, 3), [[0, 1], [2, 2]], [[True, True], [True, False]])
    """
    if not rows or len(rows[0][0]) == 0:
        raise ValueError("rows must hold at least one client, the first with >= 1 sample")
    length = max(len(y) for _, y in rows) if length is None else length
    padded = []
    for x, y in rows:
        if len(y) > length:
            raise ValueError(f"length={length} is below a client's {len(y)} samples")
        mask = np.arange(length) < len(y)
        fill = np.where(mask, np.arange(length), 0)  # padding repeats row 0
        x, y = (x, y) if len(y) else rows[0]
        padded.append((np.asarray(x)[fill], np.asarray(y)[fill], mask))
    x, y, mask = (np.stack(parts) for parts in zip(*padded))
    return {"x": x, "y": y, "mask": mask}


def _split_clients(x, y, client, num_clients, test_fraction, seed, shift, name, num_classes):
    rng = np.random.default_rng(seed + 1)
    offsets = shift * rng.standard_normal((num_clients, *x.shape[1:])).astype(np.float32)
    train, test = [], []
    for k in range(num_clients):
        idx = rng.permutation(np.flatnonzero(client == k))
        if len(idx) < 2:
            raise ValueError(f"client {k} has {len(idx)} samples; every client needs >= 2 "
                             f"(one train, one test)")
        n_test = min(max(1, int(round(test_fraction * len(idx)))), len(idx) - 1)
        xk = x[idx] + offsets[k]
        train.append((xk[n_test:], y[idx[n_test:]]))
        test.append((xk[:n_test], y[idx[:n_test]]))
    return FederatedData(train=pad_clients(train), test=pad_clients(test),
                         num_classes=num_classes, name=name)


def federated_dataset(name: str = "digits", num_clients: int = 10, beta: float = 0.3, *,
                      feature_shift: float = 0.0, seed: int = 0,
                      test_fraction: float = 0.3) -> FederatedData:
    """A bundled classification dataset over ``num_clients`` clients with Dirichlet label skew.

    All samples of :func:`feasjax.data.load_dataset` (standardised) are pooled, partitioned with
    :func:`dirichlet_partition`, shifted per client by ``feature_shift * u_k`` and split per client
    into train and test (``test_fraction``); ``seed`` seeds all three.

    Example:
      >>> from feasjax.data import federated_dataset
      >>> fed = federated_dataset("breast_cancer", num_clients=3, beta=10.0)
      >>> fed.num_classes, fed.train["x"].shape[-1]
      (2, 30)
    """
    if name not in ("digits", "breast_cancer"):
        raise ValueError(f"name must be 'digits' or 'breast_cancer' (classification), got {name=}")
    if not (isinstance(feature_shift, numbers.Real) and 0 <= feature_shift < float("inf")):
        raise ValueError(f"feature_shift must be a finite number >= 0, got {feature_shift=}")
    test_fraction = _check_fraction(test_fraction)
    ds = load_dataset(name)
    x, y = np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])
    client = dirichlet_partition(y, num_clients, beta, seed=seed)
    return _split_clients(x, y, client, num_clients, test_fraction, seed, float(feature_shift),
                          name, ds.num_classes)


def _given_test(x, y, client, x_test, y_test, client_test, num_classes, name):
    """Every row of ``x`` trains and the given (checked) rows test, client by client."""
    clients = np.arange(max(client.max(), client_test.max()) + 1)
    rows = {}
    for split, xs, ys, cs in (("train", x, y, client), ("test", x_test, y_test, client_test)):
        if (missing := np.setdiff1d(clients, cs)).size:
            raise ValueError(f"client {missing[0]} has no {split} rows; every client needs >= 1 "
                             f"(client ids are 0..K-1)")
        rows[split] = [(xs[cs == k], ys[cs == k]) for k in clients]
    num_classes = int(max(y.max(), y_test.max())) + 1 if num_classes is None else num_classes
    return FederatedData(train=pad_clients(rows["train"]), test=pad_clients(rows["test"]),
                         num_classes=num_classes, name=name)


def from_client_arrays(x: object, y: object, client: object, *, x_test: object | None = None,
                       y_test: object | None = None, client_test: object | None = None,
                       num_classes: int | None = None, test_fraction: float = 0.3,
                       seed: int = 0, name: str = "arrays") -> FederatedData:
    """Your arrays with a ``client`` id per sample -> :class:`FederatedData` (per-client splits).

    Inputs are used as given (not standardised). With ``x_test``, ``y_test`` and
    ``client_test`` every row of ``x`` trains and those rows test; without them each client's
    rows are split.

    Args:
      x: inputs ``(N, ...)``; y: integer labels ``(N,)``.
      client: integer client ids ``(N,)`` in ``[0, K)``, every client with >= 2 samples (>= 1
        with given test rows).
      x_test, y_test, client_test: optional test rows with their client ids (all three or
        none), every client with >= 1.
      num_classes: classes (default: ``max(y) + 1``).
      test_fraction: fraction of each client's samples held out, in ``(0, 1)``.
      seed: seed of the per-client splits.
      name: the dataset's name.

    Returns:
      A :class:`FederatedData` with ``K = max(client) + 1`` clients.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import from_client_arrays
      >>> fed = from_client_arrays(np.zeros((8, 2)), np.arange(8) % 2,
      ...                          np.arange(8) // 4)
      >>> fed.num_clients, fed.train_counts.tolist()
      (2, [3, 3])
    """
    x, y = validate_arrays(x, y, num_classes=num_classes)
    client = _check_ids(client, y, "client")
    test = _given_rows({"x_test": x_test, "y_test": y_test, "client_test": client_test},
                       x.shape[1:], "given test rows need", num_classes)
    if test is not None:
        return _given_test(x, y, client, *test, num_classes, name)
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    return _split_clients(x, y, client, int(client.max()) + 1, _check_fraction(test_fraction),
                          seed, 0.0, name, num_classes)
