"""The ``tuya-archiver`` command list (streams/cli/__init__.py): every command reaches its module, and a command
imports only the module that owns it, so the worker does not carry the other commands' libraries."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import _COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]


def commands_of(parser: argparse.ArgumentParser) -> list[str]:
    (subparsers,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return list(subparsers.choices)


def test_each_module_registers_the_commands_mapped_to_it() -> None:
    for module in dict.fromkeys(_COMMANDS.values()):
        parser = argparse.ArgumentParser()
        importlib.import_module(module).register(parser.add_subparsers())
        assert commands_of(parser) == [name for name, owner in _COMMANDS.items() if owner == module]


@pytest.mark.parametrize("argv", [[], ["--help"], ["-v"], ["no-such-command"]])
def test_without_a_known_command_every_command_is_listed(argv: list[str]) -> None:
    assert commands_of(build_parser(argv)) == list(_COMMANDS)


@pytest.mark.parametrize(
    ("argv", "listed"),
    [
        (["run", "--max-messages", "5"], ["run"]),
        (["-v", "history", "dev1"], ["devices", "history", "purge"]),
        (["emulate-api"], ["command", "api", "emulate-api"]),
    ],
)
def test_a_named_command_registers_only_its_module(argv: list[str], listed: list[str]) -> None:
    assert commands_of(build_parser(argv)) == listed


def test_the_worker_command_loads_no_other_command_s_libraries() -> None:
    check = (
        "import sys\nfrom streams.cli import build_parser\nbuild_parser(['run']).parse_args(['run'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'uvicorn', 'starlette', 'mako'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('streams.cli.', 'streams.web', 'streams.demo'))))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.splitlines() == ["[]", "['streams.cli.arguments', 'streams.cli.run']"]  # and what they share
