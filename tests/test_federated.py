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


def _client_file(path, *, test=True, **override):
    rng = np.random.default_rng(0)
    client = np.repeat([0, 1, 2], 12)
    y = (np.arange(36) + client) % 2
    arrays = {"x": rng.normal(size=(36, 4)) + y[:, None], "y": y, "client": client}
    if test:
        client_test = np.repeat([0, 1, 2], 4)
        y_test = np.arange(12) % 2
        arrays.update(x_test=rng.normal(size=(12, 4)) + y_test[:, None], y_test=y_test,
                      client_test=client_test)
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("test", [True, False])
def test_cli_runs_on_a_user_file_with_client_ids(tmp_path, capsys, test):
    data, out = _client_file(tmp_path / "clients.npz", test=test), tmp_path / "fed.json"
    assert cli.main(["federated", "--dataset", str(data), "--rounds", "1", "--local-steps", "1",
                     "--methods", "local,global", "--seeds", "0", "--json", str(out)]) == 0
    origin = "given" if test else "split per client"
    assert f"{data}, 3 clients, test rows {origin}" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["clients"] == 3 and report["beta"] is None and report["test_rows"] == origin
    assert report["rows"] == ({"train": 36 if test else 24, "test": 12})
    assert set(report["methods"]) == {"local", "global"}


def test_given_test_rows_are_each_clients_own():
    client_test = np.array([0, 1, 1, 2])
    fed = from_client_arrays(np.zeros((6, 2)), np.arange(6) % 2, np.arange(6) // 2,
                             x_test=np.arange(8.0).reshape(4, 2), y_test=np.array([0, 1, 0, 1]),
                             client_test=client_test)
    assert fed.train_counts.tolist() == [2, 2, 2]
    assert fed.test["mask"].sum(axis=1).tolist() == [1, 2, 1]
    np.testing.assert_array_equal(fed.test["x"][1][:2], [[2.0, 3.0], [4.0, 5.0]])
    with pytest.raises(ValueError, match="client 2 has no test rows"):
        from_client_arrays(np.zeros((6, 2)), np.arange(6) % 2, np.arange(6) // 2,
                           x_test=np.zeros((2, 2)), y_test=np.zeros(2, int),
                           client_test=np.array([0, 1]))


@pytest.mark.parametrize("override, message", [
    ({"client": None}, "has no array 'client'"),
    ({"y": np.zeros(35, int)}, "y must have one entry per sample of x"),
    ({"client": np.zeros(30, int)}, "client must hold one integer id"),
    ({"x": np.full((36, 4), np.nan)}, "x must be finite"),
    ({"x_test": np.zeros((12, 3))}, "x_test must have the feature shape of x"),
    ({"client_test": None}, "given test rows need all of"),
    ({"client_test": np.repeat([0, 1], 6)}, "client 2 has no test rows"),
])
def test_a_bad_client_file_is_rejected_in_one_line(tmp_path, override, message):
    data = _client_file(tmp_path / "bad.npz", **override)
    with pytest.raises(SystemExit) as info:
        cli.main(["federated", "--dataset", str(data), "--rounds", "1"])
    text = str(info.value.code)
    assert text.startswith("feasjax federated: error: ") and message in text
    assert "\n" not in text


def test_partition_flags_are_refused_with_a_file(tmp_path):
    data = _client_file(tmp_path / "c.npz")
    with pytest.raises(SystemExit, match="--clients/--beta partition a bundled dataset"):
        cli.main(["federated", "--dataset", str(data), "--clients", "3", "--beta", "1"])
    with pytest.raises(SystemExit, match="cannot read"):
        cli.main(["federated", "--dataset", str(tmp_path / "missing.npz")])
