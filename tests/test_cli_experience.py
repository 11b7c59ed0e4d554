"""What a new user sees: help, --version, bare `feasjax`, the configuration and header before
training, progress per epoch, interpreted results, a line per file written, --average with
--seeds. End-to-end runs use breast_cancer (398 training samples) and one or two epochs."""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax import cli
from feasjax.cli.common import DefaultsHelpFormatter
from feasjax.cli.report import interpret
from feasjax.data.datasets import load_dataset
from feasjax.experiments import RunConfig, run_method

SMALL = ["--dataset", "breast_cancer", "--devices", "1", "--no-progress"]


def test_bare_feasjax_prints_help_and_exits_0(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: feasjax") and "demo" in out and "train" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"feasjax {fj.__version__}"


def _subcommands(parser):
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_every_option_has_help_with_its_default_and_no_rest_markup():
    parser = cli.app.build_parser()
    commands = _subcommands(parser)
    assert {"demo", "train"} <= set(commands)
    formatter = DefaultsHelpFormatter("feasjax")
    for name, sub in {"feasjax": parser, **commands}.items():
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text, name
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, argparse.SUPPRESS) and not isinstance(
                    action.default, bool):
                assert "default" in formatter._get_help_string(action), (
                    f"{name} {action.option_strings}: the help does not show the default")
    assert "(default: 30)" in commands["demo"].format_help()
    assert "(default: erm,fl,rfl)" in commands["demo"].format_help()


def _metrics(train_max, test_acc, test_max, test_mean=0.1):
    return {"train": {"max_loss": train_max},
            "test": {"accuracy": test_acc, "max_loss": test_max, "mean_loss": test_mean}}


def test_interpretation_is_computed_from_the_results():
    methods = {"erm": _metrics(0.190, 0.974, 5.0), "fl": _metrics(0.057, 0.972, 7.5),
               "rfl": _metrics(0.380, 0.976, 4.0)}
    assert interpret(methods) == [
        "FL cut the train max loss 3.3x (0.190 -> 0.057) at test accuracy 97.2% vs ERM's 97.4%.",
        "  FL's test max loss is higher (7.500 vs 5.000): ε bounds the training losses only.",
        "RFL raised the train max loss 2.0x (0.190 -> 0.380) at test accuracy 97.6% vs ERM's "
        "97.4%.",
    ]
    regression = {m: {"train": {"max_loss": v}, "test": {"mean_loss": v / 10, "max_loss": 1.0}}
                  for m, v in (("erm", 4.0), ("fl", 1.0))}
    assert interpret(regression) == [
        "FL cut the train max loss 4.0x (4.000 -> 1.000) at test mean loss 0.100 vs ERM's 0.400."]
    assert interpret({"fl": methods["fl"]}) == []  # nothing to compare with


def test_bar_advances_every_epoch_and_lines_print_one_per_epoch(capsys):
    erm = fj.empirical_risk(fj.per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
    kw = dict(epochs=3, batch_size=2, key=jax.random.key(0), epsilon=0.5)
    fj.train(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), progress=True, **kw)
    bar = capsys.readouterr().err
    assert all(f"{e}/3" in bar for e in (1, 2, 3)), bar
    assert "loss 3.1" in bar and "feasible" in bar  # the first epoch's summary, in the postfix
    fj.train(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), progress="lines", **kw)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("  ")[0] for line in lines] == [f"train epoch {e}/3" for e in (1, 2, 3)]
    with pytest.raises(ValueError, match="progress must be True, False, 'bar' or 'lines'"):
        fj.train(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), progress="yes", **kw)


