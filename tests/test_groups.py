"""Group robustness: group metrics against numpy, example-tied dropout, group weights, group DRO.

The CLI's JSON schema is checked in ``tests/test_groups_cli.py``.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import feasjax as fj
from feasjax import metrics
from feasjax.core import exponentiated_gradient, group_dro, group_weights, reweighted
from feasjax.core.reweighting import group_counts
from feasjax.core.robust import GROUPS, group_mean_losses
from feasjax.models import MLP, ExampleTiedDropout, TiedDropout

RNG = np.random.default_rng(0)
N, G = 45, 4
LOGITS = RNG.normal(size=(N, 3)).astype(np.float32)
LABELS = RNG.integers(0, 3, N).astype(np.int32)
GROUP = np.where(np.arange(N) < 40, RNG.integers(0, 3, N), 3).astype(np.int32)  # group 3: 5
LOSSES = RNG.exponential(size=N).astype(np.float32)
MASK = np.arange(N) < 40  # masks all of group 3 out


def reference(mask):
    correct = LOGITS.argmax(-1) == LABELS
    acc = np.array([correct[mask & (GROUP == g)].mean() if (mask & (GROUP == g)).any()
                    else np.nan for g in range(G)])
    loss = np.array([LOSSES[mask & (GROUP == g)].mean() if (mask & (GROUP == g)).any()
                     else np.nan for g in range(G)])
    present = ~np.isnan(acc)
    return {"average_accuracy": correct[mask].mean(), "group_accuracy": acc, "group_loss": loss,
            "worst_group_accuracy": acc[present].min(), "balanced_accuracy": acc[present].mean()}


@pytest.mark.parametrize("mask", [None, MASK], ids=["all", "masked"])
def test_group_metrics_match_numpy_under_jit(mask):
    ref = reference(np.ones(N, bool) if mask is None else mask)
    fn = jax.jit(metrics.group_summary, static_argnums=3)
    out = fn(LOGITS, LABELS, GROUP, G, LOSSES, None if mask is None else jnp.asarray(mask))
    assert set(out) == set(metrics.GROUP_SUMMARY_KEYS)
    for key, value in ref.items():
        np.testing.assert_allclose(out[key], value, rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(metrics.group_accuracy(LOGITS, LABELS, GROUP, G, mask),
                               ref["group_accuracy"], rtol=1e-6)
    np.testing.assert_allclose(metrics.group_loss(LOSSES, GROUP, G, mask), ref["group_loss"],
                               rtol=1e-6)
    np.testing.assert_allclose(metrics.worst_group_accuracy(LOGITS, LABELS, GROUP, G, mask),
                               ref["worst_group_accuracy"], rtol=1e-6)


def test_group_metrics_are_exact_on_sample_sharded_padded_arrays():
    devices = jax.devices()
    pad = -N % len(devices)
    padded = [np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)])
              for a in (LOGITS, LABELS, GROUP, LOSSES)]
    mask = np.concatenate([MASK, np.zeros(pad, bool)])
    mesh = jax.make_mesh((len(devices),), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    args = [jax.device_put(a, sharding) for a in (*padded, mask)]
    out = jax.jit(lambda lg, y, g, loss, m: metrics.group_summary(lg, y, g, G, loss, m))(*args)
    for key, value in reference(MASK).items():
        np.testing.assert_allclose(out[key], value, rtol=1e-6, err_msg=key)


def test_group_metrics_reject_bad_arguments():
    with pytest.raises(ValueError, match="num_groups must be a positive int"):
        metrics.group_accuracy(LOGITS, LABELS, GROUP, 0)
    with pytest.raises(TypeError, match="groups must be an int array"):
        metrics.group_loss(LOSSES, GROUP.astype(np.float32), G)


def test_example_tied_masks_are_fixed_per_example_have_the_fractions_and_drop_at_eval():
    layer = ExampleTiedDropout(40, p_gen=0.25, p_mem=0.3, seed=7)
    indices = jnp.arange(1000)
    masks = np.asarray(layer.mask(indices))
    again = np.asarray(layer.mask(indices[::-1]))[::-1]  # other batch order: same masks
    np.testing.assert_array_equal(masks, again)
    assert (masks[:, :10] == 1).all()  # round(0.25 * 40) generalisation units, always on
    assert abs(masks[:, 10:].mean() - 0.3) < 0.01  # memorisation units: p_mem
    assert not (masks[0] == masks[1]).all()  # different examples, different masks
    x = jnp.ones((3, 40))
    np.testing.assert_array_equal(layer(x, indices[:3]), masks[:3])
    layer.eval()
    np.testing.assert_array_equal(layer(x), np.repeat((np.arange(40) < 10)[None], 3, 0))
    layer.train()
    with pytest.raises(ValueError, match="needs the batch's sample indices"):
        layer(x)


def test_tied_dropout_in_the_mlp_drops_memorisation_units_at_eval_only():
    model = MLP(5, [16], 2, tied_dropout=TiedDropout(p_gen=0.5, p_mem=0.0), rngs=nnx.Rngs(0))
    plain = MLP(5, [16], 2, rngs=nnx.Rngs(0))  # same initial parameters
    x = jnp.asarray(RNG.normal(size=(4, 5)), jnp.float32)
    # p_mem = 0: in training mode only the generalisation units are on, as at eval.
    train_out = model(x, indices=jnp.arange(4))
    model.eval()
    np.testing.assert_allclose(model(x), train_out, rtol=1e-6)
    hidden = jax.nn.relu(plain.layers[0](x)) * (jnp.arange(16) < 8)[None]
    np.testing.assert_allclose(model(x), plain.layers[1](hidden), rtol=1e-5)
    with pytest.raises(ValueError, match="tied_dropout.layer must index"):
        MLP(5, [16], 2, tied_dropout=TiedDropout(layer=1), rngs=nnx.Rngs(0))


def test_group_weights_balance_the_groups_and_reweighted_scales_losses():
    counts = group_counts(jnp.array([0, 0, 0, 1]), 2)
    w = group_weights(counts)
    np.testing.assert_allclose(counts * w, [2.0, 2.0])  # each group weighs N/G
    np.testing.assert_allclose(group_weights(counts, gamma=0.5), np.array([3, 1]) ** -0.5
                               / np.mean(np.array([3, 3, 3, 1]) ** -0.5 * 1), rtol=1e-6)
    loss = reweighted(lambda p, b: b["x"], w)
    np.testing.assert_allclose(loss(None, {"x": jnp.ones(2), "group": jnp.array([0, 1])}), w)


def test_group_dro_weights_match_a_hand_computation_on_two_groups():
    # Sagawa et al. 2020, Algorithm 1: q <- q exp(eta L_g) / Z, then a step on sum_g q_g L_g.
    x = jnp.array([0.0, 0.0, 2.0])
    batch = {"x": x, "group": jnp.array([0, 0, 1])}
    eta, lr, theta = 0.5, 0.1, 0.5
    dro = group_dro(lambda p, b: (p - b["x"]) ** 2, optax.sgd(lr), num_groups=2, step_size=eta)
    state, _ = dro.step(dro.init(jnp.asarray(theta)), batch)
    losses = np.array([theta ** 2, (theta - 2) ** 2])  # group means: 0.25 and 2.25
    q = 0.5 * np.exp(eta * losses)
    q /= q.sum()
    np.testing.assert_allclose(state.multipliers[GROUPS], q, rtol=1e-6)
    grad = q[0] * 2 * theta + q[1] * 2 * (theta - 2)  # the new q weights the primal step
    np.testing.assert_allclose(state.params, theta - lr * grad, rtol=1e-6)
    np.testing.assert_allclose(group_mean_losses(jnp.array([1.0, 2.0]), jnp.array([1, 1]), 2),
                               [0.0, 1.5])


def test_group_dro_adjustment_and_argument_errors():
    with pytest.raises(ValueError, match="adjustment needs group_sizes"):
        group_dro(lambda p, b: b["x"], optax.sgd(0.1), num_groups=2, adjustment=1.0)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        exponentiated_gradient(0.0)
    with pytest.raises(ValueError, match="batch must hold the groups under 'group'"):
        reweighted(lambda p, b: b["x"], jnp.ones(2))(None, {"x": jnp.ones(2)})


def test_spurious_digits_correlations_and_gaussian_model():
    data = fj.data.spurious_digits(seed=1)
    agree = {s: np.mean(getattr(data, f"g_{s}") % 2 == getattr(data, f"y_{s}"))
             for s in ("train", "val", "test")}
    assert abs(agree["train"] - 0.95) < 0.02 and all(abs(agree[s] - 0.5) < 0.08
                                                     for s in ("val", "test"))
    np.testing.assert_array_equal(data.g_test // 2, data.y_test)
    with pytest.raises(ValueError, match="correlation must be in"):
        fj.data.spurious_digits(correlation=1.0)
    x, y = fj.data.gaussian_classes(jax.random.key(1), 4000, 3, pi_plus=0.3, snr=2.0)
    np.testing.assert_allclose((x * y[:, None]).mean(0), [2.0, 0.0, 0.0], atol=0.06)


# ------------------------------------------------------------- the methods, selection on validation

class _Recorded:
    """An array that writes "test" to a log whenever it is read (``np.asarray``)."""

    def __init__(self, array, log):
        self.array, self.log = array, log

    def __array__(self, dtype=None, copy=None):
        self.log.append("test")
        return np.asarray(self.array, dtype)


@pytest.fixture(scope="module")
def group_runs():
    from feasjax.data import spurious_digits
    from feasjax.experiments import GroupConfig, run_group_method

    datasets = [spurious_digits(seed=s) for s in (0, 1)]
    config, cache = GroupConfig(epochs=2, dro_step_size=(0.05, 0.1), dro_adjustment=(0.0, 1.0),
                                gamma=(0.5, 1.0)), {}
    return datasets, {m: run_group_method(m, datasets, [0, 1], config, cache=cache)
                      for m in fj.experiments.GROUP_METHODS}


@pytest.mark.parametrize("method", ["erm", "reweight", "llr", "fairdropout", "groupdro", "fl",
                                    "rfl"])
def test_every_group_method_runs_and_reports_what_it_selected(group_runs, method):
    _, runs = group_runs
    result = runs[method]
    for split in ("train", "test"):
        worst = result[split]["worst_group_accuracy"]
        groups = result[split]["group_accuracy"]
        assert len(worst) == 2 and all(0.0 <= w <= 1.0 for w in worst)
        assert worst == [min(g[r] for g in groups.values()) for r in range(2)]
    expected = {"reweight": {"gamma"}, "groupdro": {"step_size", "adjustment"},
                "llr": {"gamma"}}.get(method)
    if expected is None:
        assert result["selected"] == {}
    else:
        assert set(result["selected"]) == expected | {"validation_worst_group_accuracy"}
        assert all(len(v) == 2 for v in result["selected"].values())
    if method == "groupdro":
        assert set(result["selected"]["step_size"]) <= {0.05, 0.1}
        assert set(result["selected"]["adjustment"]) <= {0.0, 1.0}
    if method == "fairdropout":
        assert "train_with_masks" in result


def test_selection_reads_the_test_split_only_after_choosing(monkeypatch):
    import dataclasses

    from feasjax.data import spurious_digits
    from feasjax.experiments import GroupConfig, groups as groups_lib

    log = []
    for name in ("_select", "_llr_heads"):
        original = getattr(groups_lib, name)

        def recorded(*args, original=original, name=name):
            out = original(*args)
            log.append(f"chose ({name})")
            return out

        monkeypatch.setattr(groups_lib, name, recorded)
    data = spurious_digits(seed=0)
    lazy = dataclasses.replace(data)
    for field in ("x_test", "y_test", "g_test"):
        object.__setattr__(lazy, field, _Recorded(getattr(data, field), log))
    for method in ("reweight", "llr"):
        log.clear()
        result = groups_lib.run_group_method(method, [lazy], [0], GroupConfig(epochs=1))
        assert "test" in log and log.index("test") > max(
            i for i, entry in enumerate(log) if entry.startswith("chose")), log
        # and the numbers are those of the plain arrays
        again = groups_lib.run_group_method(method, [data], [0], GroupConfig(epochs=1))
        assert result["test"] == again["test"] and result["selected"] == again["selected"]


def test_cross_validated_head_chooses_the_weights_that_the_minority_needs():
    from feasjax.experiments.llr import cross_validated_head, fit_head

    # Feature 0 carries the label, noisily, for everyone; feature 1 is a clean spurious copy
    # of it for the majority and the opposite for the minority groups (20 of 200). Unweighted,
    # the head leans on the spurious feature and misses much of the minority.
    rng = np.random.default_rng(0)
    n = 200
    y = np.tile([0, 1], n // 2).astype(np.int32)
    minority = np.arange(n) < 20
    spurious = np.where(minority, 1 - y, y)
    x = np.stack([(2 * y - 1) + 1.2 * rng.normal(size=n),
                  3.0 * (2 * spurious - 1) + 0.05 * rng.normal(size=n)], 1).astype(np.float32)
    g = (2 * y + minority).astype(np.int32)
    head, gamma, worst = cross_validated_head(jnp.asarray(x), y, g, 2, 4, gammas=(0.0, 1.0),
                                              folds=5)
    assert worst[1] > worst[0] + 0.3 and float(gamma) == 1.0
    # The returned head is the one refitted on all of the split with the chosen weights.
    weights = group_weights(group_counts(jnp.asarray(g), 4), gamma=1.0)[g]
    refit = fit_head(jnp.asarray(x), y, weights, 2)
    np.testing.assert_array_equal(head.kernel, refit.kernel)
    predictions = (x @ np.asarray(head.kernel) + np.asarray(head.bias)).argmax(-1)
    assert (predictions[minority] == y[minority]).mean() >= 0.8
    with pytest.raises(ValueError, match="folds must be an int >= 2"):
        cross_validated_head(jnp.asarray(x), y, g, 2, 4, folds=1)
