"""Data with groups: the splits a user gives to ``group_dataset``, and ``spurious_tabular``."""
import numpy as np
import pytest

from feasjax.data import group_dataset, spurious_tabular


def _arrays(n, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) + offset, np.arange(n) % 2, np.arange(n) % 4


def test_given_splits_are_used_as_they_are():
    x, y, g = _arrays(40)
    xv, yv, gv = _arrays(12, seed=1, offset=5.0)
    xe, ye, ge = _arrays(16, seed=2, offset=-5.0)
    data = group_dataset(x, y, g, x_val=xv, y_val=yv, group_val=gv, x_test=xe, y_test=ye,
                         group_test=ge)
    assert data.given == ("val", "test")
    assert [len(data.y_train), len(data.y_val), len(data.y_test)] == [40, 12, 16]
    np.testing.assert_array_equal(data.g_test, ge)
    # standardised with the training statistics: the offsets of the given splits survive
    mean, std = x.mean(0), x.std(0)
    np.testing.assert_allclose(data.x_test, (xe - mean) / std, rtol=1e-4, atol=1e-5)
    assert data.group_counts() == {"train": [10] * 4, "val": [3] * 4, "test": [4] * 4}


@pytest.mark.parametrize("given, sizes", [((), (19, 9, 12)), (("test",), (28, 12, 16)),
                                          (("val",), (25, 12, 15))])
def test_only_missing_splits_are_cut_from_x(given, sizes):
    x, y, g = _arrays(40)
    extra = {}
    for split, n in (("val", 12), ("test", 16)):
        if split in given:
            xs, ys, gs = _arrays(n, seed=3)
            extra.update({f"x_{split}": xs, f"y_{split}": ys, f"group_{split}": gs})
    data = group_dataset(x, y, g, seed=1, **extra)
    assert data.given == given
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == sizes
    cut = [s for s in ("train", "val", "test") if s not in given]
    assert sum(len(getattr(data, f"y_{s}")) for s in cut) == 40  # every row of x, once


@pytest.mark.parametrize("extra, match", [
    ({"x_test": np.zeros((4, 3)), "y_test": np.zeros(4, int)}, "needs all of"),
    ({"x_val": np.zeros((4, 2)), "y_val": np.zeros(4, int), "group_val": np.zeros(4, int)},
     "feature shape"),
    ({"x_val": np.zeros((4, 3)), "y_val": np.zeros(4, int), "group_val": np.zeros(3, int)},
     "group_val must hold one int"),
    ({"x_test": np.zeros((4, 3)), "y_test": np.zeros(5, int), "group_test": np.zeros(4, int)},
     "y_test must have one entry per sample of x_test"),
])
def test_bad_given_splits_are_refused(extra, match):
    with pytest.raises(ValueError, match=match):
        group_dataset(*_arrays(40), **extra)


@pytest.mark.parametrize("seed", [0, 1])
def test_spurious_tabular_correlations_and_splits(seed):
    data = spurious_tabular(seed)
    assert data.group_counts() == {"train": [190, 10, 10, 190], "val": [50] * 4,
                                   "test": [100] * 4}
    assert (data.num_groups, data.num_classes, data.x_train.shape[1]) == (4, 2, 10)
    for split in ("train", "val", "test"):
        y, g = getattr(data, f"y_{split}"), getattr(data, f"g_{split}")
        np.testing.assert_array_equal(g // 2, y)  # groups are 2 * label + attribute
        attribute_agrees = np.mean(g % 2 == y)
        assert attribute_agrees == (0.95 if split == "train" else 0.5)
        x = getattr(data, f"x_{split}")
        core = np.mean((x[:, 0] > 0) == (y == 1))
        assert 0.78 < core < 0.92  # the core feature: ~85% on every split
        spurious = np.mean((x[:, 1] > 0) == (g % 2 == 1))  # the feature reads the attribute
        assert spurious > 0.95
    np.testing.assert_allclose(data.x_train.mean(0), 0.0, atol=1e-5)


def test_spurious_tabular_arguments():
    small = spurious_tabular(0, train_size=200, correlation=0.9, noise_features=0)
    assert small.group_counts()["train"] == [90, 10, 10, 90] and small.x_train.shape[1] == 2
    for kwargs, match in (({"correlation": 1.0}, "correlation"),
                          ({"core_accuracy": 0.5}, "core_accuracy"),
                          ({"train_size": 8}, "leave a group empty"),
                          ({"noise_features": -1}, "noise_features"),
                          ({"val_size": 2}, "val_size")):
        with pytest.raises(ValueError, match=match):
            spurious_tabular(0, **kwargs)
