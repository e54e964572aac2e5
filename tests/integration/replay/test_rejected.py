"""A message whose rows the database refuses, on SQLite and PostgreSQL (streams/store/isolate.py, the store's
RowsRejected in streams/store/engine.py and sql.py): kept as a ``rejected`` dead letter while the rest of its batch is
stored, and stored by ``replay --dead-letters`` once the archive takes it."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest
from sqlalchemy import text

from models.records import PulsarMessage
from models.tables import DeadLetter as DeadLetterRow
from models.tables import Message
from streams.errors import ConfigError, RowsRejected
from streams.store.isolate import REJECTED
from tests.integration.replay.harness import DERIVED, Archive, Replay, decoded, resolutions, traffic
from tests.unit.store.databases import truncate_all

pytestmark = pytest.mark.integration

REFUSED = 7  # the message of traffic() the archive refuses


def refuse(archive: Archive, message_id: str, *, sqlstate: str = "23514") -> None:
    """Make the archive refuse the ``messages`` row of ``message_id``: as a constraint does (SQLite: a trigger's
    ABORT, its constraint error), or on PostgreSQL with the error ``sqlstate``."""
    if archive.engine.dialect.name == "sqlite":
        archive.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages "
                f"WHEN NEW.message_id = '{message_id}' BEGIN SELECT RAISE(ABORT, 'refused by a test'); END"
            )
        )
        return
    archive.execute(
        text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.message_id = '{message_id}' THEN "
            f"RAISE EXCEPTION 'refused by a test' USING ERRCODE = '{sqlstate}'; END IF; RETURN NEW; END $$"
        ),
        text("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()"),
    )


def accept(archive: Archive) -> None:
    archive.execute(text("DROP TRIGGER refuse" + (" ON messages" if archive.engine.dialect.name != "sqlite" else "")))


def stored_alone(archive: Archive, messages: Sequence[PulsarMessage]) -> dict[str, list[tuple[object, ...]]]:
    """What the archive holds (the derived tables and ``messages``) after storing ``messages`` into it emptied."""
    truncate_all(archive.engine)
    archive.store(messages)
    return archive.snapshot("messages", *DERIVED, without=["messages.received_at"])


def test_a_refused_message_becomes_a_dead_letter_and_the_rest_of_its_batch_is_stored(archive: Archive) -> None:
    messages = traffic(40)
    refused = messages[REFUSED]
    refuse(archive, refused.message_id)
    result = archive.store(messages)
    assert (result.stored, result.duplicates, result.dead_letters) == (39, 0, {REJECTED: 1})
    [letter] = archive.rows(DeadLetterRow)
    assert (letter.message_id, letter.error_kind, letter.resolved_at) == (refused.message_id, REJECTED, None)
    assert "refused by a test" in letter.error
    assert letter.properties == refused.properties
    kept = msgspec.json.decode(letter.payload)
    [original] = decoded([refused])
    assert (kept["message_id"], kept["payload"], kept["device_id"]) == (
        refused.message_id,
        original.message.payload,
        original.message.device_id,
    )
    assert archive.count(Message) == 39
    stored = archive.snapshot("messages", *DERIVED, without=["messages.received_at"])
    assert stored == stored_alone(archive, [m for m in messages if m is not refused])


def test_storing_the_batch_again_adds_nothing_twice(archive: Archive) -> None:
    messages = traffic(40)
    refuse(archive, messages[REFUSED].message_id)
    archive.store(messages)
    once = archive.snapshot(without=["dead_letters.received_at", "messages.received_at"])
    again = archive.store(messages)  # a redelivery: the batch was committed, its acknowledgement lost
    assert (again.stored, again.duplicates, again.dead_letters) == (0, 39, {REJECTED: 1})
    assert again.counts is not None and again.counts.dead_letter_duplicates == 1
    assert archive.snapshot(without=["dead_letters.received_at", "messages.received_at"]) == once


def test_replay_stores_a_rejected_message_once_the_archive_takes_it(archive: Archive, replay: Replay) -> None:
    messages = traffic(40)
    refuse(archive, messages[REFUSED].message_id)
    archive.store(messages)
    status, out = replay(archive, "--dead-letters")
    assert status == 0, out
    assert resolutions(archive) == {None: 1}  # still refused: left unresolved, and said so
    assert "still failing: 1 (rejected 1), left unresolved" in out
    accept(archive)
    status, out = replay(archive, "--dead-letters")
    assert status == 0, out
    assert "stored: 1 message" in out
    assert resolutions(archive) == {"replayed: stored": 1}
    replayed = archive.snapshot("messages", *DERIVED, without=["messages.received_at"])
    assert replayed == stored_alone(archive, messages)  # as if it had never been refused


def test_a_program_limit_is_a_refusal_not_an_unavailable_database(archive: Archive) -> None:
    """PostgreSQL's program_limit_exceeded (an index row too large, say) is one of psycopg's OperationalErrors, which
    otherwise mean a database that cannot be reached: it was retried for ever."""
    if archive.engine.dialect.name != "postgresql":
        pytest.skip("an error class of PostgreSQL's")
    messages = traffic(12)
    refuse(archive, messages[3].message_id, sqlstate="54000")
    result = archive.store(messages)
    assert (result.stored, result.dead_letters) == (11, {REJECTED: 1})


def test_a_refusal_by_a_newer_schema_stops_the_worker_and_keeps_nothing(archive: Archive) -> None:
    """A migration ahead of this worker may refuse its rows (a new constraint): that is no message's fault."""
    messages = traffic(12)
    refuse(archive, messages[3].message_id)
    archive.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))  # a revision this code lacks
    with pytest.raises(ConfigError, match="which this version of tuya-archiver does not know"):
        archive.store(messages)
    assert (archive.count(Message), archive.count(DeadLetterRow)) == (0, 0)


def test_rows_refused_message_by_message_are_the_database_s_refusal_and_nothing_is_acknowledged(
    archive: Archive,
) -> None:
    archive.execute(
        text(
            "CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'refused by a test'); END"
            if archive.engine.dialect.name == "sqlite"
            else "ALTER TABLE messages ADD CONSTRAINT refuse CHECK (message_id = '')"
        )
    )
    with pytest.raises(RowsRejected):
        archive.store(traffic(40))
    assert (archive.count(Message), archive.count(DeadLetterRow)) == (0, 0)
