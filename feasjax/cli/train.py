"""``feasjax train``: ERM, FL and RFL on the user's own arrays, with checkpoints and resume."""
from __future__ import annotations

import argparse
import os

import numpy as np

from feasjax.cli.common import (_fraction, _nonnegative_float, _positive_int, _unit_float,
                                add_run_arguments, config_from_args, progress_mode)
from feasjax.cli.report import config_lines, run_methods
from feasjax.data.user_data import load_arrays, name_of, user_dataset
from feasjax.experiments.config import RunConfig

__all__ = []

DESCRIPTION = """\
Train ERM, FL and RFL on your own arrays (an .npz with x, y and optionally group, x_test,
y_test; or .npy files), with the flags and the table of feasjax demo, checkpoints every k steps
and exact resume.

examples:
  feasjax train --data mydata.npz --json m.json --save-losses losses.npz
  feasjax train --x x.npy --y y.npy --task regression --methods erm,fl
  feasjax train --data mydata.npz --checkpoint-dir ck --checkpoint-every 100 [--resume]
"""


def _image_shape(text: str) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in text.split(","))
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be H,W,C (three positive ints), got {text!r}")
    return shape


def _hidden(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(v) for v in text.split(","))


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    """The ``feasjax train`` command: ERM/FL/RFL on the user's own arrays."""
    p = commands.add_parser("train", help="train ERM/FL/RFL on your own .npz/.npy data",
                            description=DESCRIPTION)
    src = p.add_argument_group("data (.npz with x, y [, group, x_test, y_test], or .npy files)")
    src.add_argument("--data", metavar="NPZ", help="an .npz file with arrays x and y")
    src.add_argument("--x", metavar="NPY", help="inputs (N, ...), memory-mapped")
    src.add_argument("--y", metavar="NPY", help="labels (N,) or regression targets (N, ...)")
    src.add_argument("--group", metavar="NPY", help="optional integer group per sample")
    src.add_argument("--task", choices=("classification", "regression"),
                     default="classification", help="cross-entropy or squared-error losses")
    src.add_argument("--num-classes", type=_positive_int,
                     help="number of classes (default: max label + 1)")
    src.add_argument("--test-fraction", type=_fraction, default=0.3,
                     help="held-out fraction when the data has no x_test, y_test")
    src.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    src.add_argument("--image-shape", type=_image_shape, help="H,W,C of a sample (for --model "
                     "cnn; inferred from 4-D x)")
    add_run_arguments(p)
    defaults = RunConfig()
    p.add_argument("--momentum", type=_unit_float, default=defaults.momentum,
                   help="momentum of the primal SGD")
    p.add_argument("--init-multiplier", type=_nonnegative_float,
                   default=defaults.init_multiplier, help="initial multiplier of every sample")
    p.add_argument("--hidden", type=_hidden, default=defaults.hidden, help="MLP widths, e.g. 64,64")
    p.add_argument("--on-nonfinite", choices=("skip", "raise"), default="skip",
                   help="skip and count a step with non-finite losses/gradients, or stop")
    ckpt = p.add_argument_group("checkpoints")
    ckpt.add_argument("--checkpoint-dir", metavar="DIR", help="one subdirectory per method")
    ckpt.add_argument("--checkpoint-every", type=_positive_int, help="steps (default: an epoch)")
    ckpt.add_argument("--max-to-keep", type=_positive_int, default=3,
                      help="checkpoints kept per method")
    ckpt.add_argument("--resume", action="store_true",
                      help="continue from the latest readable checkpoint in --checkpoint-dir")
    p.add_argument("--save-losses", metavar="NPZ", help="write per-sample losses, multipliers "
                   "and split indices (np.savez_compressed)")
    p.set_defaults(handler=train_command)


def train_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax train`` and return the JSON-able report (``demo``'s schema; with groups,
    ``worst_group_mean_loss`` per split)."""
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
    print("\n".join(config_lines("train", name, config, methods=args.methods, dataset=dataset,
                                  devices=1)))
    saved = {k: v for k, v in extras.items() if v is not None}
    run_config = {k: v for k, v in config._asdict().items() if k != "epochs"}

    def run(method: str, label: str):
        from feasjax.experiments.runs import run_method

        directory = os.path.join(args.checkpoint_dir, method) if args.checkpoint_dir else None
        options = {"on_nonfinite": args.on_nonfinite, "resume": args.resume,
                   "checkpoint_dir": directory, "checkpoint_every": args.checkpoint_every,
                   "max_to_keep": args.max_to_keep,
                   "config": {"method": method, "data": name, **run_config}}
        try:
            result = run_method(dataset, method, config, progress=progress_mode(args),
                                train_options=options, label=label)
        except (ValueError, FloatingPointError) as e:
            raise SystemExit(f"feasjax train: error: {method}: {e}") from None
        for split, losses in (("train", result.train_losses), ("test", result.test_losses)):
            saved[f"{method}_{split}_losses"] = losses
            groups = extras.get(f"group_{split}")
            if groups is not None:
                result.metrics[split]["worst_group_mean_loss"] = max(
                    float(losses[groups == g].mean()) for g in np.unique(groups))
        if "samples" in result.state.multipliers:  # FL/RFL: one multiplier per train sample
            saved[f"{method}_multipliers"] = np.asarray(result.state.multipliers["samples"])
        return result

    report = run_methods(args, name, config, run)
    if args.save_losses:
        np.savez_compressed(args.save_losses, **saved)
        print(f"wrote {args.save_losses}: per-sample losses, multipliers and split indices")
    if args.checkpoint_dir:
        for method in args.methods:
            print(f"wrote {os.path.join(args.checkpoint_dir, method)}: checkpoints of {method} "
                  f"(resume with --resume)")
    return report
