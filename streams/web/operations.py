"""The operations page: is the archive keeping up, and what needs someone's attention.

Owns what the page holds: ingestion lag against Tuya's retention window (2 hours unless TUYA_MESSAGE_RETENTION
says otherwise), dead letters by kind with the command that replays them, gaps and their backfill, the rules of
RULES_FILE (or why they do not load) with when each last fired, and the outbox. The queries are
streams/store/operations.py; the rules are read with ``streams.rules.load_rules``, as the worker reads them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from models.tables import COMMAND_STATUSES
from streams.rules import RulesFileError, load_rules
from streams.rules.describe import describe_rule
from streams.store.operations import (
    DEAD_LETTER_COLUMNS,
    GAP_COLUMNS,
    RuleActivity,
    dead_letter_kinds,
    gap_counts,
    newest_message,
    open_commands,
    outbox_counts,
    recent_dead_letters,
    recent_gaps,
    rule_activity,
)
from streams.store.query import COMMAND_COLUMNS
from streams.web.formats import rows_as_dicts
from streams.web.pages import Page

__all__ = ["CURRENT_LAG", "RulesSource", "operations_page", "replay_hint"]

#: An archive whose newest message arrived within this long is current.
CURRENT_LAG = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RulesSource:
    """Where the rules are (RULES_FILE; None when unset) and RULES_DRY_RUN."""

    path: Path | None
    dry_run: bool = False


def replay_hint(error_kind: str) -> str:
    """The command that retries the dead letters of one kind."""
    return f"tuya-archiver replay --dead-letters --error-kind {shlex.quote(error_kind)}"


def operations_page(connection: Connection, rules: RulesSource, retention: timedelta, now: datetime) -> Page:
    kinds = [row._asdict() | {"replay": replay_hint(row.error_kind)} for row in dead_letter_kinds(connection)]
    recent = recent_dead_letters(connection)
    counts = outbox_counts(connection)
    data = {
        "ingestion": _ingestion(connection, retention, now),
        "dead_letters": {"kinds": kinds, "recent": rows_as_dicts((*DEAD_LETTER_COLUMNS, "bytes"), recent)},
        "gaps": {
            "counts": [row._asdict() for row in gap_counts(connection)],
            "recent": rows_as_dicts(GAP_COLUMNS, recent_gaps(connection)),
        },
        "rules": _rules(rule_activity(connection), rules),
        "outbox": {
            "counts": {status: counts.get(status, 0) for status in COMMAND_STATUSES},
            "open": rows_as_dicts(COMMAND_COLUMNS, open_commands(connection)),
        },
    }
    return Page("operations.html", data)


def _ingestion(connection: Connection, retention: timedelta, now: datetime) -> dict[str, Any]:
    """How long ago the newest message arrived (and was pushed by Tuya), against Tuya's retention window."""
    newest = newest_message(connection)
    window_s = retention.total_seconds()
    if newest is None:
        return {"status": "empty", "window_s": window_s, "received_at": None, "pushed_at": None, "lag_s": None}
    lag = now - newest.received_at
    status = "current" if lag <= CURRENT_LAG else "behind" if lag <= retention else "beyond_window"
    return {
        "status": status,
        "window_s": window_s,
        "received_at": newest.received_at,
        "pushed_at": newest.pushed_at,
        "lag_s": max(lag.total_seconds(), 0.0),
        "push_lag_s": max((now - newest.pushed_at).total_seconds(), 0.0),
    }


def _rules(activity: RuleActivity, source: RulesSource) -> dict[str, Any]:
    """The rules of the file with their activity; a problem instead when there is no file or it does not load."""
    never = {"commands": 0, "last_command_at": None, "last_fired_at": None}
    if source.path is None:
        return {"status": "not_set", "source": None, "problems": ["RULES_FILE is not set"], "rules": [],
                "others": _others(activity, set(), never)}  # fmt: skip
    try:
        rule_set = load_rules(source.path, dry_run=source.dry_run)
    except RulesFileError as exc:
        return {"status": "invalid", "source": str(source.path), "problems": [str(p) for p in exc.problems],
                "rules": [], "others": _others(activity, set(), never)}  # fmt: skip
    rules = [
        {
            "id": rule.id,
            "alias": rule.alias,
            "enabled": rule.enabled,
            "dry_run": rule.dry_run or rule_set.dry_run,
            "description": [line.strip() for line in describe_rule(rule, rule_set)[1:]],
            **activity.get(rule.id, never),
        }
        for rule in rule_set.rules
    ]
    ids = {rule.id for rule in rule_set.rules}
    return {"status": "loaded", "source": str(source.path), "problems": [], "rules": rules,
            "others": _others(activity, ids, never)}  # fmt: skip


def _others(activity: RuleActivity, known: set[str], never: dict[str, Any]) -> list[dict[str, Any]]:
    """Rules the archive has commands or state of that the file does not (or no longer) define."""
    return [{"id": rule_id, **never, **entry} for rule_id, entry in sorted(activity.items()) if rule_id not in known]
