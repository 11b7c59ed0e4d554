"""``feasjax groups``: worst-group accuracy of ERM, re-weighting, LLR, FairDropout, group DRO,
FL and RFL on a spurious-correlation benchmark (or your arrays with a ``group`` per sample).

``--json PATH`` writes::

    {"dataset": str, "seeds": [int],
     "splits": {"train": int, "val": int, "test": int}, "given": ["val", "test"],
     "group_counts": {"train": [per group], "val": [...], "test": [...]},
     "absent_groups": {"val": [group], "test": [group]},
     "methods": {NAME: {"test": {"average_accuracy": [per seed],
                                 "worst_group_accuracy": [per seed],
                                 "balanced_accuracy": [per seed],
                                 "group_accuracy": {"<group>": [per seed]}},
                        "selected": {...}, "seconds": float}
                       | {"skipped": str}}}

``given``: the splits taken from the file (``x_val``/``y_val``/``group_val``, ``x_test``/
``y_test``/``group_test``; a missing one is cut from ``x``); ``group_counts``: the first seed's.
A group without test rows has accuracy ``null`` (worst-group and balanced accuracies are over
the others); a method that selects on validation (``reweight``, ``groupdro``, ``llr``) is
skipped, with the reason, when a group has no validation row. The benchmarks' groups are
``2 * label + attribute`` (``spurious_digits``: label ``digit >= 5``, attribute the frame;
``spurious_tabular``: a spurious feature).
"""
from __future__ import annotations

import argparse

import numpy as np

from feasjax.cli.common import (_positive_int, add_methods, add_outputs, add_script_flags,
                                add_seeds)
from feasjax.cli.report import write_json
from feasjax.data._npz import read_npz
from feasjax.experiments.config import GROUP_METHODS, RunConfig

__all__ = []

BENCHMARKS = ("spurious_digits", "spurious_tabular")
SPLIT_ARRAYS = ("group", "x_val", "y_val", "group_val", "x_test", "y_test", "group_test")
# Methods that choose hyper-parameters by validation worst-group accuracy (LLR: by
# cross-validation over the groups of the validation split); an absent group makes it blind.
SELECT_ON_VAL = ("reweight", "groupdro", "llr")


def add_groups_parser(commands: argparse._SubParsersAction) -> None:
    """The ``feasjax groups`` command."""
    p = commands.add_parser("groups", help="worst-group accuracy on a spurious-correlation "
                                           "benchmark")
    p.add_argument("--dataset", default="spurious_digits",
                   help="spurious_digits, spurious_tabular, or an .npz with arrays x, y and "
                        "group (optional: x_val, y_val, group_val, x_test, y_test, group_test)")
    add_methods(p, GROUP_METHODS)
    add_seeds(p, (0, 1, 2, 3, 4), "e.g. 0-4 or 0,3")
    p.add_argument("--epochs", type=_positive_int, default=RunConfig().epochs,  # GroupConfig's
                   help="training epochs of every method")
    add_outputs(p, "bar chart of per-group test accuracy")
    add_script_flags(p, shows_progress=False)
    p.set_defaults(handler=groups_command)


def _datasets(name: str, seeds) -> list:
    from feasjax.data.spurious import group_dataset, spurious_digits
    from feasjax.data.tabular import spurious_tabular

    if name in BENCHMARKS:
        make = spurious_digits if name == "spurious_digits" else spurious_tabular
        return [make(s) for s in seeds]
    try:  # every problem of the file is reported before any training
        arrays = read_npz(name, SPLIT_ARRAYS)
        if "group" not in arrays:
            raise ValueError("the .npz needs a 'group' array (an int group per sample)")
        return [group_dataset(**arrays, seed=s, name=name) for s in seeds]
    except ValueError as e:
        raise SystemExit(f"feasjax groups: error: --dataset {name}: {e}") from None