def test_demo_says_what_it_runs_before_training_then_rows_lines_and_files(tmp_path, capsys,
                                                                        monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(capsys.readouterr())  # what was printed before this method trained
        return run_method(*args, **kwargs)

    monkeypatch.setattr(cli.demo, "run_method", spy)
    json_path, png_path = tmp_path / "m.json", tmp_path / "p.png"
    cli.main(["demo", *SMALL, "--methods", "erm,fl", "--epochs", "2", "--batch-size", "128",
              "--json", str(json_path), "--plot", str(png_path)])
    before = seen[0].out.splitlines()
    assert before[0] == ("feasjax demo: breast_cancer, epsilon=0.1, seed=0, epochs=2, "
                         "batch size=128")
    assert "398 train / 171 test (2 classes)" in before[1] and "methods erm,fl" in before[1]
    assert before[2].split()[:3] == ["method", "train", "acc"] and len(before) == 3
    assert seen[1].out.startswith("erm ")  # erm's row, printed before fl trained
    assert seen[1].err.splitlines()[-1].startswith("erm (1/2) epoch 2/2  loss ")
    out, err = capsys.readouterr()
    assert out.startswith("fl ")
    assert [line.split("  ")[0] for line in err.splitlines()] == ["fl (2/2) epoch 1/2",
                                                                  "fl (2/2) epoch 2/2"]
    assert "mult_mean" in err and "mult_max" in err and "feasible" in err
    report = json.loads(json_path.read_text())
    erm, fl = (report["methods"][m]["train"]["max_loss"] for m in ("erm", "fl"))
    assert f"FL {'cut' if fl < erm else 'raised'} the train max loss" in out
    assert f"wrote {json_path}: the metrics as JSON" in out
    assert f"wrote {png_path}: per-sample loss survival curves" in out
    assert png_path.read_bytes()[:4] == b"\x89PNG"


def test_average_with_seeds_reports_the_averaged_model_of_every_seed(tmp_path, capsys):
    json_path = tmp_path / "s.json"
    cli.main(["demo", *SMALL, "--methods", "fl", "--seeds", "0,1", "--average", "ema",
              "--epochs", "1", "--batch-size", "128", "--json", str(json_path)])
    out = capsys.readouterr().out
    assert out.count("\nfl+ema ") == 2  # mean and std tables
    assert f"wrote {json_path}" in out
    fl = json.loads(json_path.read_text())["methods"]["fl"]
    for stat in ("mean", "std"):
        assert fl[stat]["averaged"]["average"] == "ema"
        assert {"accuracy", "max_loss"} <= set(fl[stat]["averaged"]["test"])
    runs = fl["runs"]
    assert [r["averaged"]["average"] for r in runs] == ["ema", "ema"]
    assert runs[0]["averaged"]["train"]["mean_loss"] != runs[0]["train"]["mean_loss"]
    mean = np.mean([r["averaged"]["test"]["mean_loss"] for r in runs])
    assert fl["mean"]["averaged"]["test"]["mean_loss"] == pytest.approx(mean)
    # Seed 1 of the sweep is the lone run of seed 1, its average included.
    config = RunConfig(epochs=1, batch_size=128, seed=1, average="ema", devices=1)
    alone = run_method(load_dataset("breast_cancer"), "fl", config, progress=False).metrics
    for split in ("train", "test"):
        for key, value in alone["averaged"][split].items():
            assert runs[1]["averaged"][split][key] == pytest.approx(value, rel=1e-4, abs=1e-6)


def test_train_says_where_it_wrote_losses_and_checkpoints(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "blobs.npz"
    np.savez(data, x=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    losses, ck = tmp_path / "l.npz", tmp_path / "ck"
    cli.main(["train", "--data", str(data), "--methods", "fl", "--epochs", "1", "--batch-size",
              "8", "--no-progress", "--save-losses", str(losses), "--checkpoint-dir", str(ck)])
    out = capsys.readouterr().out
    assert out.startswith("feasjax train: blobs, epsilon=0.1, seed=0, epochs=1, batch size=8")
    assert f"wrote {losses}: per-sample losses, multipliers and split indices" in out
    assert f"wrote {ck / 'fl'}: checkpoints of fl" in out
    assert losses.exists() and any((ck / "fl").iterdir())
