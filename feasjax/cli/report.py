"""What the commands print and write: the configuration, the results table (a row as each
method finishes), lines that interpret it, and a line for every file written."""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from feasjax.cli.common import run_label

if TYPE_CHECKING:
    from feasjax.data.datasets import Dataset
    from feasjax.experiments.config import RunConfig
    from feasjax.experiments.runs import MethodResult

__all__ = []

# (header, split, metric): accuracies, then each split's mean, q99, max and feasible fraction.
TABLE_COLUMNS = (("train acc", "train", "accuracy"), ("test acc", "test", "accuracy")) + tuple(
    (f"{split} {short}", split, key) for split in ("train", "test") for short, key in (
        ("mean", "mean_loss"), ("q99", "q99_loss"), ("max", "max_loss"),
        ("feas", "feasible_fraction")))


def config_lines(command: str, name: str, config: RunConfig, *, methods: tuple,
                 dataset: Dataset, devices: int, seeds: str | None = None) -> list[str]:
    """The run's configuration, printed before any training."""
    run = f"seeds={seeds}" if seeds else f"seed={config.seed}"
    first = (f"feasjax {command}: {name}, epsilon={config.epsilon}, {run}, "
             f"epochs={config.epochs}, batch size={config.batch_size}")
    classes = (f" ({dataset.num_classes} classes)" if dataset.task == "classification"
               else " (regression)")
    model = config.model + (f" (hidden {','.join(map(str, config.hidden))})"
                            if config.model == "mlp" else "")
    if config.dropout:
        model += (f" (dropout {config.dropout:g}"
                  f"{'' if config.fl_keeps_dropout else ', off in FL/RFL losses'})")
    second = (f"  data {len(dataset.y_train)} train / {len(dataset.y_test)} test{classes}, "
              f"model {model}, lr {config.learning_rate:g}, momentum {config.momentum:g}, "
              f"dual lr {config.dual_learning_rate:g}")
    if "rfl" in methods:
        second += f", alpha {config.alpha:g}"
    if config.average != "none":
        second += f", average {config.average}"
    return [first, second + f", devices {devices}, methods {','.join(methods)}"]


def format_header() -> str:
    """The table's header line."""
    return "method    " + "".join(f"{name:>11}" for name, _, _ in TABLE_COLUMNS)


def format_rows(method: str, result: dict) -> list[str]:
    """The rows of one method: its own, and ``METHOD+AVERAGE`` when it has ``"averaged"``.

    Example:
      >>> from feasjax.cli.report import format_rows
      >>> format_rows("erm", {"train": {"max_loss": 1.0}, "test": {}})[0].split()[:6]
      ['erm', '-', '-', '-', '-', '1.0000']
    """
    rows = [(method, result)]
    if "averaged" in result:
        rows.append((f"{method}+{result['averaged']['average']}", result["averaged"]))
    return [f"{name:<10}" + "".join(_cell(res[split].get(key)) for _, split, key in TABLE_COLUMNS)
            for name, res in rows]


def _cell(value: float | None) -> str:
    return f"{'-':>11}" if value is None else f"{value:>11.4f}"


def _num(x: float) -> str:
    return f"{x:.3f}" if abs(x) >= 0.01 else f"{x:.2g}"


def interpret(methods: dict) -> list[str]:
    """What the table says: FL's and RFL's change of the train max loss against ERM's, at their
    test accuracy (or mean loss), and whether the test max loss got worse."""
    base, lines = methods.get("erm"), []
    for method in ("fl", "rfl"):
        result, name = methods.get(method), method.upper()
        if base is None or result is None:
            continue
        before, after = base["train"].get("max_loss"), result["train"].get("max_loss")
        if None in (before, after) or not all(map(math.isfinite, (before, after))):
            continue
        if math.isclose(after, before, rel_tol=0.05):  # "1.0x" says nothing
            verb = "left the train max loss about as it was"
        elif after < before:
            verb = (f"cut the train max loss {before / after:.1f}x" if after > 0 else
                    "cut the train max loss to zero")
        else:
            verb = (f"raised the train max loss {after / before:.1f}x" if before > 0 else
                    "raised the train max loss")
        if "accuracy" in result["test"] and "accuracy" in base["test"]:
            at = (f"at test accuracy {100 * result['test']['accuracy']:.1f}% vs ERM's "
                  f"{100 * base['test']['accuracy']:.1f}%")
        else:
            at = (f"at test mean loss {_num(result['test']['mean_loss'])} vs ERM's "
                  f"{_num(base['test']['mean_loss'])}")
        lines.append(f"{name} {verb} ({_num(before)} -> {_num(after)}) {at}.")
        test_before, test_after = base["test"].get("max_loss"), result["test"].get("max_loss")
        if None not in (test_before, test_after) and test_after > test_before:
            lines.append(f"  {name}'s test max loss is higher ({_num(test_after)} vs "
                         f"{_num(test_before)}): ε bounds the training losses only.")
    return lines


def write_json(path: str | None, report: dict, what: str = "the results as JSON") -> None:
    """Write ``report`` to ``path`` (``--json``, if given) as indented JSON and say so."""
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {path}: {what}")


def run_methods(args: argparse.Namespace, name: str, config: RunConfig,
                run: Callable[[str, str], MethodResult]) -> dict:
    """``demo``'s and ``train``'s output: the table (a method's rows as ``run(method, label)``
    returns them), what it says, ``--json`` and ``--plot``; returns the JSON report."""
    print(format_header(), flush=True)
    report = {"dataset": name, "epsilon": config.epsilon, "seed": config.seed, "methods": {}}
    curves = {}
    for i, method in enumerate(args.methods):
        result = run(method, run_label(method, i, args.methods))
        report["methods"][method] = result.metrics
        curves[method] = {"train": result.train_losses, "test": result.test_losses}
        print("\n".join(format_rows(method, result.metrics)), flush=True)
    for line in interpret(report["methods"]):
        print(line)
    write_json(args.json, report, "the metrics as JSON")
    if args.plot:
        from feasjax.metrics.plotting import plot_loss_survival

        plot_loss_survival(curves, config.epsilon, args.plot,
                           title=f"{name}, {config.epochs} epochs, seed {config.seed}")
        print(f"wrote {args.plot}: per-sample loss survival curves, train and test (PNG)")
    return report
