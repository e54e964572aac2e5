"""``tuya-archiver rules check [FILE]``: validate a rules file; print every problem (exit 1) or what the rules do.

Owns the subcommand's arguments and output only; loading and wording live in ``streams.rules``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from models.rules import RuleSet
from streams.rules import RulesFileError, load_rules
from streams.rules.describe import describe_rule
from streams.settings import Settings

__all__ = ["check", "print_summary", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="work with the rules file", description="Work with the rules file.")
    actions = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check_parser = actions.add_parser(
        "check",
        help="validate a rules file and summarise its rules",
        description=(__doc__ or "").split("\n\n")[0],
    )
    check_parser.add_argument("file", nargs="?", type=Path, help="the rules file (default: RULES_FILE)")
    check_parser.set_defaults(handler=check)


def check(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.rules_file
    if path is None:
        print("RULES_FILE is set but empty: no rules to check")
        return 0
    try:
        rule_set = load_rules(path, dry_run=settings.rules_dry_run)
    except RulesFileError as exc:
        for problem in exc.problems:
            print(problem)
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print_summary(rule_set, sys.stdout)
    return 0


def print_summary(rule_set: RuleSet, out: TextIO) -> None:
    """A heading with the counts, then each rule's triggers, conditions, actions and cooldown."""
    enabled = sum(rule.enabled for rule in rule_set.rules)
    plural = "s" if len(rule_set.rules) != 1 else ""
    out.write(
        f"{rule_set.source}: OK, {len(rule_set.rules)} rule{plural} ({enabled} enabled), "
        f"{len(rule_set.devices)} device aliases, dry run {'on' if rule_set.dry_run else 'off'}\n"
    )
    for rule in rule_set.rules:
        out.write("\n" + "\n".join(describe_rule(rule, rule_set)) + "\n")
