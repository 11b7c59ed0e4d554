"""Federated rounds, personalization, prompt portfolios, the mean-estimation check, the CLI."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax import cli
from feasjax.data.federated import (dirichlet_partition, federated_dataset, from_client_arrays,
                                    pad_clients)
from feasjax.federated import (client_update, federated_averaging, held_out_split,
                               mean_estimation, portfolio_loss, portfolio_params)


def _loss(w, b):
    return 0.5 * (b["x"] @ w - b["y"]) ** 2


def _clients(sizes, d=3, seed=0, length=8):
    rng = np.random.default_rng(seed)
    rows = [(rng.standard_normal((n, d)).astype(np.float32),
             rng.standard_normal(n).astype(np.float32)) for n in sizes]
    return pad_clients(rows, length=length), rows


LR = 0.1
FEDAVG = federated_averaging(_loss, optax.sgd(LR), local_steps=1)  # compiled once, shared


@pytest.mark.parametrize("sizes", [(6,) * 8, (5, 3, 4, 6, 2, 0, 0, 0)])
def test_fedavg_one_full_batch_sgd_step_equals_gradient_descent_on_the_union(sizes):
    """Issue acceptance: 1 local full-batch SGD step, server lr 1, full participation: GD on the
    union. With unequal sizes (and empty clients) the size weighting and masks make it hold."""
    padded, rows = _clients(sizes)
    x, y = (np.concatenate(v) for v in zip(*rows))
    fed, lr = FEDAVG, LR
    state, w = fed.init(jnp.zeros(3)), jnp.zeros(3)
    union = lambda w: jnp.mean(_loss(w, {"x": x, "y": y}))  # noqa: E731
    for r in range(3):
        state, _ = fed.round(state, jax.tree.map(jnp.asarray, padded), jax.random.key(r))
        w = w - lr * jax.grad(union)(w)
    np.testing.assert_allclose(state.params, w, rtol=1e-5, atol=1e-6)
    assert int(state.round) == 3


def test_round_on_eight_devices_equals_the_round_on_one():
    padded, _ = _clients((5, 3, 4, 6, 2, 0, 0, 0))  # 3 empty clients pad the client axis
    eight = federated_averaging(_loss, optax.sgd(LR), local_steps=1, mesh=fj.data_mesh(8))
    clients = jax.tree.map(jnp.asarray, padded)
    s1, s8 = FEDAVG.init(jnp.zeros(3)), eight.init(jnp.zeros(3))
    for r in range(2):
        s1, _ = FEDAVG.round(s1, clients, jax.random.key(r))
        s8, _ = eight.round(s8, clients, jax.random.key(r))
    chex.assert_trees_all_close(s1, s8, rtol=1e-6, atol=1e-6)
    assert s8.params.sharding.is_fully_replicated
    with pytest.raises(ValueError, match="multiple of the mesh's 8 devices"):
        eight.round(s8, jax.tree.map(lambda v: v[:5], clients), jax.random.key(0))


def test_server_ema_reuses_feasjax_averaging():
    padded, _ = _clients((4, 4))
    server = fj.averaged(optax.sgd(1.0), fj.ema(0.5))
    fed = federated_averaging(_loss, optax.sgd(0.2), local_steps=2, server_optimizer=server)
    state = fed.init(jnp.zeros(3))
    average = state.params
    for r in range(3):
        state, _ = fed.round(state, jax.tree.map(jnp.asarray, padded), jax.random.key(r))
        average = 0.5 * average + 0.5 * state.params
    np.testing.assert_allclose(fj.averaged_params(state.server_state, state.params), average,
                               rtol=1e-6)


def test_bad_clients_and_coefficients_are_refused():
    with pytest.raises(ValueError, match="keys 'x', 'y', 'mask'"):
        FEDAVG.round(FEDAVG.init(jnp.zeros(3)), {"x": jnp.ones((2, 4, 3)),
                                                 "y": jnp.ones((2, 4))}, jax.random.key(0))
    with pytest.raises(ValueError, match="local_steps must be a positive int"):
        federated_averaging(_loss, optax.sgd(0.1), local_steps=0)
    with pytest.raises(ValueError, match="theta must be in"):
        portfolio_params(jax.random.key(0), 3, 4, num_clients=2, theta=1.5)


def test_minibatches_draw_only_real_rows():
    client = {"x": jnp.ones((4, 1)), "y": jnp.array([1.0, 1.0, 50.0, 50.0]),
              "mask": jnp.array([True, True, False, False])}
    w = client_update(_loss, optax.sgd(0.5), 40, batch_size=3)(jnp.zeros(1), client,
                                                                jax.random.key(0))
    np.testing.assert_allclose(w, [1.0], atol=1e-4)


def test_personal_parameters_are_kept_and_theta_splits_the_gradient():
    """theta = 0 trains only the global prompts, theta = 1 only the local ones; a learned theta
    moves inside (0, 1) and stays at its ends (the sigmoid's gradient vanishes there)."""
    clients = {"x": jnp.eye(4)[None].repeat(2, 0), "y": jnp.array([[0, 1, 2, 0], [1, 1, 2, 2]]),
               "mask": jnp.ones((2, 4), bool)}
    fed = federated_averaging(portfolio_loss(lambda f: f, learn_theta=True), optax.sgd(1.0),
                              local_steps=2)
    for theta in (0.0, 1.0, 0.5):
        g, personal = portfolio_params(jax.random.key(0), 3, 4, num_clients=2, theta=theta)
        personal["prompts"] = personal["prompts"] + jax.random.normal(jax.random.key(2),
                                                                      (2, 3, 4))
        state, new = fed.round(fed.init(g), clients, jax.random.key(1), personal)
        moved = [not np.allclose(a, b) for a, b in ((state.params, g),
                                                    (new["prompts"], personal["prompts"]),
                                                    (new["theta_logit"], personal["theta_logit"]))]
        assert moved == [theta < 1, theta > 0, 0 < theta < 1], theta


def test_dirichlet_partition_skews_labels_more_for_small_beta():
    labels = np.repeat(np.arange(10), 100)
    classes = {}
    for beta in (0.1, 100.0):
        ids = dirichlet_partition(labels, 10, beta, seed=0)
        assert ids.shape == labels.shape and np.bincount(ids, minlength=10).min() >= 2
        classes[beta] = np.mean([np.sum(np.bincount(labels[ids == k], minlength=10) >= 5)
                                 for k in range(10)])
    assert classes[0.1] < 5 < classes[100.0]
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        dirichlet_partition(labels, 10, 0.0)


def test_federated_data_keeps_every_sample_once_with_masks():
    fed = federated_dataset("digits", num_clients=5, beta=0.5, feature_shift=1.0)
    n = int(fed.train["mask"].sum() + fed.test["mask"].sum())
    assert n == 1797 and fed.num_clients == 5 and fed.num_classes == 10
    for split in (fed.train, fed.test):  # real rows first
        counts = split["mask"].sum(1)
        assert (split["mask"] == (np.arange(split["mask"].shape[1]) < counts[:, None])).all()
    with pytest.raises(ValueError, match="classification"):
        federated_dataset("diabetes")


def test_user_arrays_with_a_client_id():
    x, y = np.arange(24.0).reshape(12, 2), np.arange(12) % 3
    fed = from_client_arrays(x, y, np.repeat([0, 1, 2], 4), test_fraction=0.25)
    assert fed.num_clients == 3 and fed.train_counts.tolist() == [3, 3, 3]
    assert set(fed.train["x"][0, :, 0].tolist()) <= set(range(0, 8, 2))  # client 0: rows 0-3
    with pytest.raises(ValueError, match="client must hold one integer id"):
        from_client_arrays(x, y, np.zeros(5, int))
    with pytest.raises(ValueError, match="client 1 has 1 samples"):
        from_client_arrays(x, y, np.array([0] * 11 + [1]))


def test_held_out_split_partitions_each_clients_rows():
    padded, _ = _clients((5, 2, 10), length=10)
    fit, held = held_out_split(jax.tree.map(jnp.asarray, padded), 0.2)
    assert np.asarray(fit["mask"].sum(1)).tolist() == [4, 1, 8]
    assert not np.any(fit["mask"] & held["mask"])
    np.testing.assert_array_equal(fit["mask"] | held["mask"], padded["mask"])


def test_mean_estimation_matches_the_closed_form():
    """A small version of the 200-repetition grid of benchmarks/federated_theory.py."""
    res = mean_estimation(jax.random.key(0), num_clients=6, dim=20, repetitions=100,
                          variance=1.0, bias=1.0)
    np.testing.assert_allclose(res.alpha_mse, res.alpha_star, atol=0.08)
    assert abs(float(jnp.mean(res.alpha_estimated.mean(0) - res.alpha_star))) < 0.05
    grid = jnp.linspace(0.0, 1.0, 41)
    away = jnp.abs(grid[None, :] - 2 * res.alpha_star[:, None]) > 0.1
    assert bool(jnp.all((res.helps_predicted == res.helps_observed) | ~away))
    assert not bool(res.helps_predicted[:, 0].any())


def test_cli_writes_the_documented_json_and_a_png(tmp_path, capsys):
    out, png = tmp_path / "fed.json", tmp_path / "fed.png"
    cli.main(["federated", "--dataset", "breast_cancer", "--clients", "2", "--rounds", "1",
              "--local-steps", "1", "--seeds", "0-1", "--methods", "mix,portfolio", "--json",
              str(out), "--plot", str(png)])
    printed = capsys.readouterr().out
    assert "mean client acc" in printed
    assert f"wrote {out}: the results as JSON" in printed and f"wrote {png}: " in printed
    report = json.loads(out.read_text())
    assert {k: report[k] for k in ("dataset", "clients", "beta", "seeds")} == {
        "dataset": "breast_cancer", "clients": 2, "beta": 0.3, "seeds": [0, 1]}
    assert set(report["methods"]) == {"mix", "portfolio"}  # the others: their stages
    for m in report["methods"].values():
        assert len(m["mean_client_accuracy"]) == len(m["worst_client_accuracy"]) == 2
        assert all(w <= a for w, a in zip(m["worst_client_accuracy"], m["mean_client_accuracy"]))
        assert isinstance(m["seconds"], float)
    mix, portfolio = report["methods"]["mix"], report["methods"]["portfolio"]
    assert len(mix["alpha"]) == 2 and all(0 <= a <= 1 for a in mix["alpha"])
    assert len(portfolio["best_theta"]) == 2 and portfolio["theta"] == 0.5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--methods", "local,oracle"], "--methods must be a comma-separated subset"),
    (["--clients", "0"], "must be a positive integer"),
    (["--beta", "0"], "must be a finite number > 0"),
    (["--theta", "0.55"], "multiple of 0.1"),
])
def test_bad_flags_are_rejected(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(["federated", *argv])
    assert message in capsys.readouterr().err


def test_too_many_clients_fail_in_one_line():
    with pytest.raises(SystemExit, match="feasjax federated: error: .*clients"):
        cli.main(["federated", "--dataset", "breast_cancer", "--clients", "400"])
