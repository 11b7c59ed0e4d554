"""Bundled datasets and user-array validation: shapes, stratification, standardisation, errors."""
import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from feasjax.data.datasets import DATASETS, from_arrays, load_dataset, validate_arrays

EXPECTED = {  # name: (samples, features, task, num_classes)
    "digits": (1797, 64, "classification", 10),
    "breast_cancer": (569, 30, "classification", 2),
    "diabetes": (442, 10, "regression", 0),
}


@pytest.mark.parametrize("name", DATASETS)
def test_bundled_shapes_dtypes_and_split(name):
    n, features, task, num_classes = EXPECTED[name]
    ds = load_dataset(name)
    assert (ds.name, ds.task, ds.num_classes) == (name, task, num_classes)
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == n
    assert ds.x_test.shape[0] == int(np.ceil(0.3 * n))  # sklearn rounds the test size up
    assert ds.x_train.shape[1:] == ds.x_test.shape[1:] == (features,)
    assert ds.y_train.shape == (ds.x_train.shape[0],)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == (np.int32 if task == "classification" else np.float32)


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_split_is_stratified(name):
    ds = load_dataset(name, seed=3)
    all_labels = np.concatenate([ds.y_train, ds.y_test])
    full = np.bincount(all_labels) / len(all_labels)
    for labels in (ds.y_train, ds.y_test):
        share = np.bincount(labels, minlength=ds.num_classes) / len(labels)
        # Stratified: every class share within one sample of the population share.
        np.testing.assert_allclose(share, full, atol=1.0 / len(labels) + 1e-9)


def test_standardisation_uses_train_statistics():
    ds = load_dataset("breast_cancer")
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, rtol=1e-4)
    assert not np.allclose(ds.x_test.mean(axis=0), 0.0, atol=1e-3)  # test stats are not used
    # That the test set is mapped with the *train* mean/std is checked on known arrays in
    # test_from_arrays_with_explicit_test_set_and_float_labels.


def test_constant_features_do_not_divide_by_zero():
    ds = load_dataset("digits")  # several pixels are always 0
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()
    constant = ds.x_train.std(axis=0) == 0
    assert constant.any()
    np.testing.assert_array_equal(ds.x_train[:, constant], 0.0)


def test_regression_target_standardised_and_recoverable():
    ds = load_dataset("diabetes")
    assert ds.y_train.mean() == pytest.approx(0.0, abs=1e-5)
    assert ds.y_train.std() == pytest.approx(1.0, rel=1e-5)
    _, raw_y = sk_datasets.load_diabetes(return_X_y=True)
    recovered = np.sort(np.concatenate([ds.y_train, ds.y_test]) * ds.target_std + ds.target_mean)
    np.testing.assert_allclose(recovered, np.sort(raw_y), rtol=1e-4)


def test_deterministic_per_seed():
    a, b = load_dataset("digits", seed=1), load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)


def test_from_arrays_with_explicit_test_set_and_float_labels():
    rng = np.random.default_rng(0)
    x, x_test = rng.normal(3.0, 2.0, (20, 2, 3)), rng.normal(size=(6, 2, 3))
    ds = from_arrays(x, np.arange(20.0) % 4, x_test, np.arange(6) % 4, name="mine")
    assert ds.num_classes == 4 and ds.y_train.dtype == np.int32
    assert ds.x_train.shape == (20, 2, 3)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, (x_test - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)
    raw = from_arrays(x, np.arange(20) % 4, standardize=False, num_classes=7)
    assert raw.num_classes == 7
    assert np.isin(raw.x_train, x.astype(np.float32)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.array([[np.nan, 1.0], [0.0, 0.0]]), "y": [0, 1]}, r"x must be finite.*index 0"),
        ({"x": np.zeros(4), "y": [0, 1, 0, 1]}, r"x must have shape \(N, features...\)"),
        ({"x": np.array([["a"], ["b"]]), "y": [0, 1]}, "x must hold real numbers"),
        ({"x": np.zeros((3, 2)), "y": [0, 1]}, r"y must have one entry per sample of x \(3\)"),
        ({"x": np.zeros((2, 2)), "y": [0.5, 1.0]}, "y must hold integer class labels"),
        ({"x": np.zeros((2, 2)), "y": [-1, 1]}, "y labels must be >= 0"),
        ({"x": np.zeros((2, 2)), "y": [0, 3], "num_classes": 3}, r"y labels must be in \[0, 3\)"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "task": "ranking"}, "task must be one of"),
        ({"x": np.zeros((2, 2)), "y": [0.0, np.inf], "task": "regression"}, "y must be finite"),
    ],
)
def test_validate_arrays_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_arrays(**kwargs)


def test_from_arrays_and_load_errors():
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        load_dataset("digits", test_fraction=1.0)
    with pytest.raises(ValueError, match="seed must be an int"):
        from_arrays(x, y, seed=-1)
    with pytest.raises(ValueError, match="x_test and y_test must be given together"):
        from_arrays(x, y, x_test=x)
    with pytest.raises(ValueError, match="y_test labels must be >= 0"):
        from_arrays(x, y, x, -y)
    with pytest.raises(ValueError, match="test arrays must match the training sample shapes"):
        from_arrays(x, y, np.zeros((4, 3)), y[:4])
    with pytest.raises(ValueError, match="class 2 has a single sample"):
        from_arrays(np.zeros((5, 2)), [0, 0, 2, 1, 1])
