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
import os
from typing import Mapping, Sequence

from feasjax.cli.common import add_run_arguments
from feasjax.cli.demo import add_scale_arguments, demo
from feasjax.cli.train import add_train_parser
from feasjax.cli.groups import add_groups_parser
from feasjax.data.datasets import DATASETS

__all__ = [
    "build_parser",
    "main",
    "compilation_cache_dir",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``feasjax`` argument parser.

    Example:
      >>> from feasjax.cli.app import build_parser
      >>> args = build_parser().parse_args(["demo", "--epochs", "2", "--methods", "erm,fl"])
      >>> args.command, args.epochs, args.methods
      ('demo', 2, ('erm', 'fl'))
    """
    parser = argparse.ArgumentParser(prog="feasjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="compare ERM, FL and RFL on bundled data")
    demo_parser.add_argument("--dataset", choices=DATASETS, default="digits")
    add_run_arguments(demo_parser)
    add_scale_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo)
    add_train_parser(commands)
    add_groups_parser(commands)
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
    """Entry point of the ``feasjax`` console script.

    Example:
      >>> from feasjax.cli import main
      >>> main(["demo", "--methods", "erm", "--epochs", "1", "--devices", "1", "--no-progress"])
      feasjax demo: digits, epsilon=0.1, seed=0, epochs=1, batch size=64
      method ...
      erm ...
      0
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "no_compile_cache", False):
        os.environ["FEASJAX_NO_COMPILE_CACHE"] = "1"
    _enable_compilation_cache()
    args.handler(args)
    return 0
