"""``feasjax groups``: worst-group accuracy of ERM, re-weighting, LLR, FairDropout, group DRO,
FL and RFL on a spurious-correlation benchmark (or your arrays with a ``group`` per sample).

``--json PATH`` writes::

    {"dataset": str, "seeds": [int],
     "methods": {NAME: {"test": {"average_accuracy": [per seed],
                                 "worst_group_accuracy": [per seed],
                                 "balanced_accuracy": [per seed],
                                 "group_accuracy": {"<group>": [per seed]}},
                        "seconds": float}}}

Groups of ``spurious_digits`` are ``2 * label + attribute`` (label ``digit >= 5``, attribute:
the frame).
"""
from __future__ import annotations

import argparse

import numpy as np

from feasjax.cli.common import (_positive_int, add_json, add_methods, add_no_compile_cache,
                                add_no_progress, add_plot, add_seeds, check_outputs)
from feasjax.cli.report import write_json
from feasjax.data.user_data import load_arrays
from feasjax.experiments.config import GROUP_METHODS, RunConfig

__all__ = ["add_groups_parser", "groups_command", "format_groups_table"]


def add_groups_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``feasjax groups`` on the subparsers of :func:`feasjax.cli.build_parser`.

    Example:
      >>> from feasjax.cli.app import build_parser
      >>> args = build_parser().parse_args(["groups", "--methods", "erm,groupdro"])
      >>> args.methods, args.seeds, args.dataset
      (('erm', 'groupdro'), (0, 1, 2, 3, 4), 'spurious_digits')
    """
    p = commands.add_parser("groups", help="worst-group accuracy on a spurious-correlation "
                                           "benchmark")
    p.add_argument("--dataset", default="spurious_digits",
                   help="spurious_digits, or an .npz with arrays x, y and group")
    add_methods(p, GROUP_METHODS)
    add_seeds(p, (0, 1, 2, 3, 4), "e.g. 0-4 or 0,3")
    p.add_argument("--epochs", type=_positive_int, default=RunConfig().epochs,  # GroupConfig's
                   help="training epochs of every method")
    add_json(p)
    add_plot(p, "bar chart of per-group test accuracy")
    add_no_progress(p, shows_progress=False)
    add_no_compile_cache(p)
    p.set_defaults(handler=groups_command)
    return p


def _datasets(name: str, seeds) -> list:
    from feasjax.data.spurious import group_dataset, spurious_digits

    if name == "spurious_digits":
        return [spurious_digits(s) for s in seeds]
    arrays = load_arrays(name)
    if "group" not in arrays:
        raise SystemExit(f"feasjax groups: error: --dataset {name}: the .npz needs a 'group' "
                         f"array (an int group per sample)")
    return [group_dataset(arrays["x"], arrays["y"], arrays["group"], seed=s, name=name)
            for s in seeds]


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
        cells = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in
                 (res["test"]["average_accuracy"], res["test"]["worst_group_accuracy"])]
        lines.append(f"{name:<12}{cells[0]:>13}{cells[1]:>18}{res['seconds']:>9.1f}")
    return "\n".join(lines)


def groups_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax groups``: train every method for every seed, print the table.

    Example:
      >>> from feasjax.cli.app import build_parser
      >>> args = build_parser().parse_args(["groups", "--methods", "groupdro", "--seeds", "0",
      ...                                   "--epochs", "1"])
      >>> report = groups_command(args)  # doctest: +ELLIPSIS
      method ...
      groupdro ...
      >>> report["seeds"]
      [0]
    """
    from feasjax.experiments.groups import GroupConfig, run_group_method

    check_outputs(args, "groups")
    seeds = list(args.seeds)
    datasets = _datasets(args.dataset, seeds)
    config, cache = GroupConfig(epochs=args.epochs), {}
    methods = {m: run_group_method(m, datasets, seeds, config, cache=cache)
               for m in args.methods}
    report = {"dataset": datasets[0].name, "seeds": seeds, "methods": methods}
    print(format_groups_table(methods))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        # Lazy: matplotlib takes seconds to import, and only --plot needs it.
        from feasjax.metrics.plotting import plot_group_accuracy

        plot_group_accuracy({m: res["test"]["group_accuracy"] for m, res in methods.items()},
                            args.plot)
        print(f"wrote {args.plot}: per-group test accuracy of every method (PNG)")
    return report
