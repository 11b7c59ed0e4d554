"""Metrics against numpy references on fixed arrays, with and without masks, jit and no jit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from feasjax import metrics

RNG = np.random.default_rng(0)
LOSSES = RNG.exponential(size=37).astype(np.float32)  # odd size: interpolation is exercised
MASK = RNG.random(37) < 0.7
LEVELS = [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]
JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


def maybe_jit(fn, use_jit, **static):
    return jax.jit(fn, static_argnames=tuple(static)) if use_jit else fn


def cvar_reference(values, level):
    """Rockafellar-Uryasev: min_t t + mean((v - t)_+) / (1 - level), minimum at a sample value."""
    values = np.asarray(values, np.float64)
    objective = [t + np.maximum(values - t, 0).sum() / ((1 - level) * len(values)) for t in values]
    return min(objective)


@pytest.mark.parametrize("use_jit", JIT)
@pytest.mark.parametrize("q", LEVELS)
def test_quantile_matches_numpy(q, use_jit):
    fn = maybe_jit(metrics.quantile, use_jit)
    np.testing.assert_allclose(fn(LOSSES, q), np.quantile(LOSSES, q), rtol=1e-6)
    np.testing.assert_allclose(fn(LOSSES, q, MASK), np.quantile(LOSSES[MASK], q), rtol=1e-6)


def test_quantile_vector_levels_and_traced_q():
    qs = np.array([0.25, 0.5, 0.75, 0.99], np.float32)
    got = jax.jit(metrics.quantile)(LOSSES, jnp.asarray(qs), jnp.asarray(MASK))
    np.testing.assert_allclose(got, np.quantile(LOSSES[MASK], qs), rtol=1e-6)
    assert got.shape == (4,)


def test_quantile_masked_values_never_count():
    """Huge padded values, or nan in padding, must not change the result."""
    padded = np.concatenate([LOSSES, np.array([1e30, np.nan, -1e30], np.float32)])
    mask = np.concatenate([np.ones(37, bool), np.zeros(3, bool)])
    for q in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(
            metrics.quantile(padded, q, mask), np.quantile(LOSSES, q), rtol=1e-6
        )


def test_quantile_edge_cases():
    assert np.isnan(metrics.quantile(LOSSES, 0.5, np.zeros(37, bool)))
    assert np.isnan(metrics.quantile(np.array([1.0, np.nan, 2.0]), 0.5))
    single = np.zeros(37, bool)
    single[5] = True
    assert float(metrics.quantile(LOSSES, 0.9, single)) == LOSSES[5]


@pytest.mark.parametrize("use_jit", JIT)
@pytest.mark.parametrize("level", [0.0, 0.3, 0.5, 0.9, 0.95, 0.99])
def test_cvar_matches_rockafellar_uryasev(level, use_jit):
    fn = maybe_jit(metrics.cvar, use_jit)
    np.testing.assert_allclose(fn(LOSSES, level), cvar_reference(LOSSES, level), rtol=1e-5)
    np.testing.assert_allclose(
        fn(LOSSES, level, MASK), cvar_reference(LOSSES[MASK], level), rtol=1e-5
    )


def test_cvar_closed_forms():
    values = np.arange(1000, dtype=np.float32)
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(values)
    assert float(metrics.cvar(shuffled, 0.9)) == pytest.approx(values[-100:].mean(), rel=1e-6)
    assert float(metrics.cvar(shuffled, 0.0)) == pytest.approx(values.mean(), rel=1e-6)
    assert float(metrics.cvar(shuffled, 0.9999)) == 999.0  # k < 1: the maximum
    # Fractional k = 2.5 over [0..9]: (9 + 8 + 0.5 * 7) / 2.5
    assert float(metrics.cvar(np.arange(10.0), 0.75)) == pytest.approx(20.5 / 2.5, rel=1e-6)


def test_cvar_mask_and_nan():
    padded = np.concatenate([LOSSES, np.array([1e30, np.nan], np.float32)])
    mask = np.concatenate([np.ones(37, bool), np.zeros(2, bool)])
    np.testing.assert_allclose(
        metrics.cvar(padded, 0.9, mask), cvar_reference(LOSSES, 0.9), rtol=1e-5
    )
    assert np.isnan(metrics.cvar(np.array([1.0, np.nan]), 0.5))
    assert np.isnan(metrics.cvar(LOSSES, 0.5, np.zeros(37, bool)))


@pytest.mark.parametrize("use_jit", JIT)
def test_feasible_fraction(use_jit):
    fn = maybe_jit(metrics.feasible_fraction, use_jit)
    for eps in (0.1, 0.5, 1.0, 10.0):
        assert float(fn(LOSSES, eps)) == pytest.approx(np.mean(LOSSES <= eps))
        assert float(fn(LOSSES, eps, MASK)) == pytest.approx(np.mean(LOSSES[MASK] <= eps))
    assert float(metrics.feasible_fraction(np.array([0.1, 0.2]), 0.1)) == 0.5  # <= is inclusive


LOGITS = RNG.normal(size=(37, 4)).astype(np.float32)
LABELS = RNG.integers(0, 3, size=37).astype(np.int32)  # class 3 never appears


@pytest.mark.parametrize("use_jit", JIT)
def test_accuracy_from_logits_and_labels(use_jit):
    fn = maybe_jit(metrics.accuracy, use_jit)
    preds = LOGITS.argmax(-1)
    assert float(fn(LOGITS, LABELS)) == pytest.approx(np.mean(preds == LABELS))
    assert float(fn(preds, LABELS)) == pytest.approx(np.mean(preds == LABELS))
    assert float(fn(LOGITS, LABELS, MASK)) == pytest.approx(np.mean((preds == LABELS)[MASK]))


@pytest.mark.parametrize("use_jit", JIT)
def test_worst_class_accuracy(use_jit):
    fn = maybe_jit(metrics.worst_class_accuracy, use_jit, num_classes=4)
    preds = LOGITS.argmax(-1)
    for mask in (np.ones(37, bool), MASK):
        per_class = [np.mean((preds == LABELS)[mask & (LABELS == c)]) for c in range(3)]
        got = fn(LOGITS, LABELS, num_classes=4, mask=mask)
        assert float(got) == pytest.approx(min(per_class))  # absent class 3 is ignored
    per_class = metrics.per_class_accuracy(LOGITS, LABELS, 4)
    assert np.isnan(per_class[3])
    assert np.isnan(metrics.worst_class_accuracy(LOGITS, LABELS, 4, np.zeros(37, bool)))


@pytest.mark.parametrize("use_jit", JIT)
def test_multiplier_stats(use_jit):
    fn = maybe_jit(metrics.multiplier_stats, use_jit)
    lam = np.where(RNG.random(37) < 0.4, 0.0, LOSSES).astype(np.float32)
    for mask in (np.ones(37, bool), MASK):
        stats = fn(lam, mask)
        assert set(stats) == {"mean", "max", "nonzero_fraction"}
        assert float(stats["mean"]) == pytest.approx(lam[mask].mean(), rel=1e-6)
        assert float(stats["max"]) == lam[mask].max()
        assert float(stats["nonzero_fraction"]) == pytest.approx(np.mean(lam[mask] != 0))


@pytest.mark.parametrize("use_jit", JIT)
def test_loss_summary_contract_and_values(use_jit):
    fn = maybe_jit(metrics.loss_summary, use_jit)
    padded = np.concatenate([LOSSES, np.full(3, 1e6, np.float32)])
    mask = np.concatenate([MASK, np.zeros(3, bool)])
    summary = fn(padded, 0.5, mask)
    # jit returns dicts with sorted keys, so the contract is the key set.
    assert set(summary) == set(metrics.LOSS_SUMMARY_KEYS) == {
        "mean_loss", "q50_loss", "q90_loss", "q99_loss", "max_loss", "cvar90_loss",
        "feasible_fraction",
    }
    ref = LOSSES[MASK]
    expected = {
        "mean_loss": ref.mean(),
        "q50_loss": np.quantile(ref, 0.5),
        "q90_loss": np.quantile(ref, 0.9),
        "q99_loss": np.quantile(ref, 0.99),
        "max_loss": ref.max(),
        "cvar90_loss": cvar_reference(ref, 0.9),
        "feasible_fraction": np.mean(ref <= 0.5),
    }
    for key, value in expected.items():
        assert summary[key].shape == ()
        np.testing.assert_allclose(summary[key], value, rtol=1e-5, err_msg=key)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"losses must have shape \(N,\)"):
        metrics.quantile(np.zeros((3, 2)), 0.5)
    with pytest.raises(ValueError, match="mask must have the shape of losses"):
        metrics.cvar(np.zeros(3), 0.5, np.ones(4, bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        metrics.feasible_fraction(np.zeros(3), 0.5, np.ones(3))
    with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
        metrics.quantile(np.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"level must be in \[0, 1\)"):
        metrics.cvar(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        metrics.worst_class_accuracy(LOGITS, LABELS, 0)
    with pytest.raises(ValueError, match="logits must be"):
        metrics.accuracy(LOGITS[:5], LABELS)


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
def test_sample_sharded_inputs_give_exact_global_values(axis_type):
    """Losses and mask sharded over the sample axis (issue 6) give global, not per-device, values.

    With Explicit axes jnp.sort rejects an operand sharded along the sorted axis, so the metrics
    must gather it themselves.
    """
    devices = jax.devices()
    if len(devices) < 2:
        pytest.skip("needs several devices")
    n = 8 * len(devices)
    losses = np.random.default_rng(2).exponential(size=n).astype(np.float32)
    mask = np.arange(n) < n - 5  # padding at the end, as data-parallel padding would be
    sharding = jax.sharding.NamedSharding(
        jax.make_mesh(
            (len(devices),), ("data",), axis_types=(getattr(jax.sharding.AxisType, axis_type),)
        ),
        jax.sharding.PartitionSpec("data"),
    )
    summary = jax.jit(metrics.loss_summary)(
        jax.device_put(losses, sharding), 0.5, jax.device_put(mask, sharding)
    )
    np.testing.assert_allclose(summary["q90_loss"], np.quantile(losses[mask], 0.9), rtol=1e-6)
    np.testing.assert_allclose(
        summary["cvar90_loss"], cvar_reference(losses[mask], 0.9), rtol=1e-5
    )
    assert float(summary["max_loss"]) == losses[mask].max()
    labels = jax.device_put((losses * 3).astype(np.int32) % 3, sharding)
    logits = jax.nn.one_hot(labels, 3)  # perfect predictions, sharded like the labels
    assert float(jax.jit(metrics.worst_class_accuracy, static_argnums=2)(logits, labels, 3)) == 1.0
