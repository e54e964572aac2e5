"""A history message's values are found through its device and times, not an index on the values' message key.

``replay --messages`` and ``purge`` look up a message's values. The index on ``status_values.message_key`` that
served them held, on SQLite, each value's whole primary key again (45 bytes a value) and cost the writer a fifth
of its time. ``status_messages`` now keeps where its values are: the device (``device_id``) and the times of its
first and last value (``first_at``, ``last_at``). The values sit in the device's series between those times, and
the primary key (series, time) reaches them. ``device_status`` joins on them too, so a filter on the message id
takes that path as well.

The upgrade fills the three columns from the values, through the index it then drops. A ``status_messages`` row
without values (a replay whose new reading of the message had none) places nothing and is deleted. On SQLite,
``status_messages`` is rebuilt once, for the columns' NOT NULL.

Revision ID: 6b1f0c2d9e47
Revises: 3e8a61c0d5f4
Create Date: 2026-12-06 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6b1f0c2d9e47"
down_revision: str | Sequence[str] | None = "3e8a61c0d5f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)

VIEW = """
CREATE VIEW device_status AS
SELECT m.message_id, v.item_index, s.device_id, s.code, v.value, v.dp_id, v.reported_at, m.data_id, m.source
FROM status_values v
JOIN status_series s ON s.series_id = v.series_id
{join} status_messages m ON m.message_key = v.message_key{placed}
"""

# Always true of the rows, and what lets a filter on the message id start at status_messages: its device's series,
# then the values between its times.
PLACED = " AND m.device_id = s.device_id AND v.reported_at BETWEEN m.first_at AND m.last_at"

# As in 3e8a61c0d5f4: PostgreSQL leaves out a LEFT JOIN whose columns a query does not use; SQLite keeps the inner
# join.
MESSAGE_JOIN = {"sqlite": "JOIN", "postgresql": "LEFT JOIN"}

PLACES = """
SELECT v.message_key, MIN(s.device_id) AS device_id, MIN(v.reported_at) AS first_at, MAX(v.reported_at) AS last_at
FROM status_values v JOIN status_series s ON s.series_id = v.series_id
GROUP BY v.message_key
"""

FILL = {
    "sqlite": (
        "UPDATE status_messages SET device_id = p.device_id, first_at = p.first_at, last_at = p.last_at "
        f"FROM ({PLACES}) p WHERE p.message_key = status_messages.message_key"
    ),
    "postgresql": (
        "UPDATE status_messages m SET device_id = p.device_id, first_at = p.first_at, last_at = p.last_at "
        f"FROM ({PLACES}) p WHERE p.message_key = m.message_key"
    ),
}

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


def _views(placed: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute(VIEW.format(join=MESSAGE_JOIN[dialect], placed=placed))
    op.execute(STATUS_HISTORY.format(scaled=SCALED[dialect]))


def _drop_views() -> None:
    for view in ("status_history", "device_status"):
        op.execute(f"DROP VIEW {view}")


def upgrade() -> None:
    _drop_views()
    with op.batch_alter_table("status_messages") as table:  # SQLite: added as NULL, filled, then NOT NULL below
        table.add_column(sa.Column("device_id", sa.String(), nullable=True))
        table.add_column(sa.Column("first_at", TIME, nullable=True))
        table.add_column(sa.Column("last_at", TIME, nullable=True))
    op.execute(FILL[op.get_bind().dialect.name])
    op.execute("DELETE FROM status_messages WHERE device_id IS NULL")
    with op.batch_alter_table("status_messages") as table:
        for column in ("device_id", "first_at", "last_at"):
            table.alter_column(column, nullable=False)
    op.drop_index(op.f("ix_status_values_message_key"), table_name="status_values")
    _views(PLACED)


def downgrade() -> None:
    _drop_views()
    op.create_index(op.f("ix_status_values_message_key"), "status_values", ["message_key"])
    with op.batch_alter_table("status_messages") as table:
        for column in ("last_at", "first_at", "device_id"):
            table.drop_column(column)
    _views("")
