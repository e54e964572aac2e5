"""streams/replay/report.py: the wording of a replay's progress line and summary (partner:
tests/integration/test_replay.py, which reads these lines from the real command)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from streams.replay.derive import TableChanges
from streams.replay.report import TABLES, DeadLetterReport, MessageReport

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def dead_letters(**overrides: object) -> DeadLetterReport:
    report = DeadLetterReport(
        since=SINCE,
        error_kinds=("gcm_tag_mismatch", "bad_padding"),
        read=1234,
        stored=1200,
        already_stored=4,
        status_rows=5000,
        device_events=80,
        user_events=2,
        fired=3,
        failing=Counter({"bad_base64": 20, "gcm_tag_mismatch": 10}),
    )
    for name, value in overrides.items():
        setattr(report, name, value)
    return report


def test_dead_letter_summary_says_what_was_stored_resolved_and_still_fails() -> None:
    assert dead_letters().summary_lines(rules=True) == [
        "dead letters read: 1,234 unresolved (received since 2026-11-01T00:00:00+00:00; "
        "error kind gcm_tag_mismatch or bad_padding)",
        "stored: 1,200 messages (5,000 status values, 80 device events, 2 user events); "
        "their dead letters marked resolved",
        "already stored: 4 (marked resolved)",
        "still failing: 30 (bad_base64 20, gcm_tag_mismatch 10), left unresolved",
        "rules: 3 actions fired (the worker's outbox sender delivers what fires)",
    ]


def test_dead_letter_dry_run_summary_says_would() -> None:
    lines = dead_letters(dry_run=True).summary_lines(rules=True)
    assert lines[1].startswith("would store: 1,200 messages (")
    assert lines[2] == "already stored: 4 (would be marked resolved)"
    assert lines[-1] == "rules: not run in a dry run (the worker's outbox sender delivers what fires)"


def test_dead_letter_summary_says_what_a_backfill_had_stored_only_when_it_had() -> None:
    said = "already backfilled from the device log: 1,500 status values and device events, "
    assert said + "not stored again" in dead_letters(from_log=1500).summary_lines()
    assert said + "which would not be stored again" in dead_letters(from_log=1500, dry_run=True).summary_lines()
    assert not any("backfilled" in line for line in dead_letters().summary_lines())


def test_dead_letter_summary_without_rules_says_nothing_of_them() -> None:
    assert not any(line.startswith("rules:") for line in dead_letters().summary_lines())


def test_no_dead_letters_is_nothing_to_replay() -> None:
    assert DeadLetterReport().summary_lines() == ["dead letters read: 0 unresolved", "nothing to replay"]


def test_dead_letter_progress_line() -> None:
    assert dead_letters().progress_text() == (
        "dead letters 1,234 read · 1,200 stored · 4 already stored · 30 still failing"
    )


def messages(**overrides: object) -> MessageReport:
    report = MessageReport(since=SINCE, read=5000, failing=Counter({"bad_status_report": 2}))
    report.add({"device_status": TableChanges(10, 3, 1), "devices": TableChanges(0, 2, 0)})
    for name, value in overrides.items():
        setattr(report, name, value)
    return report


def test_message_summary_lists_every_table() -> None:
    assert messages().summary_lines() == [
        "messages read: 5,000 (received since 2026-11-01T00:00:00+00:00); normalised again: 4,998",
        "could not be normalised: 2 (bad_status_report 2), their rows left as they were",
        "device_status: 10 inserted, 3 updated, 1 deleted",
        "device_events: 0 inserted, 0 updated, 0 deleted",
        "user_events: 0 inserted, 0 updated, 0 deleted",
        "device_state: 0 inserted, 0 updated, 0 deleted",
        "devices: 0 inserted, 2 updated, 0 deleted",
        "users: 0 inserted, 0 updated, 0 deleted",
    ]


def test_message_dry_run_summary_says_would() -> None:
    assert messages(dry_run=True).summary_lines()[2] == "device_status: would insert 10, update 3, delete 1"


def test_a_replay_that_changes_nothing_says_so() -> None:
    lines = MessageReport(read=7).summary_lines()
    assert lines[-1] == "nothing to change: the archive is what today's normalisation derives"
    assert len(lines) == 2 + len(TABLES)


def test_pages_add_up_per_table() -> None:
    report = messages()
    report.add({"device_status": TableChanges(1, 1, 1)})
    assert report.tables["device_status"] == TableChanges(11, 4, 2)
    assert report.changed == 19
    assert report.progress_text() == "messages 5,000 read · 2 failed · 19 rows changed"
