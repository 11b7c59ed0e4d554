"""What a new user sees: help with defaults, --version, bare `feasjax`, progress per epoch and
the lines that interpret the table. The end-to-end runs that check the configuration and header
before training, the rows, the interpretation and the written-files lines extend the runs that
tests/test_cli.py, test_cli_train.py and test_scaleout.py (--average with --seeds) already make,
so that they compile nothing more."""
import argparse

import jax
import jax.numpy as jnp
import optax
import pytest

import feasjax as fj
from feasjax import cli
from feasjax.cli.common import DefaultsHelpFormatter
from feasjax.cli.report import interpret

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
    demo = " ".join(commands["demo"].format_help().split())
    assert "(default: 30)" in demo and "(default: erm,fl,rfl)" in demo


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
    same = {"erm": _metrics(5.454, 0.902, 9.0), "fl": _metrics(5.40, 0.902, 9.0)}
    assert interpret(same) == ["FL left the train max loss about as it was (5.454 -> 5.400) at "
                               "test accuracy 90.2% vs ERM's 90.2%."]


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
