"""``feasjax demo``: ERM, FL and RFL on a bundled dataset, one run or a vmapped sweep over seeds.

``feasjax demo --json PATH`` (and ``train``) writes::

    {"dataset": str, "epsilon": float, "seed": int,
     "methods": {"erm"|"fl"|"rfl": {"train": {accuracy, mean_loss, q90_loss, q99_loss,
                                              max_loss, cvar90_loss, feasible_fraction, ...},
                                    "test": {same keys}, "seconds": float, "skipped_steps": int,
                                    "averaged": {"average": str, "train": {...}, "test": {...}}
                                    (with --average only)}}}
"""
from __future__ import annotations

import argparse

from feasjax.cli.common import (_positive_int, add_run_arguments, add_seeds, config_from_args,
                                progress_mode, run_label)
from feasjax.cli.report import (config_lines, format_header, format_rows, interpret, run_methods,
                                write_json)
from feasjax.data.datasets import DATASETS, Dataset
from feasjax.experiments.config import RunConfig

__all__ = []

DESCRIPTION = """\
Compare ERM, Feasible Learning (FL: one Lagrange multiplier per training sample, every loss
bounded by epsilon) and its resilient relaxation (RFL) on a bundled dataset: same model,
optimizer, batch size, epochs and data order. The table shows accuracy, the loss tail (q99,
max) and the feasible fraction (losses <= epsilon) on train and test.

examples:
  feasjax demo                              # digits, 30 epochs, erm,fl,rfl
  feasjax demo --plot tail.png --json m.json
  feasjax demo --seeds 0-7 --average ema    # 8 seeds in one vmapped program
"""


def add_demo_parser(commands: argparse._SubParsersAction) -> None:
    """The ``feasjax demo`` command (``commands``: the ``add_subparsers`` action)."""
    p = commands.add_parser("demo", help="compare ERM, FL and RFL on bundled data",
                            description=DESCRIPTION)
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="bundled scikit-learn dataset (fixed 70/30 split)")
    add_run_arguments(p)
    p.add_argument("--devices", type=_positive_int, default=None,
                   help="data-parallel devices (default: all that divide the batch size)")
    add_seeds(p, None, "train every seed of e.g. 0-7 in one vmapped program and report mean ± "
                       "std (overrides --seed)")
    p.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> dict:
    """Run ``feasjax demo`` and return the JSON-able report."""
    if getattr(args, "seeds", None):
        if args.plot:
            raise SystemExit("feasjax demo: error: --plot draws one run; use it without --seeds")
        return demo_sweep(args)
    from feasjax.experiments.runs import run_method

    config, dataset = _start(args)
    return run_methods(args, args.dataset, config, lambda method, label: run_method(
        dataset, method, config, progress=progress_mode(args), label=label))


def _start(args: argparse.Namespace) -> tuple[RunConfig, Dataset]:
    """Check the flags, load the dataset and print the configuration."""
    from feasjax.data.datasets import load_dataset
    from feasjax.experiments.multirun import resolve_devices

    config = config_from_args(args)
    dataset = load_dataset(args.dataset)  # fixed split (seed 0); --seed varies the training
    try:
        devices = resolve_devices(config.devices, min(config.batch_size, len(dataset.y_train)))
    except ValueError as e:
        raise SystemExit(f"feasjax demo: error: --devices: {e}") from None
    seeds = args.seeds and f"{args.seeds[0]}..{args.seeds[-1]} ({len(args.seeds)} runs, vmapped)"
    print("\n".join(config_lines("demo", args.dataset, config, methods=args.methods,
                                  dataset=dataset, devices=devices, seeds=seeds)))
    return config, dataset


def demo_sweep(args: argparse.Namespace) -> dict:
    """``feasjax demo --seeds ...``: mean ± std over seeds trained in one vmapped program.

    JSON: ``{"dataset", "epsilon", "seeds", "devices", "methods": {m: {"mean": {"train",
    "test"}, "std", "runs": [{"train", "test"}, ...], "seconds"}}}``; ``--average`` adds
    ``"averaged": {"average", "train", "test"}`` to ``mean``, ``std`` and every run.
    """
    from feasjax.experiments.multirun import run_method_sweep

    config, dataset = _start(args)
    print("mean over seeds:\n" + format_header(), flush=True)
    report = {"dataset": args.dataset, "epsilon": config.epsilon, "seeds": list(args.seeds),
              "devices": None, "methods": {}}
    for i, method in enumerate(args.methods):
        res = run_method_sweep(dataset, method, config, args.seeds,
                               progress=progress_mode(args),
                               label=run_label(method, i, args.methods))
        report["devices"] = res.devices
        report["methods"][method] = {**{s: _pick(res.summary, s, config) for s in ("mean", "std")},
                                     "runs": res.runs, "seconds": res.seconds}
        print("\n".join(format_rows(method, report["methods"][method]["mean"])), flush=True)
    print("std over seeds:\n" + format_header())
    for method, result in report["methods"].items():
        print("\n".join(format_rows(method, result["std"])))
    for line in interpret({m: r["mean"] for m, r in report["methods"].items()}):
        print(f"{line} (means over {len(args.seeds)} seeds)" if not line.startswith(" ")
              else line)
    write_json(args.json, report, "the metrics of every seed, their mean and std, as JSON")
    return report


def _pick(summary: dict, stat: str, config: RunConfig) -> dict:
    """``{"train": {metric: summary[stat]}, "test": ...}`` (and ``"averaged"`` likewise)."""
    out = {split: {k: v[stat] for k, v in summary[split].items()} for split in ("train", "test")}
    if "averaged" in summary:
        out["averaged"] = {"average": config.average, **_pick(summary["averaged"], stat, config)}
    return out
