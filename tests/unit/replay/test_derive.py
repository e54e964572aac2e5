"""streams/replay/derive.py: rebuilding messages from kept rows, normalising stored payloads again, and the row
comparisons of a re-derivation (partner: tests/integration/test_replay.py, which runs them on real archives)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from models.points import PointSpec
from models.records import DeadLetter, PulsarMessage, StatusReported
from streams.errors import PayloadError
from streams.fleet.catalog import Catalog
from streams.replay.derive import (
    RowDiff,
    TableChanges,
    changed_values,
    device_fact_rows,
    diff_rows,
    epoch_ms,
    pulsar_message,
    rederive,
    snapshot_changes,
    stale_keys,
)
from streams.sim import Fleet
from streams.store.facts import DEVICE_COLUMNS
from streams.store.replay import StoredDeadLetter, StoredMessage
from streams.tuya.decoder import Decoded, MessageDecoder
from streams.tuya.normalize import utc

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
DEVICE = "bf1e8a0cd2e4a1b2c3x9kq"
PRODUCT = "keyjup78v54myhan"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def stored_message(decoded: Decoded, **overrides: Any) -> StoredMessage:
    """The ``messages`` row the store keeps of ``decoded``, as streams.store.replay reads it back."""
    message = decoded.message
    fields: dict[str, Any] = {
        "message_id": message.message_id,
        "topic": message.topic,
        "protocol": message.protocol,
        "biz_code": message.biz_code,
        "device_id": message.device_id,
        "encrypt_model": message.encrypt_model,
        "sign_ok": message.sign_ok,
        "pushed_at": message.pushed_at,
        "published_at": message.published_at,
        "received_at": T0,
        "payload": message.payload,
        "properties": message.properties,
    }
    fields.update(overrides)
    return StoredMessage(**fields)


def fleet_traffic(count: int) -> list[Decoded]:
    clock = itertools.count(1_700_000_000_123, 997)
    fleet = Fleet(ACCESS_KEY, 8, clock=lambda: next(clock), seed=5)
    decoder = MessageDecoder(ACCESS_KEY)
    decoded = []
    for index, sim in enumerate(fleet.messages(count)):
        message = PulsarMessage(
            payload=sim.payload, properties=sim.properties, message_id=f"{index}:0:0:-1", topic="t",
            publish_time_ms=1_700_000_000_000 + index,
        )  # fmt: skip
        result = decoder.decode(message)
        assert isinstance(result, Decoded)
        decoded.append(result)
    return decoded


# --- rebuilding messages --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ms", [0, 1, 999, 1_700_000_000_123, 1_700_000_000_999, 253_402_300_799_999])
def test_epoch_ms_gives_back_the_milliseconds_a_time_was_made_from(ms: int) -> None:
    assert epoch_ms(utc(ms)) == ms


def test_a_dead_letter_becomes_the_message_the_broker_delivered() -> None:
    letter = StoredDeadLetter(
        message_id="7:3:0:-1",
        topic="persistent://id/out/event",
        payload=b'{"data":"x"}',
        properties={"em": "aes_gcm"},
        error_kind="gcm_tag_mismatch",
        published_at=utc(1_700_000_000_123),
        received_at=T0,
    )
    assert pulsar_message(letter) == PulsarMessage(
        payload=b'{"data":"x"}',
        properties={"em": "aes_gcm"},
        message_id="7:3:0:-1",
        topic="persistent://id/out/event",
        publish_time_ms=1_700_000_000_123,
    )


def test_a_dead_letter_without_publish_time_has_none() -> None:
    letter = StoredDeadLetter("1:1:0:-1", "t", b"", {}, "bad_base64", None, T0)
    assert pulsar_message(letter).publish_time_ms == 0


def test_a_dead_letter_of_a_wrong_key_decodes_with_the_right_one() -> None:
    fleet = Fleet(ACCESS_KEY, 2, clock=lambda: 1_700_000_000_000, seed=2)
    sim = fleet.status(0, {"cur_power": 31000}, cipher="gcm")
    original = PulsarMessage(payload=sim.payload, properties=sim.properties, message_id="1:1:0:-1", topic="t")
    dead = MessageDecoder("fedcba9876543210fedcba9876543210").decode(original)
    assert isinstance(dead, DeadLetter)
    letter = StoredDeadLetter(dead.message_id, dead.topic, dead.payload, dead.properties, dead.error_kind, None, T0)
    assert MessageDecoder(ACCESS_KEY).decode(pulsar_message(letter)) == MessageDecoder(ACCESS_KEY).decode(original)


# --- normalising stored payloads again -----------------------------------------------------------------------------


def test_a_stored_message_derives_the_records_the_decoder_made() -> None:
    for decoded in fleet_traffic(200):
        assert rederive(stored_message(decoded), Catalog()) == decoded


def dp_only_report() -> StoredMessage:
    payload = {"devId": DEVICE, "productKey": PRODUCT, "status": [{"dpId": 19, "t": 1_700_000_000_000, "value": 95}]}
    return StoredMessage(
        "5:5:0:-1", "t", 4, None, DEVICE, "aes_gcm", True, utc(1_700_000_000_001), None, T0,
        msgspec.json.encode(payload).decode(), {"em": "aes_gcm"},
    )  # fmt: skip


def test_an_item_with_only_a_dp_id_is_named_through_the_catalog() -> None:
    point = PointSpec(product_id=PRODUCT, code="cur_power", type="Integer", dp_id=19)
    [record] = rederive(dp_only_report(), Catalog([point])).records
    assert isinstance(record, StatusReported)
    assert (record.code, record.dp_id, record.value) == ("cur_power", 19, 95)


def test_an_item_with_only_a_dp_id_the_catalog_does_not_name_keeps_no_code() -> None:
    [record] = rederive(dp_only_report(), Catalog()).records
    assert isinstance(record, StatusReported)
    assert (record.code, record.dp_id) == (None, 19)


def test_a_payload_that_no_longer_normalises_raises_its_kind() -> None:
    broken = stored_message(fleet_traffic(1)[0], protocol=4, payload='{"devId": "bf1", "status": 3}')
    with pytest.raises(PayloadError) as raised:
        rederive(broken, Catalog())
    assert raised.value.kind == "bad_status_report"


# --- comparing rows ---------------------------------------------------------------------------------------------------


def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:2]


def status(message: str, index: int, code: str | None, value: str, device: str = DEVICE) -> tuple[Any, ...]:
    """A row in streams.store.rows.STATUS_COLUMNS order."""
    return (message, index, device, code, value, index + 1, T0, None)


def test_equal_rows_make_no_difference() -> None:
    rows = [status("1", 0, "a", "1"), status("1", 1, "b", "true")]
    assert diff_rows(rows, list(rows), key) == RowDiff()


def test_rows_are_inserted_updated_and_deleted_by_key() -> None:
    stored = [status("1", 0, "a", "1"), status("1", 1, "b", "true"), status("1", 2, "c", "0")]
    derived = [status("1", 0, "a", "1"), status("1", 1, "b", "1"), status("1", 3, "d", "5")]
    diff = diff_rows(stored, derived, key)
    assert diff.inserts == [status("1", 3, "d", "5")]
    assert diff.updates == [(status("1", 1, "b", "true"), status("1", 1, "b", "1"))]
    assert diff.deletes == [status("1", 2, "c", "0")]
    assert diff.changes == TableChanges(inserted=1, updated=1, deleted=1)
    assert diff.removed == [status("1", 2, "c", "0"), status("1", 1, "b", "true")]
    assert diff.written == [status("1", 3, "d", "5"), status("1", 1, "b", "1")]


def test_changed_values_name_both_versions_of_a_renamed_item_and_skip_unnamed_ones() -> None:
    diff = diff_rows(
        [status("2", 0, "power_old", "20"), status("2", 1, None, "3"), status("2", 2, "gone", "1")],
        [status("2", 0, "cur_power", "20"), status("2", 1, None, "4")],
        key,
    )
    assert changed_values(diff) == {(DEVICE, "gone", "2"), (DEVICE, "power_old", "2"), (DEVICE, "cur_power", "2")}


def state(code: str, message: str, source: str = "stream") -> tuple[Any, ...]:
    """A row in DEVICE_STATE_COLUMNS order."""
    return (DEVICE, code, "1", None, T0, message, source)


def test_a_latest_value_is_stale_only_when_it_came_from_a_changed_value() -> None:
    current = {
        (DEVICE, "power_old"): state("power_old", "2"),
        (DEVICE, "cur_power"): state("cur_power", "1"),
        (DEVICE, "switch_1"): state("switch_1", "api:tid", "api"),
    }
    changed = {(DEVICE, "power_old", "2"), (DEVICE, "cur_power", "2")}
    assert stale_keys(current, changed) == [(DEVICE, "power_old")]


def device_row(device_id: str, product_key: str | None, reports: int) -> tuple[Any, ...]:
    facts = dict.fromkeys(DEVICE_COLUMNS) | {"device_id": device_id, "product_key": product_key}
    return tuple({**facts, "report_count": reports, "first_seen_at": T0, "last_seen_at": T0}[c] for c in DEVICE_COLUMNS)


def test_device_facts_of_a_replay_count_no_report_and_keep_a_known_product() -> None:
    rows = [device_row("known", "new-product", 3), device_row("productless", "p2", 1), device_row("new", "p3", 2)]
    stored = {("known",): device_row("known", "old-product", 9), ("productless",): device_row("productless", None, 4)}
    assert device_fact_rows(rows, stored) == [
        device_row("known", None, 0),
        device_row("productless", "p2", 0),
        device_row("new", "p3", 0),
    ]


def test_snapshots_count_what_was_added_changed_and_removed() -> None:
    before = {("a",): ("a", 1), ("b",): ("b", 1), ("c",): ("c", 1)}
    after = {("a",): ("a", 1), ("b",): ("b", 2), ("d",): ("d", 1)}
    assert snapshot_changes(before, after) == TableChanges(inserted=1, updated=1, deleted=1)
    assert snapshot_changes(before, dict(before)) == TableChanges()


def test_table_changes_add_up() -> None:
    total = TableChanges(1, 2, 3) + TableChanges(10, 20, 30)
    assert (total, total.total) == (TableChanges(11, 22, 33), 66)
