"""Sweeps by vmap, the multi-host path (2 processes x 2 CPU devices), the launcher, the CLI."""
import importlib.util
import json
import os
import pathlib
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax import parallel
from feasjax.cli import main
from feasjax.data.datasets import load_dataset
from feasjax.experiments import RunConfig, run_method
from feasjax.experiments.multirun import run_method_sweep
from feasjax.parallel import distributed, sweeps
from feasjax.parallel.launch import launch
from tests._helpers import squared_errors

HERE = pathlib.Path(__file__).parent


def _limit(seconds: float) -> float:
    """A wall-clock limit that only catches hangs: generous, scaled by
    ``FEASJAX_TEST_TIMEOUT_SCALE`` on slow or loaded machines (the 2-process run takes ~70 s on
    2 busy cores)."""
    return seconds * float(os.environ.get("FEASJAX_TEST_TIMEOUT_SCALE", "1"))


def test_sweep_of_seeds_equals_sequential_runs():
    dataset, config = load_dataset("digits"), RunConfig(epochs=2, devices=1)
    sweep = run_method_sweep(dataset, "fl", config, [0, 1, 2], progress=False)
    for r, seed in enumerate([0, 1, 2]):
        alone = run_method(dataset, "fl", config._replace(seed=seed), progress=False)
        chex.assert_trees_all_close(jax.tree.map(lambda x, r=r: x[r], sweep.states.params),
                                    alone.state.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sweep.states.multipliers[fj.SAMPLES][r],
                                   alone.state.multipliers[fj.SAMPLES], rtol=1e-5, atol=1e-6)
        assert sweep.runs[r]["test"]["accuracy"] == pytest.approx(
            alone.metrics["test"]["accuracy"], abs=1e-9)
    accs = [run["test"]["accuracy"] for run in sweep.runs]
    assert sweep.summary["test"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert sweep.summary["test"]["accuracy"]["std"] == pytest.approx(np.std(accs))


def _toy(n=40):
    x = jax.random.normal(jax.random.key(0), (n, 3))
    return {"x": x, "y": x @ jnp.array([1.0, -2.0, 0.5])}


def test_sweep_over_epsilon_on_the_mesh_equals_separate_mesh_runs():
    mesh = parallel.data_mesh(4)
    data, layout = parallel.shard_data(jax.device_get(_toy()), mesh)

    def make(h):
        return fj.feasible_learning(squared_errors, optax.sgd(0.05),
                                    num_samples=layout.local_size,
                                    epsilon=h["epsilon"], axis_name="data")

    eps = jnp.array([0.01, 0.5])
    keys = jax.vmap(jax.random.key)(jnp.array([3, 4]))
    states = parallel.init_sharded(make({"epsilon": 0.1}), jnp.zeros((2, 3)), mesh, layout,
                                   runs=True)
    runner = sweeps.sweep_epoch(make, 8, mesh=mesh, layout=layout)
    states, _ = sweeps.train_sweep(runner, states, data, epochs=3, keys=keys,
                                   hparams={"epsilon": eps}, progress=False)
    for r in range(2):
        solver = make({"epsilon": float(eps[r])})
        state, _ = fj.train(solver, parallel.init_sharded(solver, jnp.zeros(3), mesh, layout),
                            data, epochs=3, batch_size=8, key=keys[r], progress=False,
                            epoch_runner=parallel.data_parallel_epoch(solver, 8, mesh, layout))
        np.testing.assert_allclose(states.params[r], state.params, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(states.multipliers[fj.SAMPLES][r],
                                   state.multipliers[fj.SAMPLES], rtol=1e-5, atol=1e-7)
    assert not np.allclose(states.multipliers[fj.SAMPLES][0], states.multipliers[fj.SAMPLES][1])


def _worker():
    spec = importlib.util.spec_from_file_location("multihost_worker", HERE / "multihost_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_processes_of_two_cpu_devices_reproduce_one_process_of_four(tmp_path):
    out = tmp_path / "multihost.json"
    limit = _limit(900)
    codes = launch([str(HERE / "multihost_worker.py"), str(out)], processes=2,
                   devices_per_process=2, timeout=limit,
                   env={"PYTHONPATH": os.pathsep.join([str(HERE.parent),
                                                       os.environ.get("PYTHONPATH", "")])})
    assert codes == [0, 0], f"exit codes {codes} (negative: stopped, after {limit:.0f} s?)"
    got = json.loads(out.read_text())
    want = _worker().train_digits(parallel.data_mesh(4))
    assert got["processes"] == 2 and want["processes"] == 1
    for g, w in zip(got["params"], want["params"]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["multipliers"], want["multipliers"], rtol=1e-5, atol=1e-6)
    assert len(got["multipliers"]) == 203
    for key, value in want["summary"].items():
        assert got["summary"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    np.testing.assert_allclose(got["mean_loss"], want["mean_loss"], rtol=1e-5)


@pytest.mark.parametrize("args, match", [
    (("127.0.0.1:1234", 2, 2), r"process_id must be in \[0, 2\) \(num_processes=2\)"),
    (("127.0.0.1:1234", 2, -1), r"process_id must be in \[0, 2\)"),
    (("127.0.0.1:1234", 0, 0), "num_processes must be >= 1"),
    (("127.0.0.1:1234", "two", 0), "num_processes must be an integer"),
    (("127.0.0.1", 2, 0), "coordinator_address must be 'host:port'"),
])
def test_inconsistent_process_arguments_fail_fast(args, match):
    with pytest.raises(ValueError, match=match):
        distributed.initialize(*args)


def test_process_arguments_from_the_environment_are_checked(monkeypatch):
    monkeypatch.setenv("FEASJAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    monkeypatch.setenv("FEASJAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("FEASJAX_PROCESS_ID", "5")
    with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\)"):
        distributed.initialize()


def test_launcher_stops_the_others_when_one_process_fails():
    limit = _limit(300)  # process 0 would sleep past it: only the failure of 1 can stop it
    script = ("import os, sys, time\n"
              f"sys.exit(3) if os.environ['FEASJAX_PROCESS_ID'] == '1' else "
              f"time.sleep({2 * limit})")
    start = time.monotonic()
    codes = launch(["-c", script], processes=2, timeout=limit)
    assert codes[1] == 3 and codes[0] < 0  # process 0 was stopped, not left waiting
    assert time.monotonic() - start < limit  # by the failure of 1, not by the limit
    with pytest.raises(ValueError, match="processes must be a positive int"):
        launch(["-c", "pass"], processes=0)


def test_demo_with_seeds_and_devices_reports_mean_and_std(tmp_path, capsys):
    path = tmp_path / "sweep.json"
    main(["demo", "--seeds", "0-1", "--devices", "2", "--epochs", "1", "--methods", "fl",
          "--average", "ema", "--no-progress", "--json", str(path)])
    report = json.loads(path.read_text())
    assert report["seeds"] == [0, 1] and report["devices"] == 2
    fl = report["methods"]["fl"]
    assert len(fl["runs"]) == 2 and set(fl["mean"]) == {"train", "test", "averaged"}
    accs = [run["test"]["accuracy"] for run in fl["runs"]]
    assert fl["mean"]["test"]["accuracy"] == pytest.approx(np.mean(accs))
    assert fl["std"]["test"]["q99_loss"] >= 0
    # --average with --seeds: every run's averaged model, and its mean and std.
    assert [run["averaged"]["average"] for run in fl["runs"]] == ["ema", "ema"]
    averaged = [run["averaged"]["test"]["mean_loss"] for run in fl["runs"]]
    assert fl["mean"]["averaged"]["test"]["mean_loss"] == pytest.approx(np.mean(averaged))
    assert fl["std"]["averaged"]["test"]["mean_loss"] == pytest.approx(np.std(averaged))
    assert averaged[0] != fl["runs"][0]["test"]["mean_loss"]  # another model than the raw one
    out = capsys.readouterr().out
    assert "std over seeds" in out and out.count("\nfl+ema ") == 2  # mean and std tables
    assert f"wrote {path}: the metrics of every seed" in out
    with pytest.raises(SystemExit):
        main(["demo", "--seeds", "x-y"])
