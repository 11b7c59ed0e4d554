"""What the commands share: the parser and its help format, the flags, the configuration they
describe, the progress mode and the checks of the output paths."""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, Callable

from feasjax.experiments.config import AVERAGES, METHODS, MODELS, RunConfig, default_epsilon

__all__ = []


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (unless ``None``/``False`` or already in the help
    text); descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if (default is None or isinstance(default, bool) or default is argparse.SUPPRESS
                or "default" in text):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


# The parser of ``feasjax`` and of each of its commands (their help format).
CommandParser = functools.partial(argparse.ArgumentParser, formatter_class=DefaultsHelpFormatter)


def progress_mode(args: argparse.Namespace) -> bool | str:
    """A tqdm bar on a terminal, else (``--no-progress``, logs, pipes) a line per epoch."""
    return "lines" if getattr(args, "no_progress", False) or not sys.stderr.isatty() else True


def _number(name: str, cast: type, ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``cast(text)`` that must satisfy ``ok`` (argparse names it in its
    "invalid ... value" errors)."""
    def parse(text: str) -> Any:
        value = cast(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = name  # argparse's "invalid NAME value"
    return parse


_INF = float("inf")
_positive_int = _number("_positive_int", int, lambda v: v >= 1, "a positive integer")
_nonnegative_float = _number("_nonnegative_float", float, lambda v: 0 <= v < _INF,
                             "a finite number >= 0")
_positive_float = _number("_positive_float", float, lambda v: 0 < v < _INF, "a finite number > 0")
_unit_float = _number("_unit_float", float, lambda v: 0 <= v < 1, "a number in [0, 1)")
_fraction = _number("_fraction", float, lambda v: 0 < v < 1, "a number in (0, 1)")


def run_label(method: str, i: int, methods: tuple) -> str:
    """The progress label of the ``i``-th of ``methods``: ``"fl (2/3)"``, or the method alone."""
    return f"{method} ({i + 1}/{len(methods)})" if len(methods) > 1 else method


# One function per option shared by several commands: the same name, parsing and help in each.


def add_methods(parser: argparse.ArgumentParser, choices: tuple[str, ...],
                default: tuple[str, ...] | None = None, default_help: str | None = None
                ) -> None:
    """``--methods``: a comma-separated subset of ``choices`` (default: all of them; the help
    says ``default_help`` when given, for a default the command resolves itself)."""
    def methods(text: str) -> tuple[str, ...]:
        picked = tuple(m.strip() for m in text.split(",") if m.strip())
        if not picked or any(m not in choices for m in picked):
            raise argparse.ArgumentTypeError(f"--methods must be a comma-separated subset of "
                                             f"{','.join(choices)}, got {text!r}")
        return picked

    parser.add_argument("--methods", type=methods, default=choices if default is None else default,
                        help=f"comma-separated subset of {','.join(choices)}"
                        + (f" (default: {default_help})" if default_help else ""))


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


def add_seeds(parser: argparse.ArgumentParser, default: tuple[int, ...] | None,
              help: str) -> None:
    """``--seeds``: ``0-7``, ``0,3,5`` or ``0-3,8``."""
    parser.add_argument("--seeds", type=_seeds, default=default, help=help)


def add_outputs(parser: argparse.ArgumentParser, plot_help: str, what: str = "the results"
                ) -> None:
    """``--json PATH`` (``what`` as JSON) and ``--plot PATH`` (a PNG)."""
    parser.add_argument("--json", metavar="PATH", help=f"write {what} as JSON")
    parser.add_argument("--plot", metavar="PATH", help=plot_help)


def add_script_flags(parser: argparse.ArgumentParser, shows_progress: bool = True) -> None:
    """``--no-progress`` (accepted by commands without a bar too, for scripts) and
    ``--no-compile-cache`` (read by :func:`feasjax.cli.main` before the command runs)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="print plain lines on stderr (every epoch, or every k-th for more "
                             "than 10) instead of a progress bar; also the default when stderr "
                             "is not a terminal" if shows_progress else
                             "accepted for scripts that pass it to every command (this command "
                             "draws no progress bar)")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (kept under "
                             "~/.cache/feasjax/jax, or $FEASJAX_CACHE_DIR)")


def check_outputs(args: argparse.Namespace, command: str) -> None:
    """Check that every output path can be written (creating missing parents), else raise
    ``SystemExit("feasjax COMMAND: error: ...")``."""
    def fail(message):
        raise SystemExit(f"feasjax {command}: error: {message}")

    for attr in ("json", "plot", "save_losses"):
        path, flag = getattr(args, attr, None), f"--{attr.replace('_', '-')}"
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
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                        help="training epochs (passes over the training set)")
    parser.add_argument("--epsilon", type=_nonnegative_float, default=None,
                        help="per-sample loss bound ε of FL/RFL (default: 0.1 for the mlp, "
                             "0.02 for the cnn and resnet, which fit digits below 0.1 with "
                             "ERM already)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of model initialisation and shuffling")
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                        help="minibatch size (capped at the number of training samples)")
    add_methods(parser, METHODS)
    parser.add_argument("--lr", type=_positive_float, default=defaults.learning_rate,
                        help="primal learning rate (SGD with momentum)")
    parser.add_argument("--dual-lr", type=_positive_float, default=defaults.dual_learning_rate,
                        help="learning rate of the multipliers' gradient ascent (FL/RFL)")
    parser.add_argument("--alpha", type=_positive_float, default=defaults.alpha,
                        help="RFL slack cost")
    parser.add_argument("--model", choices=MODELS, default=defaults.model,
                        help="mlp, cnn (BatchNorm, optional Dropout) or resnet (image data)")
    parser.add_argument("--dropout", type=_unit_float, default=defaults.dropout,
                        help="dropout rate before the last layer of the cnn and resnet (ERM "
                             "trains with it; FL/RFL as --fl-dropout says)")
    parser.add_argument("--fl-dropout", choices=("on", "off"), default=None,
                        help="whether FL/RFL weight losses computed with dropout (default: off "
                             "for the cnn, where a multiplier of 3-4.5 on a dropout-noisy "
                             "gradient can blow one sample's loss up; on for the resnet)")
    parser.add_argument("--average", choices=AVERAGES, default=defaults.average,
                        help="also evaluate an average of the parameters (reported beside "
                             "the raw model, as METHOD+AVERAGE rows and 'averaged' in JSON)")
    add_outputs(parser, "write per-sample loss survival curves (train and test) as PNG",
                "the metrics")
    add_script_flags(parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` the parsed flags of ``demo`` or ``train`` describe."""
    epsilon = default_epsilon(args.model) if args.epsilon is None else args.epsilon
    if args.dropout and args.model == "mlp":
        raise SystemExit(f"error: --dropout {args.dropout:g}: the mlp has no dropout layer "
                         f"(use --model cnn or resnet)")
    return RunConfig(epochs=args.epochs, batch_size=args.batch_size, epsilon=epsilon,
                     seed=args.seed, learning_rate=args.lr, dual_learning_rate=args.dual_lr,
                     alpha=args.alpha, model=args.model, average=args.average,
                     devices=getattr(args, "devices", None), dropout=args.dropout,
                     fl_dropout=None if args.fl_dropout is None else args.fl_dropout == "on")
