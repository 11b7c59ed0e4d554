"""The ``feasjax`` command line: the parser of every command, and the entry point."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, Sequence

from feasjax.cli.common import CommandParser, check_outputs
from feasjax.cli.demo import add_demo_parser
from feasjax.cli.federated import add_federated_parser
from feasjax.cli.train import add_train_parser
from feasjax.cli.groups import add_groups_parser
from feasjax.cli.paper import add_paper_parser

__all__ = ["main"]


# ``add(commands)`` per command, given the ``add_subparsers`` action: a new command is one entry.
COMMANDS = (add_demo_parser, add_train_parser, add_federated_parser, add_groups_parser,
            add_paper_parser)

DESCRIPTION = """\
feasjax: Feasible Learning in JAX. Train with one Lagrange multiplier per training sample, so
that every sample's loss is bounded by epsilon, and compare with ERM on the loss tail.

run 'feasjax COMMAND --help' for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The ``feasjax`` argument parser, with every command of ``COMMANDS``."""
    parser = CommandParser(prog="feasjax", description=DESCRIPTION)
    # The top level, imported before any subpackage, is read from sys.modules: an import of it
    # here would reach above the cli layer.
    version = sys.modules["feasjax"].__version__
    parser.add_argument("--version", action="version", version=f"feasjax {version}",
                        help="print feasjax's version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                     parser_class=CommandParser)
    for add in COMMANDS:
        add(commands)
    return parser


def compilation_cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where the CLI keeps JAX's persistent compilation cache: ``$FEASJAX_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/feasjax/jax`` (``~/.cache/feasjax/jax``); ``None`` when
    ``FEASJAX_NO_COMPILE_CACHE=1`` (or ``--no-compile-cache``) turns it off."""
    if environ.get("FEASJAX_NO_COMPILE_CACHE", "") not in ("", "0"):
        return None
    if environ.get("FEASJAX_CACHE_DIR"):
        return environ["FEASJAX_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "feasjax", "jax")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feasjax`` console script; with no command it prints the help.

    Example:
      >>> from feasjax.cli import main
      >>> main(["demo", "--methods", "erm", "--epochs", "1", "--devices", "1",
      ...       "--no-progress"])
      feasjax demo: digits, epsilon=0.1, seed=0, epochs=1, batch size=64
        data 1257 train / 540 test (10 classes), model mlp ...
      method ...
      erm ...
      0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    check_outputs(args, args.command)  # before any training, so that no run is lost at its end
    if args.no_compile_cache:
        os.environ["FEASJAX_NO_COMPILE_CACHE"] = "1"
    directory = compilation_cache_dir()
    if directory is not None:
        import jax

        # Every program counts: the CLI's are small, and a second run should compile nothing.
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    args.handler(args)
    return 0
