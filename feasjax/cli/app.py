"""The ``feasjax`` command line: ``feasjax demo`` compares ERM, FL and RFL on a bundled dataset.

``feasjax train --data FILE.npz`` trains them on the user's own arrays, with checkpoints
(``--checkpoint-dir``, ``--checkpoint-every``, ``--resume``) and the same JSON schema; every
method's dict also holds ``"skipped_steps"`` (steps skipped for non-finite values).

``feasjax demo --json PATH`` writes::

    {"dataset": str, "epsilon": float, "seed": int,
     "methods": {"erm"|"fl"|"rfl": {"train": {accuracy, mean_loss, q90_loss, q99_loss,
                                              max_loss, cvar90_loss, feasible_fraction, ...},
                                    "test": {same keys}, "seconds": float,
                                    "averaged": {"average": str, "train": {...}, "test": {...}}
                                    (with --average only)}}}
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Mapping, Sequence

import numpy as np

from feasjax.data.datasets import DATASETS, load_dataset
from feasjax.experiments.builders import AVERAGES, METHODS, MODELS, RunConfig, default_epsilon
from feasjax.experiments.runs import run_method

TABLE_COLUMNS = (
    ("train acc", "train", "accuracy"),
    ("test acc", "test", "accuracy"),
    ("train mean", "train", "mean_loss"),
    ("train q99", "train", "q99_loss"),
    ("train max", "train", "max_loss"),
    ("train feas", "train", "feasible_fraction"),
    ("test mean", "test", "mean_loss"),
    ("test q99", "test", "q99_loss"),
    ("test max", "test", "max_loss"),
    ("test feas", "test", "feasible_fraction"),
)


def _methods(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise argparse.ArgumentTypeError(
            f"--methods must be a comma-separated subset of {','.join(METHODS)}, got {text!r}")
    return methods


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


OUTPUT_FLAGS = (("json", "--json"), ("plot", "--plot"), ("save_losses", "--save-losses"))


def check_outputs(args: argparse.Namespace, command: str) -> None:
    """Before any training: every output path can be written (missing parents are created).

    Raises ``SystemExit`` with one line ``feasjax COMMAND: error: ...`` when a path is a
    directory, lies under a regular file, or cannot be written, and when ``--checkpoint-dir``
    is a regular file, so that no run is lost at its end.
    """
    def fail(message):
        raise SystemExit(f"feasjax {command}: error: {message}")

    for attr, flag in OUTPUT_FLAGS:
        path = getattr(args, attr, None)
        if not path:
            continue
        if os.path.isdir(path):
            fail(f"{flag} {path}: is a directory, expected a file path")
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            fail(f"{flag} {path}: cannot create its directory ({e.strerror or e})")
        if not os.access(parent, os.W_OK):
            fail(f"{flag} {path}: the directory {parent} is not writable")
    directory = getattr(args, "checkpoint_dir", None)
    if directory and os.path.exists(directory) and not os.path.isdir(directory):
        fail(f"--checkpoint-dir {directory}: is a file, expected a directory")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``demo`` and ``train``."""
    defaults = RunConfig()
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    parser.add_argument("--epsilon", type=_nonnegative_float, default=None,
                        help="per-sample loss bound ε of FL/RFL (default: 0.1 for the mlp, "
                             "0.02 for the cnn and resnet, which fit digits below 0.1 with "
                             "ERM already)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of model initialisation and shuffling")
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    parser.add_argument("--methods", type=_methods, default=METHODS,
                        help="comma-separated subset of erm,fl,rfl")
    parser.add_argument("--lr", type=_positive_float, default=defaults.learning_rate,
                        help="primal learning rate (SGD with momentum)")
    parser.add_argument("--dual-lr", type=_positive_float, default=defaults.dual_learning_rate)
    parser.add_argument("--alpha", type=_positive_float, default=defaults.alpha,
                        help="RFL slack cost")
    parser.add_argument("--model", choices=MODELS, default=defaults.model,
                        help="mlp, cnn (BatchNorm and Dropout) or resnet (image data)")
    parser.add_argument("--average", choices=AVERAGES, default=defaults.average,
                        help="also evaluate an average of the parameters (reported beside "
                             "the raw model, as METHOD+AVERAGE rows and 'averaged' in JSON)")
    parser.add_argument("--json", metavar="PATH", help="write the metrics as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write per-sample loss CDFs as PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (kept under "
                             "~/.cache/feasjax/jax, or $FEASJAX_CACHE_DIR)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` the parsed flags describe."""
    epsilon = default_epsilon(args.model) if args.epsilon is None else args.epsilon
    return RunConfig(epochs=args.epochs, batch_size=args.batch_size, epsilon=epsilon,
                     seed=args.seed, learning_rate=args.lr,
                     dual_learning_rate=args.dual_lr, alpha=args.alpha, model=args.model,
                     average=args.average, devices=getattr(args, "devices", None))


def format_table(methods: dict) -> str:
    """One row per method, the columns of ``TABLE_COLUMNS``.

    Example:
      >>> from feasjax.cli.app import format_table
      >>> print(format_table({"erm": {"train": {"max_loss": 1.0}, "test": {}}}).splitlines()[0])
      method       train acc   test acc ...
    """
    header = "method    " + "".join(f"{name:>11}" for name, _, _ in TABLE_COLUMNS)
    lines = [header]
    rows = []
    for method, result in methods.items():
        rows.append((method, result))
        if "averaged" in result:
            rows.append((f"{method}+{result['averaged']['average']}", result["averaged"]))
    for method, result in rows:
        cells = []
        for _, split, key in TABLE_COLUMNS:
            value = result[split].get(key)
            cells.append(f"{value:>11.4f}" if value is not None else f"{'-':>11}")
        lines.append(f"{method:<10}" + "".join(cells))
    return "\n".join(lines)


def write_outputs(args: argparse.Namespace, report: dict, curves: dict | None = None) -> None:
    """Print the table, and write ``--json`` and ``--plot`` (per-sample loss CDFs) if asked."""
    print(format_table(report["methods"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if getattr(args, "plot", None) and curves:
        from feasjax.metrics.plotting import plot_loss_cdfs

        plot_loss_cdfs(curves, report["epsilon"], args.plot)


def demo(args: argparse.Namespace) -> dict:
    """Run ``feasjax demo`` and return the JSON-able report."""
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
    from feasjax.experiments.multirun import resolve_devices

    try:
        resolve_devices(config.devices, min(config.batch_size, len(dataset.y_train)))
    except ValueError as e:
        raise SystemExit(f"feasjax {command}: error: --devices: {e}") from None


def _image_shape(text: str) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in text.split(","))
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be H,W,C (three positive ints), got {text!r}")
    return shape


def _hidden(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(v) for v in text.split(","))


def add_train_parser(commands) -> None:
    """The ``feasjax train`` subcommand: ERM/FL/RFL on the user's own arrays."""
    p = commands.add_parser("train", help="train ERM/FL/RFL on your own .npz/.npy data")
    src = p.add_argument_group("data (.npz with x, y [, group, x_test, y_test], or .npy files)")
    src.add_argument("--data", metavar="NPZ")
    src.add_argument("--x", metavar="NPY", help="inputs (N, ...), memory-mapped")
    src.add_argument("--y", metavar="NPY", help="labels (N,) or regression targets (N, ...)")
    src.add_argument("--group", metavar="NPY", help="optional integer group per sample")
    src.add_argument("--task", choices=("classification", "regression"),
                     default="classification")
    src.add_argument("--num-classes", type=_positive_int, help="default: max label + 1")
    src.add_argument("--test-fraction", type=_fraction, default=0.3)
    src.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    src.add_argument("--image-shape", type=_image_shape, help="H,W,C of a sample (for --model "
                     "cnn; inferred from 4-D x)")
    add_run_arguments(p)
    defaults = RunConfig()
    p.add_argument("--momentum", type=_unit_float, default=defaults.momentum)
    p.add_argument("--init-multiplier", type=_nonnegative_float,
                   default=defaults.init_multiplier)
    p.add_argument("--hidden", type=_hidden, default=defaults.hidden, help="MLP widths, e.g. 64,64")
    p.add_argument("--on-nonfinite", choices=("skip", "raise"), default="skip",
                   help="skip and count a step with non-finite losses/gradients, or stop")
    ckpt = p.add_argument_group("checkpoints")
    ckpt.add_argument("--checkpoint-dir", metavar="DIR", help="one subdirectory per method")
    ckpt.add_argument("--checkpoint-every", type=_positive_int, help="steps (default: an epoch)")
    ckpt.add_argument("--max-to-keep", type=_positive_int, default=3)
    ckpt.add_argument("--resume", action="store_true",
                      help="continue from the latest readable checkpoint in --checkpoint-dir")
    p.add_argument("--save-losses", metavar="NPZ", help="write per-sample losses, multipliers "
                   "and split indices (np.savez_compressed)")
    p.set_defaults(handler=train_command)


def _group_metrics(losses, groups) -> dict:
    means = [float(losses[groups == g].mean()) for g in np.unique(groups)]
    return {"worst_group_mean_loss": max(means)}


def train_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax train`` and return the JSON-able report (the schema of ``demo``, plus
    ``skipped_steps`` per method and, with groups, ``worst_group_mean_loss`` per split)."""
    from feasjax.training.resume import train_resumable
    from feasjax.data.user_data import load_arrays, name_of, user_dataset

    check_outputs(args, "train")
    name = name_of(args.data or args.x)
    try:  # every data problem is reported before any training starts
        arrays = load_arrays(args.data, x=args.x, y=args.y, group=args.group)
        dataset, extras = user_dataset(arrays, task=args.task, num_classes=args.num_classes,
                                       seed=args.split_seed, test_fraction=args.test_fraction,
                                       image_shape=args.image_shape, name=name)
        # Checkpointed, resumable training runs on one device (see feasjax.training.resume).
        config = config_from_args(args)._replace(
            momentum=args.momentum, init_multiplier=args.init_multiplier, hidden=args.hidden,
            devices=1)
    except ValueError as e:
        raise SystemExit(f"feasjax train: error: {e}") from None
    if args.resume and not args.checkpoint_dir:
        raise SystemExit("feasjax train: error: --resume needs --checkpoint-dir")
    report = {"dataset": name, "epsilon": config.epsilon, "seed": config.seed, "methods": {}}
    curves, saved = {}, {k: v for k, v in extras.items() if v is not None}
    for method in args.methods:
        run_config = {k: v for k, v in config._asdict().items() if k != "epochs"}
        trainer = functools.partial(
            train_resumable, on_nonfinite=args.on_nonfinite, resume=args.resume,
            checkpoint_dir=(os.path.join(args.checkpoint_dir, method) if args.checkpoint_dir
                            else None),
            checkpoint_every=args.checkpoint_every, max_to_keep=args.max_to_keep,
            config={"method": method, "data": name, **run_config})
        try:
            result = run_method(dataset, method, config, progress=not args.no_progress,
                                trainer=trainer)
        except (ValueError, FloatingPointError) as e:
            raise SystemExit(f"feasjax train: error: {method}: {e}") from None
        if "group_train" in extras:
            result.metrics["train"].update(_group_metrics(result.train_losses,
                                                          extras["group_train"]))
        if "group_test" in extras:
            result.metrics["test"].update(_group_metrics(result.test_losses,
                                                         extras["group_test"]))
        report["methods"][method] = result.metrics
        curves[method] = {"train": result.train_losses, "test": result.test_losses}
        saved[f"{method}_train_losses"] = result.train_losses
        saved[f"{method}_test_losses"] = result.test_losses
        if "samples" in result.state.multipliers:  # FL/RFL: one multiplier per train sample
            saved[f"{method}_multipliers"] = np.asarray(result.state.multipliers["samples"])
    print(f"feasjax train: {name} ({len(dataset.y_train)} train / {len(dataset.y_test)} test), "
          f"epsilon={config.epsilon}, seed={config.seed}, epochs={config.epochs}")
    write_outputs(args, report, curves)
    if args.save_losses:
        np.savez_compressed(args.save_losses, **saved)
    return report


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
    from feasjax.experiments.multirun import run_method_sweep

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


def build_parser() -> argparse.ArgumentParser:
    """The ``feasjax`` argument parser."""
    parser = argparse.ArgumentParser(prog="feasjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="compare ERM, FL and RFL on bundled data")
    demo_parser.add_argument("--dataset", choices=DATASETS, default="digits")
    add_run_arguments(demo_parser)
    add_scale_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo)
    add_train_parser(commands)
    return parser


def compilation_cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where the CLI keeps JAX's persistent compilation cache, or ``None`` when it is off.

    ``$FEASJAX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/feasjax/jax`` (``~/.cache/feasjax/jax``);
    ``FEASJAX_NO_COMPILE_CACHE=1`` (or ``--no-compile-cache``) turns it off.

    Example:
      >>> from feasjax.cli.app import compilation_cache_dir
      >>> compilation_cache_dir({"FEASJAX_CACHE_DIR": "/tmp/fj-cache"})
      '/tmp/fj-cache'
      >>> compilation_cache_dir({"FEASJAX_NO_COMPILE_CACHE": "1"}) is None
      True
    """
    if environ.get("FEASJAX_NO_COMPILE_CACHE", "") not in ("", "0"):
        return None
    if environ.get("FEASJAX_CACHE_DIR"):
        return environ["FEASJAX_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "feasjax", "jax")


def _enable_compilation_cache() -> None:
    import jax

    directory = compilation_cache_dir()
    if directory is None:
        return
    # Every program counts: the CLI's are small, and a second run should compile nothing.
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feasjax`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "no_compile_cache", False):
        os.environ["FEASJAX_NO_COMPILE_CACHE"] = "1"
    _enable_compilation_cache()
    args.handler(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
