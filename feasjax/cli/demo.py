"""``feasjax demo``: ERM, FL and RFL on a bundled dataset, one run or a vmapped sweep over seeds."""
from __future__ import annotations

import argparse
import json

from feasjax.cli.common import (_positive_int, check_outputs, config_from_args, format_table,
                                write_outputs)
from feasjax.data.datasets import load_dataset
from feasjax.experiments.builders import RunConfig
from feasjax.experiments.multirun import resolve_devices, run_method_sweep
from feasjax.experiments.runs import run_method

__all__ = [
    "demo",
]


def demo(args: argparse.Namespace) -> dict:
    """Run ``feasjax demo`` and return the JSON-able report.

    Example:
      >>> from feasjax.cli.app import build_parser
      >>> from feasjax.cli.demo import demo
      >>> args = build_parser().parse_args(["demo", "--methods", "erm", "--epochs", "1",
      ...                                   "--devices", "1", "--no-progress"])
      >>> report = demo(args)
      feasjax demo: digits, ...
      >>> sorted(report["methods"]["erm"])
      ['seconds', 'skipped_steps', 'test', 'train']
    """
    if getattr(args, "seeds", None):
        if args.plot:
            raise SystemExit("feasjax demo: error: --plot draws one run; use it without --seeds")
        return demo_sweep(args)
    check_outputs(args, "demo")
    config = config_from_args(args)
    dataset = load_dataset(args.dataset)  # fixed split (seed 0); --seed varies the training
    _check_devices(config, dataset, "demo")
    report = {"dataset": args.dataset, "epsilon": config.epsilon, "seed": config.seed,
              "methods": {}}
    curves = {}
    for method in args.methods:
        result = run_method(dataset, method, config, progress=not args.no_progress)
        report["methods"][method] = result.metrics
        curves[method] = {"train": result.train_losses, "test": result.test_losses}
    print(f"feasjax demo: {args.dataset}, epsilon={config.epsilon}, seed={config.seed}, "
          f"epochs={config.epochs}, batch size={config.batch_size}")
    write_outputs(args, report, curves)
    return report


def _check_devices(config: RunConfig, dataset, command: str) -> None:
    try:
        resolve_devices(config.devices, min(config.batch_size, len(dataset.y_train)))
    except ValueError as e:
        raise SystemExit(f"feasjax {command}: error: --devices: {e}") from None


def _seeds(text: str) -> tuple[int, ...]:
    """``"0-7"``, ``"0,3,5"`` or ``"0-3,8"`` -> the seeds."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds must look like 0-7 or 0,3,5, got {text!r}")
    return tuple(seeds)


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    """``--devices`` and ``--seeds`` (data parallelism and vectorised sweeps)."""
    parser.add_argument("--devices", type=_positive_int, default=None,
                        help="data-parallel devices (default: all that divide the batch size)")
    parser.add_argument("--seeds", type=_seeds, default=None,
                        help="train every seed of e.g. 0-7 in one vmapped program and report "
                             "mean ± std (overrides --seed)")


def demo_sweep(args: argparse.Namespace) -> dict:
    """``feasjax demo --seeds ...``: mean ± std over seeds trained in one vmapped program.

    JSON: ``{"dataset", "epsilon", "seeds", "devices", "methods": {m: {"mean": {"train": {...},
    "test": {...}}, "std": {...}, "runs": [{"train", "test"}, ...], "seconds"}}}``.
    """
    check_outputs(args, "demo")
    config = config_from_args(args)
    dataset = load_dataset(args.dataset)
    _check_devices(config, dataset, "demo")
    report = {"dataset": args.dataset, "epsilon": config.epsilon, "seeds": list(args.seeds),
              "devices": None, "methods": {}}
    for method in args.methods:
        res = run_method_sweep(dataset, method, config, args.seeds,
                               progress=not args.no_progress)
        report["devices"] = res.devices
        pick = lambda stat: {split: {k: v[stat] for k, v in res.summary[split].items()}  # noqa
                             for split in ("train", "test")}
        report["methods"][method] = {"mean": pick("mean"), "std": pick("std"), "runs": res.runs,
                                     "seconds": res.seconds}
    print(f"feasjax demo: {args.dataset}, epsilon={config.epsilon}, seeds={args.seeds[0]}.."
          f"{args.seeds[-1]} ({len(args.seeds)} runs, vmapped), devices={report['devices']}, "
          f"epochs={config.epochs}, batch size={config.batch_size}")
    print("mean over seeds:\n" + format_table({m: r["mean"] for m, r in
                                               report["methods"].items()}))
    print("std over seeds:\n" + format_table({m: r["std"] for m, r in
                                              report["methods"].items()}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report
