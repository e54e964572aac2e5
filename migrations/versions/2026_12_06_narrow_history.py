"""Narrow history: ``device_status`` becomes a view on three tables that store each text once.

A history row repeated its device id, code, message id, data id and source as text in every row and in the
(device_id, reported_at) index. The narrow format keeps them once: ``status_series`` (one row per device and code,
plus one per device for the values whose code is not known yet), ``status_messages`` (one row per message) and
``status_values`` (series, time, message and item index as the primary key; on SQLite the rows live in its B-tree, in
time order per series, so no second index is needed for a device's history). ``device_status`` becomes a view with
the table's columns in the table's order, so users' SQL and the ``status_history`` view read it as before.

The upgrade moves every history row with three INSERT … SELECT statements and drops the table; the downgrade moves
them back the same way. On SQLite this rewrites the history once: it takes time and disk roughly the size of the
table (both copies exist until the transaction commits; the old table's pages are reused by later writes, and the
file shrinks only with VACUUM).

Revision ID: 3e8a61c0d5f4
Revises: 9b3d2e7c4a10
Create Date: 2026-12-06 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3e8a61c0d5f4"
down_revision: str | Sequence[str] | None = "9b3d2e7c4a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.Text(), "sqlite")
TIME = sa.DateTime(timezone=True)
# bigserial on PostgreSQL; on SQLite, INTEGER makes the primary key the rowid.
MESSAGE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The history's rows with their text columns, in the table's column order: the view, and the downgrade's copy.
STATUS_ROWS = """
SELECT m.message_id, v.item_index, s.device_id, s.code, v.value, v.dp_id, v.reported_at, m.data_id, m.source
FROM status_values v
JOIN status_series s ON s.series_id = v.series_id
{join} status_messages m ON m.message_key = v.message_key
"""

# Every value has its message row, so both joins give the same rows. PostgreSQL leaves out a LEFT JOIN whose
# columns a query does not use (a chart's buckets: 61,474 index probes fewer); SQLite plans a filter on the
# message id (replay) as a scan of the values when the join is LEFT, so it keeps the inner join.
MESSAGE_JOIN = {"sqlite": "JOIN", "postgresql": "LEFT JOIN"}

COLUMNS = "message_id, item_index, device_id, code, value, dp_id, reported_at, data_id, source"

# device_status is read in full three times. SQLite reads it through its (device_id, reported_at) index when the
# query wants device ids in order (a DISTINCT on them first, a join on them), a lookup into the table per row:
# DISTINCT code, device_id reads the table itself (10 M rows: 12 s against 121 s).
MOVE_SERIES = "INSERT INTO status_series (code, device_id) SELECT DISTINCT code, device_id FROM device_status"

# Rows of one message share its data id and source.
MOVE_MESSAGES = (
    "INSERT INTO status_messages (message_id, data_id, source) "
    "SELECT message_id, MAX(data_id), MAX(source) FROM device_status GROUP BY message_id"
)

# A NULL code joins the device's unnamed series. The order is the fastest measured: SQLite reads device_status in
# its key's order (10 M rows: 113 s, against 377 s sorted by status_values' key), PostgreSQL inserts in
# status_values' key order (3 M rows: 40 s, against 59-63 s).
MOVE_VALUES = """
INSERT INTO status_values (series_id, reported_at, message_key, item_index, value, dp_id)
SELECT s.series_id, d.reported_at, m.message_key, d.item_index, d.value, d.dp_id
FROM device_status d
JOIN status_series s ON s.device_id = d.device_id AND {same_code}
JOIN status_messages m ON m.message_id = d.message_id
ORDER BY {order}
"""

MOVE_VALUES_BY_DIALECT = {
    "sqlite": {"same_code": "s.code IS d.code", "order": "d.message_id, d.item_index"},
    "postgresql": {
        "same_code": "s.code IS NOT DISTINCT FROM d.code",
        "order": "s.series_id, d.reported_at, m.message_key, d.item_index",
    },
}

MOVE_TO_TABLE = (
    f"INSERT INTO device_status ({COLUMNS}){STATUS_ROWS.format(join='JOIN')}ORDER BY m.message_id, v.item_index"
)

SCALED = {
    "sqlite": (
        "CASE WHEN json_type(s.value) NOT IN ('integer', 'real') THEN s.value "
        "WHEN p.type = 'Integer' AND p.scale > 0 "
        "THEN ROUND(CAST(s.value AS REAL) / CAST(substr('10000000000000000', 1, p.scale + 1) AS REAL), p.scale) "
        "ELSE CAST(s.value AS NUMERIC) END"
    ),
    "postgresql": (
        "CASE WHEN p.type = 'Integer' AND p.scale > 0 AND json_typeof(s.value) = 'number' "
        "THEN to_json(round((s.value::text)::numeric / (10::numeric ^ p.scale), p.scale)) ELSE s.value END"
    ),
}

# Unchanged; dropped and created again around the table's replacement (the only view that reads device_status).
STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, {scaled} AS value_scaled,
       p.unit, s.dp_id, s.message_id, s.item_index, s.source
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""


def upgrade() -> None:
    op.execute("DROP VIEW status_history")
    create_status_series()
    create_status_messages()
    create_status_values()
    op.execute(MOVE_SERIES)
    op.execute(MOVE_MESSAGES)
    op.execute(MOVE_VALUES.format(**MOVE_VALUES_BY_DIALECT[op.get_bind().dialect.name]))
    # Built once the rows are in, rather than row by row in an order other than its own.
    op.create_index(op.f("ix_status_values_message_key"), "status_values", ["message_key"])
    op.drop_table("device_status")
    join = MESSAGE_JOIN[op.get_bind().dialect.name]
    op.execute("CREATE VIEW device_status AS" + STATUS_ROWS.format(join=join))
    create_status_history()


def create_status_history() -> None:
    op.execute(STATUS_HISTORY.format(scaled=SCALED[op.get_bind().dialect.name]))


def create_status_series() -> None:
    op.create_table(
        "status_series",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("series_id", name=op.f("pk_status_series")),
        sa.UniqueConstraint("device_id", "code", name=op.f("uq_status_series_device_id_code")),
    )
    op.create_index(
        "ux_status_series_unnamed",
        "status_series",
        ["device_id"],
        unique=True,
        sqlite_where=sa.text("code IS NULL"),
        postgresql_where=sa.text("code IS NULL"),
    )


def create_status_messages() -> None:
    op.create_table(
        "status_messages",
        sa.Column("message_key", MESSAGE_KEY, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("data_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), server_default="stream", nullable=False),
        sa.PrimaryKeyConstraint("message_key", name=op.f("pk_status_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_status_messages_message_id")),
    )


def create_status_values() -> None:
    op.create_table(
        "status_values",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("message_key", MESSAGE_KEY, nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("series_id", "reported_at", "message_key", "item_index", name=op.f("pk_status_values")),
        sqlite_with_rowid=False,
    )


def create_device_status() -> None:
    op.create_table(
        "device_status",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=True),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("data_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), server_default="stream", nullable=False),
        sa.PrimaryKeyConstraint("message_id", "item_index", name=op.f("pk_device_status")),
        sqlite_with_rowid=False,
    )


def create_device_status_indexes() -> None:
    op.create_index(op.f("ix_device_status_device_id_reported_at"), "device_status", ["device_id", "reported_at"])
    op.create_index(
        "ix_device_status_unnamed",
        "device_status",
        ["device_id", "dp_id"],
        sqlite_where=sa.text("code IS NULL"),
        postgresql_where=sa.text("code IS NULL"),
    )


def downgrade() -> None:
    for view in ("status_history", "device_status"):
        op.execute(f"DROP VIEW {view}")
    create_device_status()
    op.execute(MOVE_TO_TABLE)
    create_device_status_indexes()
    for table in ("status_values", "status_messages", "status_series"):
        op.drop_table(table)
    create_status_history()
