"""The options every command shares are defined once (feasjax.cli.common) and taken by all."""
import pathlib
import re

import pytest

from feasjax.cli.app import build_parser

SHARED = ("--methods", "--seeds", "--no-progress", "--no-compile-cache", "--json", "--plot")
COMMANDS = ("demo", "train", "groups", "federated", "paper")


def _subparser(command):
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_every_shared_option(command):
    flags = {s for a in _subparser(command)._actions for s in a.option_strings}
    missing = set(SHARED) - flags - ({"--seeds"} if command == "train" else set())
    assert not missing, f"feasjax {command} lacks {sorted(missing)}"


def test_each_shared_option_is_defined_in_one_place():
    cli = pathlib.Path(__file__).resolve().parents[1] / "feasjax" / "cli"
    for flag in SHARED:
        places = [f"{p.name}:{m.start()}" for p in sorted(cli.glob("*.py"))
                  for m in re.finditer(rf'add_argument\(\s*"{flag}"', p.read_text())]
        assert len(places) == 1, f"{flag} is defined in {places}"


def test_methods_are_checked_against_each_commands_choices():
    parser = build_parser()
    assert parser.parse_args(["groups", "--methods", "llr"]).methods == ("llr",)
    assert parser.parse_args(["federated", "--methods", "mix"]).methods == ("mix",)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--methods", "llr"])
    args = parser.parse_args(["groups", "--no-progress", "--no-compile-cache"])
    assert args.no_progress and args.no_compile_cache
