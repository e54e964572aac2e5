"""Status values into the history's narrow format: ``status_series``, ``status_messages`` and ``status_values``.

Owns turning status values (a :class:`~streams.store.rows.StatusRows` a message, times as the driver carries them)
into the three tables' rows: a series key for each (device, code), a message key for each message, and one narrow
row a value (in ``status_values``, or in ``status_recent`` until settled into it: streams.store.settle). Series
keys are cached across transactions once committed (series are never deleted); message keys are handed out in the
caller's transaction. Runs on the caller's raw cursor through a driver (:mod:`streams.store.drivers`); never
commits. Users read the rows back through the ``device_status`` view.
Also owns where a message's values are (its device, first and last time: :func:`message_places`), and the
condition that finds them there (:func:`where_placed`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Table, and_, func

from models.tables import StatusMessage, StatusRecent, StatusSeries, StatusValue
from streams.store.statements import STATUS_MESSAGES, STATUS_SERIES, STATUS_VALUES, Target

if TYPE_CHECKING:
    from streams.store.drivers import Driver
    from streams.store.rows import StatusRows

__all__ = ["VALUE_TABLES", "SeriesKeys", "insert_status", "message_places", "status_message_row", "where_placed"]

Row = tuple[Any, ...]
#: Where a status value is: settled into the history, or recent (streams.store.settle); the same columns and key.
VALUE_TABLES = (StatusValue.__table__, StatusRecent.__table__)
SeriesKey = tuple[str, str | None]  # (device_id, code); code None: the device's values with only a DP id
SeriesIds = dict[str, dict[str | None, int]]  # device_id → code → series_id


def _order(key: SeriesKey) -> tuple[str, str]:
    return key[0], key[1] or ""


class SeriesKeys:
    """The series id of each (device, code), by device then code: looked up (or created) in a transaction, kept for
    later ones only once that transaction committed (a rolled-back series id names nothing). Codes are interned, so
    a fleet's 50,000 series take a few MB (the writer process's memory counts against the worker's).

    Series are never deleted; a table emptied or rebuilt all the same (tests, a downgrade and upgrade under a
    running worker) is noticed by its highest id falling below the highest one known, and everything is looked up
    again.
    """

    def __init__(self) -> None:
        self._ids: dict[str, dict[str | None, int]] = {}  # this transaction's included
        self._pending: list[SeriesKey] = []
        self._highest = 0

    def known(self, driver: Driver, cursor: Any) -> SeriesIds:
        """The series ids known so far (this transaction's included)."""
        if self._ids and driver.highest_series_id(cursor) < self._highest:
            self._ids.clear()
            self._highest = 0
        return self._ids

    def resolve(self, driver: Driver, cursor: Any, wanted: set[SeriesKey]) -> SeriesIds:
        """The known ids, with those of ``wanted`` looked up and the series missing created."""
        missing = [key for key in wanted if key[1] not in self._ids.get(key[0], ())]
        if missing:
            devices = sorted({device for device, _ in missing})
            found = driver.series_ids(cursor, devices)
            absent = sorted((key for key in missing if key not in found), key=_order)
            if absent:
                driver.insert(cursor, STATUS_SERIES, absent)
                found = driver.series_ids(cursor, devices)
            for device, code in missing:
                self._ids.setdefault(device, {})[code if code is None else sys.intern(code)] = found[device, code]
            self._pending.extend(missing)
        return self._ids

    def committed(self) -> None:
        if self._pending:
            self._highest = max(self._highest, *(self._ids[device][code] for device, code in self._pending))
            self._pending.clear()

    def rolled_back(self) -> None:
        for device, code in self._pending:
            codes = self._ids.get(device, {})
            codes.pop(code, None)
            if not codes:
                self._ids.pop(device, None)
        self._pending.clear()


def insert_status(
    driver: Driver,
    cursor: Any,
    messages: Sequence[StatusRows],
    series: SeriesKeys,
    *,
    stored: Literal["skip", "add"],
    source: str = "stream",
    into: Target = STATUS_VALUES,
) -> int:
    """Store status values, a StatusRows a message, ``into`` ``status_values`` or ``status_recent`` (the worker's,
    to be settled: streams.store.settle); returns how many values were offered (duplicates of stored values are
    skipped by its key). A message already in ``status_messages`` (stored before,
    its ``messages`` row perhaps purged since): ``skip`` leaves its values out (the batch store: a redelivery adds
    nothing); ``add`` stores them under its key, sets its device and data id to theirs and widens its times to hold
    them (replay, after deleting the values it replaces: a message's values share one device and data id).

    A message's row keeps its device and the times of its first and last value, which is how its values are found
    again (models.tables.StatusMessage).
    """
    if not messages:
        return 0
    places = message_places(messages)
    keys = driver.status_message_keys(cursor, list(places))
    if keys and stored == "skip":
        messages = [message for message in messages if message.message_id not in keys]
        places = {message_id: place for message_id, place in places.items() if message_id not in keys}
        keys = {}
    widened = dict(keys)
    new = [message_id for message_id in places if message_id not in keys]
    if new:
        allotted = dict(zip(new, driver.next_message_keys(cursor, len(new)), strict=True))
        message_rows = (status_message_row(key, i, places[i], source) for i, key in allotted.items())
        inserted = driver.insert_returning(cursor, STATUS_MESSAGES, message_rows, "message_id")
        if inserted is not None and len(inserted) < len(new):  # another writer stored some of them meanwhile
            others = driver.status_message_keys(cursor, [i for i in new if i not in inserted])
            allotted = {i: key for i, key in allotted.items() if i in inserted}
            if stored == "skip":
                messages = [message for message in messages if message.message_id not in others]
            else:
                allotted |= others
                widened |= others
        keys |= allotted
    if widened:  # replay: a message derived again may name another device or data id, as well as other times
        driver.restate_status_messages(cursor, [(*places[i], key) for i, key in widened.items()])
    ids = series.known(driver, cursor)
    missing = set()  # a (device, code) this process has not seen yet
    for message in messages:
        codes = ids.get(message.device_id, {})
        missing.update((message.device_id, item[1]) for item in message.items if item[1] not in codes)
    if missing:
        ids = series.resolve(driver, cursor, missing)
    # Rows made as they are bound: a batch's values would be the writer's largest list (memory target, issue 17).
    driver.insert(cursor, into, _values(messages, ids, keys))
    return sum(len(message.items) for message in messages)


def _values(messages: Sequence[StatusRows], ids: SeriesIds, keys: dict[str, int]) -> Iterator[Row]:
    for message in messages:
        codes, key = ids[message.device_id], keys[message.message_id]
        for index, code, value, dp_id, at in message.items:
            yield codes[code], at, key, index, value, dp_id


def status_message_row(key: int, message_id: str, place: Sequence[Any], source: str) -> Row:
    """A message's ``status_messages`` row, ``place`` as :func:`message_places` gives it; ``last_at`` NULL when its
    values share one time (models.tables.StatusMessage). Places keep both times: widening a stored message's times
    compares with them, and SQLite's ``MAX(x, NULL)`` is NULL."""
    data_id, device_id, first, last = place
    return key, message_id, data_id, device_id, first, None if last == first else last, source


def message_places(messages: Sequence[StatusRows]) -> dict[str, list[Any]]:
    """Each message's ``status_messages`` columns after its key: data id, device, first and last value's time."""
    places: dict[str, list[Any]] = {}
    for message in messages:
        times = [item[4] for item in message.items]
        places[message.message_id] = [message.data_id, message.device_id, min(times), max(times)]
    return places


def where_placed(values: Table = StatusValue.__table__) -> ColumnElement[bool]:
    """A ``status_values`` row (or ``status_recent``'s) where its ``status_messages`` row places it: in a
    ``status_series`` of the message's device, between its first and last value's time, under its key. How replay
    and purge find a message's values through the primary key (models.tables.StatusMessage); ``device_status``
    joins the same way."""
    messages, series = StatusMessage.__table__, StatusSeries.__table__
    return and_(
        series.c.device_id == messages.c.device_id,
        values.c.series_id == series.c.series_id,
        values.c.reported_at.between(messages.c.first_at, func.coalesce(messages.c.last_at, messages.c.first_at)),
        values.c.message_key == messages.c.message_key,
    )
