"""Backfill and replay: where history rows came from, gaps and their backfill, dead letters resolved by replay.

Adds ``source`` (``stream`` or ``log``) to ``device_status`` and ``device_events`` (and to the ``status_history``
view), ``resolved_at``/``resolution`` to ``dead_letters``, the tables ``gaps`` (stretches the stream did not cover),
``backfill_progress`` (a backfill's checkpoint per gap and device) and ``consumers`` (when the worker last consumed
its subscription). Every added column has a default or allows NULL: no table is copied.

Revision ID: 9b3d2e7c4a10
Revises: 5c1f0e9a7b21
Create Date: 2026-12-05 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b3d2e7c4a10"
down_revision: str | Sequence[str] | None = "5c1f0e9a7b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)

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

LATEST_STATUS = """
CREATE VIEW latest_status AS
SELECT s.device_id, d.name AS device_name, d.product_key, s.code, s.value, {scaled} AS value_scaled, p.unit,
       s.dp_id, s.reported_at, s.message_id, s.source
FROM device_state s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""

STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, {scaled} AS value_scaled,
       p.unit, s.dp_id, s.message_id, s.item_index, s.source
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""

OLD_STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, {scaled} AS value_scaled,
       p.unit, s.dp_id, s.message_id, s.item_index
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""

# Unchanged; dropped and created again with the others (SQLite's table copies cannot rename a table a view uses).
DEVICE_ONLINE_PERIODS = """
CREATE VIEW device_online_periods AS
WITH transitions AS (
    SELECT device_id, event, occurred_at, message_id,
           LAG(event) OVER (PARTITION BY device_id ORDER BY occurred_at, message_id) AS previous_event
    FROM device_events
    WHERE event IN ('online', 'offline')
), periods AS (
    SELECT device_id, event, occurred_at, message_id,
           LEAD(occurred_at) OVER (PARTITION BY device_id ORDER BY occurred_at, message_id) AS ended_at
    FROM transitions
    WHERE previous_event IS NULL OR previous_event <> event
)
SELECT p.device_id, d.name AS device_name, p.event AS state, p.occurred_at AS started_at, p.ended_at,
       {seconds} AS duration_s, p.message_id
FROM periods p
LEFT JOIN devices d ON d.device_id = p.device_id
"""

SECONDS_BETWEEN = {
    "postgresql": "ROUND(EXTRACT(EPOCH FROM p.ended_at - p.occurred_at), 3)",
    "sqlite": "ROUND((julianday(p.ended_at) - julianday(p.occurred_at)) * 86400.0, 3)",
}


def upgrade() -> None:
    drop_views()
    for table in ("device_status", "device_events"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("source", sa.String(), server_default="stream", nullable=False))
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("resolved_at", TIME, nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(), nullable=True))
    create_gaps()
    create_backfill_progress()
    create_consumers()
    create_views(STATUS_HISTORY)


def drop_views() -> None:
    for view in ("device_online_periods", "status_history", "latest_status"):
        op.execute(f"DROP VIEW {view}")


def create_views(status_history: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute(LATEST_STATUS.format(scaled=SCALED[dialect]))
    op.execute(status_history.format(scaled=SCALED[dialect]))
    op.execute(DEVICE_ONLINE_PERIODS.format(seconds=SECONDS_BETWEEN[dialect]))


def create_gaps() -> None:
    op.create_table(
        "gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=False),
        sa.Column("detected_at", TIME, nullable=False),
        sa.Column("status", sa.String(), server_default="open", nullable=False),
        sa.Column("origin", sa.String(), server_default="detected", nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("rows_added", sa.Integer(), server_default="0", nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("status IN ('open', 'backfilling', 'filled', 'partly_filled')", name=op.f("ck_gaps_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gaps")),
    )
    op.create_index(op.f("ix_gaps_status"), "gaps", ["status"])


def create_backfill_progress() -> None:
    op.create_table(
        "backfill_progress",
        sa.Column("gap_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cursor", sa.String(), nullable=True),
        sa.Column("rows_added", sa.Integer(), server_default="0", nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("gap_id", "device_id", name=op.f("pk_backfill_progress")),
    )


def create_consumers() -> None:
    op.create_table(
        "consumers",
        sa.Column("subscription", sa.String(), nullable=False),
        sa.Column("consumed_at", TIME, nullable=False),
        sa.Column("pushed_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("subscription", name=op.f("pk_consumers")),
    )


def downgrade() -> None:
    drop_views()
    op.drop_table("consumers")
    op.drop_table("backfill_progress")
    op.drop_index(op.f("ix_gaps_status"), table_name="gaps")
    op.drop_table("gaps")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("resolution")
        batch.drop_column("resolved_at")
    for table in ("device_events", "device_status"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("source")
    create_views(OLD_STATUS_HISTORY)
