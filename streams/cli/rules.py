"""``tuya-archiver rules check [FILE]``: validate a rules file; print every problem (exit 1) or what the rules do.

Owns the subcommand's arguments and output only; loading and wording live in ``streams.rules``. When the archive on
DATABASE_URL can be read, its data-point catalog checks the units of thresholds and shows their raw or physical
side in the summary; when it cannot, one line on stderr says that units were not checked, and why. A SQLite archive
that does not exist is not created.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from models.rules import RuleSet
from streams.errors import ConfigError, DatabaseUnavailable
from streams.fleet.catalog import Catalog
from streams.rules import PointLookup, RulesFileError, load_rules, no_points
from streams.rules.describe import describe_rule
from streams.settings import Settings
from streams.store.engine import ensure_at_head, make_engine, normalize_url, sqlite_file, unavailable_on_failure
from streams.store.fleet import load_catalog

__all__ = ["archive_catalog", "check", "print_summary", "register"]


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
    catalog = archive_catalog(settings.database_url)
    unchecked = f"{path}: codes and units not checked: {catalog}" if isinstance(catalog, str) else None
    try:
        rule_set = load_rules(path, dry_run=settings.rules_dry_run, catalog=None if unchecked else catalog)
    except RulesFileError as exc:
        for problem in exc.problems:
            print(problem)
        if unchecked:
            print(unchecked, file=sys.stderr)
        _not_checked_yet([str(note) for note in exc.unchecked])
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    if unchecked:
        print(unchecked, file=sys.stderr)
    _not_checked_yet(rule_set.unchecked)
    print_summary(rule_set, sys.stdout, points=catalog.point if isinstance(catalog, Catalog) else no_points)
    return 0


def _not_checked_yet(notes: Sequence[str]) -> None:
    """Thresholds the archive cannot check yet (before a sync): said on stderr, not problems (the worker runs them)."""
    for note in notes:
        print(f"{note} (not a problem: the worker runs the rule)", file=sys.stderr)


def archive_catalog(database_url: str) -> Catalog | str:
    """The data-point catalog of the archive at ``database_url``, or why it cannot be read (one line)."""
    try:
        url = normalize_url(database_url)
    except ConfigError as exc:
        return str(exc)
    local = sqlite_file(url)
    if local is not None and not local.exists():
        return f"no archive at {local} (DATABASE_URL)"
    engine = make_engine(database_url)
    try:
        ensure_at_head(engine)
        with unavailable_on_failure("reading the data-point catalog"), engine.connect() as connection:
            return load_catalog(connection)
    except (ConfigError, DatabaseUnavailable) as exc:
        return str(exc)
    finally:
        engine.dispose()


def print_summary(rule_set: RuleSet, out: TextIO, points: PointLookup = no_points) -> None:
    """A heading with the counts, then each rule's triggers, conditions, actions and cooldown.

    ``points`` (the archive's data points) adds the other side of numeric thresholds: physical or raw.
    """
    enabled = sum(rule.enabled for rule in rule_set.rules)
    plural = "s" if len(rule_set.rules) != 1 else ""
    out.write(
        f"{rule_set.source}: OK, {len(rule_set.rules)} rule{plural} ({enabled} enabled), "
        f"{len(rule_set.devices)} device aliases, dry run {'on' if rule_set.dry_run else 'off'}\n"
    )
    for rule in rule_set.rules:
        out.write("\n" + "\n".join(describe_rule(rule, rule_set, points)) + "\n")