def _splits(datasets: list) -> dict:
    """Sizes, origin and group counts of the splits, and the groups absent from one."""
    data = datasets[0]
    absent = {s: sorted({g for d in datasets for g, c in enumerate(d.group_counts()[s]) if c == 0})
              for s in ("val", "test")}
    return {"splits": {s: len(getattr(data, f"y_{s}")) for s in ("train", "val", "test")},
            "given": list(data.given), "group_counts": data.group_counts(),
            "absent_groups": {s: g for s, g in absent.items() if g}}


def _print_splits(info: dict, seeds: list, benchmark: bool) -> None:
    origin = {s: "given" if s in info["given"] else f"cut from x, stratified by group, "
              f"seed {'/'.join(map(str, seeds))}" for s in ("val", "test")}
    origin["train"] = "x" if len(info["given"]) == 2 else "the rest of x"
    if benchmark:
        origin = dict.fromkeys(origin, "the benchmark's split")
    for s in ("train", "val", "test"):
        print(f"{s:<5} split: {info['splits'][s]:>6} rows ({origin[s]}); per group "
              f"{info['group_counts'][s]}")
    for s, groups in info["absent_groups"].items():
        print(f"warning: group(s) {groups} have no {s} rows: " + (
            "worst-group and balanced test accuracies are over the other groups" if s == "test"
            else f"{', '.join(SELECT_ON_VAL)} cannot select on validation and are skipped"))


def format_groups_table(methods: dict) -> str:
    """Average and worst-group test accuracy, mean ± std over seeds, one line per method.

    Example:
      >>> from feasjax.cli.groups import format_groups_table
      >>> print(format_groups_table({"erm": {"test": {"average_accuracy": [0.8, 0.9],
      ...     "worst_group_accuracy": [0.5, 0.7]}, "seconds": 1.0}}))
      method        average acc     worst-group acc  seconds
      erm         0.850 ± 0.050     0.600 ± 0.100      1.0
    """
    lines = [f"{'method':<12}{'average acc':>13}{'worst-group acc':>20}{'seconds':>9}"]
    for name, res in methods.items():
        if "skipped" in res:
            lines.append(f"{name:<12}skipped: {res['skipped']}")
            continue
        cells = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in
                 (res["test"]["average_accuracy"], res["test"]["worst_group_accuracy"])]
        lines.append(f"{name:<12}{cells[0]:>13}{cells[1]:>18}{res['seconds']:>9.1f}")
    return "\n".join(lines)


def groups_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax groups``: train every method for every seed, print the table."""
    from feasjax.experiments.groups import GroupConfig

    seeds = list(args.seeds)
    datasets = _datasets(args.dataset, seeds)
    info = _splits(datasets)
    _print_splits(info, seeds, args.dataset in BENCHMARKS)
    config, cache = GroupConfig(epochs=args.epochs), {}
    methods = {m: _run(m, datasets, seeds, config, cache, info["absent_groups"])
               for m in args.methods}
    report = {"dataset": datasets[0].name, "seeds": seeds, **info, "methods": methods}
    print(format_groups_table(methods))
    write_json(args.json, report)
    if args.plot:
        # Lazy: matplotlib takes seconds to import, and only --plot needs it.
        from feasjax.metrics.plotting import plot_group_accuracy

        plot_group_accuracy({m: {g: [np.nan if a is None else a for a in accs]
                                 for g, accs in res["test"]["group_accuracy"].items()}
                             for m, res in methods.items() if "test" in res}, args.plot)
        print(f"wrote {args.plot}: per-group test accuracy of every method (PNG)")
    return report


def _run(method: str, datasets: list, seeds: list, config, cache: dict, absent: dict) -> dict:
    from feasjax.experiments.groups import run_group_method

    if method in SELECT_ON_VAL and absent.get("val"):
        return {"skipped": f"selects on validation, where group(s) {absent['val']} have no rows"}
    result = run_group_method(method, datasets, seeds, config, cache=cache)
    # A group without test rows has no accuracy: null in the JSON, not nan.
    result["test"]["group_accuracy"] = {
        g: [None if np.isnan(a) else a for a in accs]
        for g, accs in result["test"]["group_accuracy"].items()}
    return result
