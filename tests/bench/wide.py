"""The history's wide format, as the archive kept it before the narrow one (migration 2026_12_06_narrow_history):
one ``device_status`` row a value, its device id, code, message id, data id and source repeated as text in every
row and in the (device_id, reported_at) index.

Benchmarks only: issue 17's target 2 compares the SQL a message costs now with the SQL it cost then, both measured
in the same run, and the ``formats`` section measures bytes and speed of both. Created beside the migrated tables
as ``wide_status`` (``device_status`` is the view's name now); its insert is the store's of that time.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, text

from models.tables import JSONDocument, UtcDateTime
from streams.store.rows import STATUS_COLUMNS
from streams.store.statements import Target

__all__ = ["WIDE", "WIDE_STATUS"]

WIDE = MetaData()

Table(
    "wide_status",
    WIDE,
    Column("message_id", String, primary_key=True),
    Column("item_index", Integer, primary_key=True),
    Column("device_id", String, nullable=False),
    Column("code", String),
    Column("value", JSONDocument, nullable=False),
    Column("dp_id", Integer),
    Column("reported_at", UtcDateTime, nullable=False),
    Column("data_id", String),
    Column("source", String, nullable=False, server_default="stream"),
    Index("ix_wide_status_device_id_reported_at", "device_id", "reported_at"),
    Index(
        "ix_wide_status_unnamed",
        "device_id",
        "dp_id",
        sqlite_where=text("code IS NULL"),
        postgresql_where=text("code IS NULL"),
    ),
    sqlite_with_rowid=False,
)

#: The store's insert of a status row into the wide table (rows in STATUS_COLUMNS order, as the store builds them).
WIDE_STATUS = Target("wide_status", STATUS_COLUMNS, "ON CONFLICT (message_id, item_index) DO NOTHING")
