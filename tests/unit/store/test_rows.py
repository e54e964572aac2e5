"""Row building for the batch store (streams/store/rows.py, facts.py, prepared.py); the SQL side is in
tests/integration/test_store.py."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import sqlalchemy as sa

from streams.store.facts import (
    DEVICE_COLUMNS,
    DEVICE_SEEN_COLUMNS,
    USER_COLUMNS,
    DeviceFacts,
    merge_device_rows,
    merge_user_rows,
    seen_only,
    user_rows,
)
from streams.store.prepared import record_rows
from streams.store.rows import (
    DEAD_LETTER_COLUMNS,
    DEVICE_EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    STATUS_COLUMNS,
    STATUS_ITEM_COLUMNS,
    USER_EVENT_COLUMNS,
    StatusRows,
    dead_letter_row,
    flat_status,
    grouped_status,
    json_text,
    latest_state,
    message_row,
    sqlite_time,
    status_rows,
    unique,
)
from tests.unit.store import factories as f


def same(moment: datetime) -> datetime:
    return moment


def test_sqlite_time_is_the_text_sqlalchemy_reads_back_for_sqlite() -> None:
    moment = datetime(2026, 11, 1, 12, 0, 1, 5, tzinfo=UTC)
    table = sa.Table("t", sa.MetaData(), sa.Column("at", sa.DateTime(timezone=True)))
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as connection:
            table.create(connection)
            connection.exec_driver_sql("INSERT INTO t (at) VALUES (?)", (sqlite_time(moment),))
            read = connection.scalar(sa.select(table.c.at))
    finally:
        engine.dispose()
    assert sqlite_time(moment) == "2026-11-01 12:00:01.000005"
    assert read == moment.replace(tzinfo=None)


def test_sqlite_time_converts_other_offsets_to_utc() -> None:
    berlin = datetime(2026, 11, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert sqlite_time(berlin) == "2026-11-01 12:00:00.000000"


def test_json_text_keeps_big_numbers_and_unicode_exactly() -> None:
    value = {"n": 2**64 + 1, "neg": -(2**70), "f": 1.5, "name": "Küche 厨房 🔌"}
    text = json_text(value)
    assert isinstance(text, str)
    assert json.loads(text) == value


@pytest.mark.parametrize(
    ("dp_id", "stored"), [(1, 1), (255, 255), (2**31 - 1, 2**31 - 1), (2**31, None), (2**40, None)]
)
def test_status_rows_drop_dp_ids_no_integer_column_can_hold(dp_id: int, stored: int | None) -> None:
    record = msgspec.structs.replace(f.status_report(1, {"a": 1}).records[0], dp_id=dp_id)
    assert status_rows([record], same).items[0][STATUS_ITEM_COLUMNS.index("dp_id")] == stored


def test_a_message_s_status_values_share_its_message_device_and_data_id() -> None:
    report = f.status_report(1, {"switch_1": True, "cur_power": 12})
    rows = status_rows(report.records, same)
    assert (rows.message_id, rows.device_id, rows.data_id) == (f.message_id(1), f.DEVICE, report.records[0].data_id)
    assert rows.items == [(0, "switch_1", "true", 1, f.at(1)), (1, "cur_power", "12", 2, f.at(1))]


def test_status_values_flattened_and_grouped_again_are_the_same() -> None:
    messages = [status_rows(f.status_report(n, {"a": n, "b": -n}).records, same) for n in (1, 2)]
    flat = flat_status(messages)
    assert [len(row) for row in flat] == [len(STATUS_COLUMNS)] * 4
    assert [(row[0], row[3]) for row in flat] == [(f.message_id(n), code) for n in (1, 2) for code in "ab"]
    assert grouped_status(flat) == messages


def test_a_message_with_values_of_two_devices_is_refused() -> None:
    first, second = f.status_report(1, {"a": 1}).records[0], f.status_report(1, {"b": 2}, device="dev2").records[0]
    second = msgspec.structs.replace(second, item_index=1)
    with pytest.raises(ValueError, match=f"message {f.message_id(1)} has values of two devices"):
        status_rows([first, second], same)
    with pytest.raises(ValueError, match=f"message {f.message_id(1)} has values of two devices"):
        grouped_status(flat_status([status_rows([first], same), status_rows([second], same)]))


def test_unique_keeps_the_first_of_each_key() -> None:
    assert unique(["a1", "b1", "a2", "c1", "b2"], key=lambda s: s[0]) == ["a1", "b1", "c1"]


def test_every_row_fills_its_columns() -> None:
    report = f.status_report(1, {"switch_1": True})
    assert len(message_row(report.message, f.T0, same, unknown=False)) == len(MESSAGE_COLUMNS)
    assert len(status_rows(report.records, same).items[0]) == len(STATUS_ITEM_COLUMNS)
    assert len(dead_letter_row(f.dead_letter(2), f.T0, same)) == len(DEAD_LETTER_COLUMNS)
    rows = record_rows([f.device_event(3, "online"), f.user_event(4, "registered"), report], same)
    assert [len(rows.device_events[0]), len(rows.user_events[0])] == [
        len(DEVICE_EVENT_COLUMNS),
        len(USER_EVENT_COLUMNS),
    ]
    assert len(rows.devices[0]) == len(DEVICE_COLUMNS)
    assert len(rows.users[0]) == len(USER_COLUMNS)


def test_latest_state_keeps_the_newest_value_of_each_code_in_any_order() -> None:
    reports = [
        f.status_report(1, {"cur_power": 10, "switch_1": True}, when=f.at(100)),
        f.status_report(2, {"cur_power": 20}, when=f.at(50)),
        f.status_report(3, {"cur_power": 30}, when=f.at(100)),  # same time as message 1: greater id wins
    ]
    rows: list[StatusRows] = [status_rows(report.records, same) for report in reports]
    for order in itertools.permutations(rows):
        latest = {(row[0], row[1]): (row[2], row[5]) for row in latest_state(order)}
        assert latest == {
            (f.DEVICE, "cur_power"): ("30", f.message_id(3)),
            (f.DEVICE, "switch_1"): ("true", f.message_id(1)),
        }


def test_latest_state_of_a_code_repeated_in_one_message_is_its_later_item() -> None:
    repeated = StatusRows("m1", f.DEVICE, None, [(0, "cur_power", "10", 19, "t1"), (1, "cur_power", "20", 19, "t1")])
    assert [row[2] for row in latest_state([repeated])] == ["20"]


def test_record_rows_of_unknown_messages_are_only_seen_facts() -> None:
    rows = record_rows([f.unknown_message(1)], same)
    assert (rows.status, rows.device_events, rows.user_events, rows.device_state) == ([], [], [], [])
    assert [row[0] for row in rows.devices] == [f.DEVICE]


def device_row(*messages: object) -> dict[str, object]:
    facts = DeviceFacts()
    for message in messages:
        facts.add_message(message.records)  # type: ignore[attr-defined]
    [row] = facts.rows(same)
    return dict(zip(DEVICE_COLUMNS, row, strict=True))


def test_device_rows_of_reports_alone_are_split_from_those_that_tell_a_fact() -> None:
    reports = f.status_report(1, {"a": 1}, when=f.at(10)), f.status_report(2, {"a": 2}, when=f.at(30))
    offline = f.device_event(3, "offline", device="bf-offline")  # online False: a fact, though falsy
    told = [f.device_event(4, "name_updated", {"name": "n"}, device="bf-named"), offline]
    told.append(f.device_event(5, "deleted", device="bf-deleted"))
    facts = DeviceFacts()
    for message in (*reports, *told):
        facts.add_message(message.records)  # type: ignore[attr-defined]
    rows = facts.rows(same, raw=True)
    seen, others = seen_only(rows)
    assert [dict(zip(DEVICE_SEEN_COLUMNS, row, strict=True)) for row in seen] == [
        {"device_id": f.DEVICE, "product_key": f.PRODUCT, "first_seen_at": f.at(10), "last_seen_at": f.at(30),
         "report_count": 2}
    ]  # fmt: skip
    assert others == rows[1:]
    assert [row[0] for row in others] == ["bf-named", "bf-offline", "bf-deleted"]


def test_device_facts_take_the_newest_online_state_not_the_last_arrived() -> None:
    row = device_row(f.device_event(2, "online", when=f.at(20)), f.device_event(1, "offline", when=f.at(10)))
    assert (row["online"], row["online_changed_at"]) == (True, f.at(20))


def test_device_facts_name_owner_and_deletion_come_from_their_events() -> None:
    row = device_row(
        f.device_event(1, "name_updated", {"name": "Küche 厨房"}),
        f.device_event(2, "bound", {"uid": "eu17", "ownerId": "4567"}),
        f.device_event(3, "deleted", {"uid": "eu17"}),
    )
    assert (row["name"], row["owner_uid"], row["deleted_at"]) == ("Küche 厨房", "eu17", f.at(3))


def test_device_facts_span_first_and_last_seen_and_count_reports() -> None:
    row = device_row(
        f.status_report(1, {"a": 1, "b": 2}, when=f.at(30)),
        f.status_report(2, {"a": 3}, when=f.at(10)),
        f.device_event(3, "online", when=f.at(20)),
    )
    assert (row["first_seen_at"], row["last_seen_at"], row["report_count"]) == (f.at(10), f.at(30), 2)


def test_device_facts_a_device_bound_again_after_deletion_is_not_deleted() -> None:
    deleted = f.device_event(1, "deleted", {"uid": "eu17"}, when=f.at(10))
    bound = f.device_event(2, "bound", {"uid": "eu18"}, when=f.at(20))
    assert device_row(deleted, bound)["deleted_at"] is None
    assert device_row(bound, f.device_event(3, "deleted", when=f.at(30)))["deleted_at"] == f.at(30)


@pytest.mark.parametrize("data", [{}, {"name": None}, {"name": 42}])
def test_device_facts_ignore_a_rename_without_a_name(data: dict[str, object]) -> None:
    row = device_row(f.device_event(1, "name_updated", data))
    assert (row["name"], row["name_updated_at"]) == (None, None)


def test_user_rows_keep_registration_deletion_and_the_newest_data() -> None:
    events = [f.user_event(n, event).records[0] for n, event in ((1, "registered"), (3, "deleted"), (2, "updated"))]
    [row] = user_rows(events, same)  # type: ignore[arg-type]
    assert dict(zip(USER_COLUMNS, row, strict=True)) == {
        "uid": "eu1700000000000AbCdE",
        "registered_at": f.at(1),
        "deleted_at": f.at(3),
        "updated_at": f.at(3),
        "data": '{"uid":"eu1700000000000AbCdE","schema":"app"}',
    }


def _messages_of_one_device() -> list[object]:
    return [
        f.status_report(1, {"a": 1}, when=f.at(30)),
        f.device_event(2, "name_updated", {"name": "Küche"}, when=f.at(20)),
        f.device_event(3, "bound", {"uid": "eu17"}, when=f.at(40)),
        f.device_event(4, "deleted", {"uid": "eu17"}, when=f.at(35)),
        f.device_event(5, "offline", when=f.at(25)),
        f.status_report(6, {"a": 2}, when=f.at(10)),
        f.device_event(7, "name_updated", {"name": "Bad"}, when=f.at(20)),  # a tie: the earlier message wins
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(7), 7))[::97])
def test_merged_rows_of_single_messages_equal_the_facts_of_the_whole_batch(order: tuple[int, ...]) -> None:
    messages = [_messages_of_one_device()[index] for index in order]
    whole = DeviceFacts()
    for message in messages:
        whole.add_message(message.records)  # type: ignore[attr-defined]
    pieces = []
    for message in messages:
        one = DeviceFacts()
        one.add_message(message.records)  # type: ignore[attr-defined]
        pieces.extend(one.rows(same, raw=True))
    assert merge_device_rows(pieces) == whole.rows(same)


def test_a_deletion_a_later_bind_undid_is_dropped_only_once_every_message_is_merged() -> None:
    deleted, bound = (
        f.device_event(1, "deleted", when=f.at(10)),
        f.device_event(2, "bound", {"uid": "u"}, when=f.at(20)),
    )
    rows = []
    for message in (deleted, bound):
        facts = DeviceFacts()
        facts.add_message(message.records)
        rows.extend(facts.rows(same, raw=True))
    assert rows[0][10] == f.at(10)  # raw: the deletion is still there
    assert merge_device_rows(rows)[0][10] is None


def test_merged_user_rows_keep_the_newest_registration_deletion_and_data() -> None:
    events = [
        f.user_event(1, "registered", when=f.at(10)),
        f.user_event(2, "updated", when=f.at(30)),
        f.user_event(3, "deleted", when=f.at(20)),
    ]
    pieces = [row for event in events for row in user_rows(event.records, same)]  # type: ignore[arg-type]
    assert merge_user_rows(pieces) == user_rows([e.records[0] for e in events], same)  # type: ignore[misc]


@pytest.mark.parametrize("first", ["offline", "online"])
def test_online_wins_a_tie_with_offline_in_one_message_batch_and_across_merged_rows(first: str) -> None:
    """A reconnect reported offline and online within one second, in either order: the device is online."""
    second = "online" if first == "offline" else "offline"
    events = [f.device_event(1, first, when=f.at(20)), f.device_event(2, second, when=f.at(20))]
    assert (device_row(*events)["online"], device_row(*events)["online_changed_at"]) == (True, f.at(20))
    rows = []
    for event in events:
        facts = DeviceFacts()
        facts.add_message(event.records)
        rows.extend(facts.rows(same, raw=True))
    [merged] = merge_device_rows(rows)
    assert dict(zip(DEVICE_COLUMNS, merged, strict=True))["online"] is True
    later = f.device_event(3, "offline", when=f.at(21))  # a newer time still decides
    assert device_row(*events, later)["online"] is False
