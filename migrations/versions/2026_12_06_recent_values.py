"""New status values go to ``status_recent`` and are settled into ``status_values`` in bulk.

A commit writes every page it changed. ``status_values`` keeps each series' values together (series, time), so
once the archive has grown a batch's values land on a page each, and a backlog drained slower the larger the archive
it drained into (issue 17: 0.65x at 1 M messages on SQLite). The store now writes new values to ``status_recent``,
the same columns and key in a table that stays small, so a batch changes few of its pages. Once it holds
``HISTORY_SETTLE_VALUES`` values, one transaction moves them into ``status_values`` in key order
(streams.store.settle), writing each series' page once for many batches.

``device_status`` reads both tables; ``status_history``, which reads ``device_status``, is dropped and created
again around it, unchanged. The downgrade settles every recent value first.

Revision ID: 8d2e5b7c1a93
Revises: 4f7a9c1e2b58
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2e5b7c1a93"
down_revision: str | Sequence[str] | None = "4f7a9c1e2b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.Text(), "sqlite")
TIME = sa.DateTime(timezone=True)
MESSAGE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The values' alias: v settled, r recent (a query plan names which table it reads).
COLUMNS = (
    "m.message_id, {v}.item_index, s.device_id, s.code, {v}.value, {v}.dp_id, {v}.reported_at, m.data_id, m.source"
)
PLACED = "m.device_id = s.device_id AND {v}.reported_at BETWEEN m.first_at AND COALESCE(m.last_at, m.first_at)"

# As in 4f7a9c1e2b58: SQLite keeps the inner join to status_messages (PostgreSQL's view is below).
SQLITE_VALUES = """
SELECT {columns}
FROM {table} {v}
JOIN status_series s ON s.series_id = {v}.series_id
JOIN status_messages m ON m.message_key = {v}.message_key AND {placed}
"""

# As in 4f7a9c1e2b58, PostgreSQL leaves out a LEFT JOIN whose columns a query does not use. It cannot carry a join's
# condition (a device found by its name) into the arms of a UNION ALL that join tables themselves, so the view joins
# the union of the two tables alone: one relation of two parts, each reached through its own key, as a partitioned
# table's.
POSTGRES_VALUES = """
SELECT {columns}
FROM ({union}) v
JOIN status_series s ON s.series_id = v.series_id
LEFT JOIN status_messages m ON m.message_key = v.message_key AND {placed}
"""
VALUE_COLUMNS = "series_id, reported_at, message_key, item_index, value, dp_id"


def _device_status(dialect: str, tables: Sequence[str]) -> str:
    if dialect == "postgresql":
        union = " UNION ALL ".join(f"SELECT {VALUE_COLUMNS} FROM {table}" for table in tables)
        return POSTGRES_VALUES.format(columns=COLUMNS.format(v="v"), union=union, placed=PLACED.format(v="v"))
    arms = (
        SQLITE_VALUES.format(columns=COLUMNS.format(v=v), table=table, v=v, placed=PLACED.format(v=v))
        for table, v in zip(tables, ("v", "r"), strict=False)
    )
    return "UNION ALL".join(arms)


# Unchanged since 3e8a61c0d5f4; dropped and created again around device_status, which it reads.
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

STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, {scaled} AS value_scaled,
       p.unit, s.dp_id, s.message_id, s.item_index, s.source
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""

SETTLE = (
    "INSERT INTO status_values (series_id, reported_at, message_key, item_index, value, dp_id) "
    "SELECT series_id, reported_at, message_key, item_index, value, dp_id FROM status_recent WHERE true "
    "ORDER BY series_id, reported_at, message_key, item_index ON CONFLICT DO NOTHING"
)


def _views(*tables: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute("CREATE VIEW device_status AS" + _device_status(dialect, tables))
    op.execute(STATUS_HISTORY.format(scaled=SCALED[dialect]))


def _drop_views() -> None:
    for view in ("status_history", "device_status"):
        op.execute(f"DROP VIEW {view}")


def upgrade() -> None:
    _drop_views()
    op.create_table(
        "status_recent",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("message_key", MESSAGE_KEY, nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("series_id", "reported_at", "message_key", "item_index", name=op.f("pk_status_recent")),
        sqlite_with_rowid=False,
    )
    _views("status_values", "status_recent")


def downgrade() -> None:
    _drop_views()
    op.execute(SETTLE)
    op.drop_table("status_recent")
    _views("status_values")
