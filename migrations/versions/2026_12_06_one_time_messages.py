"""A history message whose values share one time keeps it once: ``status_messages.last_at`` NULL.

Each ``status_messages`` row places its values between the times of its first and last value (6b1f0c2d9e47). A
report's values nearly always share one time, and the second copy of it took 26 of the row's bytes on SQLite,
about 5 bytes a value of the history that is kept for years (issue 17). ``last_at`` is now NULL when it would equal
``first_at``; ``device_status`` reads it as ``COALESCE(last_at, first_at)``, and still reaches the values through
the primary key of ``status_values``.

On SQLite, ``status_messages`` is rebuilt once, for the column's NOT NULL to go. The space the upgrade frees is
reused by later rows; ``tuya-archiver db compact`` gives it back at once.

Revision ID: 4f7a9c1e2b58
Revises: 6b1f0c2d9e47
Create Date: 2026-12-06 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "4f7a9c1e2b58"
down_revision: str | Sequence[str] | None = "6b1f0c2d9e47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = """
CREATE VIEW device_status AS
SELECT m.message_id, v.item_index, s.device_id, s.code, v.value, v.dp_id, v.reported_at, m.data_id, m.source
FROM status_values v
JOIN status_series s ON s.series_id = v.series_id
{join} status_messages m ON m.message_key = v.message_key
AND m.device_id = s.device_id AND v.reported_at BETWEEN m.first_at AND {last}
"""

# As in 3e8a61c0d5f4: PostgreSQL leaves out a LEFT JOIN whose columns a query does not use; SQLite keeps the inner
# join.
MESSAGE_JOIN = {"sqlite": "JOIN", "postgresql": "LEFT JOIN"}

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


def _views(last: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute(VIEW.format(join=MESSAGE_JOIN[dialect], last=last))
    op.execute(STATUS_HISTORY.format(scaled=SCALED[dialect]))


def _drop_views() -> None:
    for view in ("status_history", "device_status"):
        op.execute(f"DROP VIEW {view}")


def upgrade() -> None:
    _drop_views()
    with op.batch_alter_table("status_messages") as table:
        table.alter_column("last_at", nullable=True)
    op.execute("UPDATE status_messages SET last_at = NULL WHERE last_at = first_at")
    _views("COALESCE(m.last_at, m.first_at)")


def downgrade() -> None:
    _drop_views()
    op.execute("UPDATE status_messages SET last_at = first_at WHERE last_at IS NULL")
    with op.batch_alter_table("status_messages") as table:
        table.alter_column("last_at", nullable=False)
    _views("m.last_at")
