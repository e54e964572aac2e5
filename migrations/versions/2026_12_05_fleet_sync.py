"""Fleet sync: data points of products, Tuya's device facts, API paths and usage; views with physical units.

Adds ``data_points`` (one row per product × code), ``api_paths`` (which OpenAPI path family worked for what),
``api_usage`` (calls per day), the device-list columns of ``devices``, ``users.username``/``synced_at``,
``device_state.source``, and lets ``device_status.code`` be NULL (an item that carried only a DP id). The views
``latest_status`` and ``status_history`` gain ``value_scaled`` and ``unit``, and ``devices.name`` an index so that a
filter by device name reaches ``device_status`` through its index instead of scanning it.

On SQLite, making ``device_status.code`` nullable copies the table (SQLite cannot alter a column in place): on a
large archive the upgrade takes a while (about a minute per 10 M rows).

Revision ID: 5c1f0e9a7b21
Revises: ae4e3783abe0
Create Date: 2026-12-05 10:12:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1f0e9a7b21"
down_revision: str | Sequence[str] | None = "ae4e3783abe0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.Text(), "sqlite")
TIME = sa.DateTime(timezone=True)

# value ÷ 10^scale for numbers of Integer points; the value itself otherwise. SQLite builds 10^scale from text
# (its power() exists only where SQLite was compiled with math functions); numbers come back as numbers, anything
# else as its JSON text. PostgreSQL keeps one type for the column: json.
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
       p.unit, s.dp_id, s.message_id, s.item_index
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""

# The views of the revision before this one, restored by the downgrade.
OLD_LATEST_STATUS = """
CREATE VIEW latest_status AS
SELECT s.device_id, d.name AS device_name, d.product_key, s.code, s.value, s.dp_id, s.reported_at, s.message_id
FROM device_state s
LEFT JOIN devices d ON d.device_id = s.device_id
"""

OLD_STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, s.dp_id,
       s.message_id, s.item_index
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
"""

# Unchanged, but dropped and created again around the table changes: SQLite's table copies (batch mode) cannot
# rename a table that a view refers to.
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

DEVICE_COLUMNS = (
    ("category", sa.String()),
    ("product_name", sa.String()),
    ("time_zone", sa.String()),
    ("created_at", TIME),
    ("activated_at", TIME),
    ("updated_at", TIME),
    ("synced_at", TIME),
)


def upgrade() -> None:
    drop_views()
    create_data_points()
    create_api_paths()
    create_api_usage()
    with op.batch_alter_table("devices") as batch:
        for name, type_ in DEVICE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.create_index(batch.f("ix_devices_name"), ["name"], unique=False)
    with op.batch_alter_table("device_state") as batch:
        batch.add_column(sa.Column("source", sa.String(), server_default="stream", nullable=False))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("username", sa.String(), nullable=True))
        batch.add_column(sa.Column("synced_at", TIME, nullable=True))
    with op.batch_alter_table("device_status") as batch:
        batch.alter_column("code", existing_type=sa.String(), nullable=True)
    op.create_index(
        "ix_device_status_unnamed",
        "device_status",
        ["device_id", "dp_id"],
        sqlite_where=sa.text("code IS NULL"),
        postgresql_where=sa.text("code IS NULL"),
    )
    create_views(LATEST_STATUS, STATUS_HISTORY)


def drop_views() -> None:
    for view in ("device_online_periods", "status_history", "latest_status"):
        op.execute(f"DROP VIEW {view}")


def create_views(latest_status: str, status_history: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute(latest_status.format(scaled=SCALED[dialect]))
    op.execute(status_history.format(scaled=SCALED[dialect]))
    op.execute(DEVICE_ONLINE_PERIODS.format(seconds=SECONDS_BETWEEN[dialect]))


def create_data_points() -> None:
    op.create_table(
        "data_points",
        sa.Column("product_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("scale", sa.Integer(), server_default="0", nullable=False),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("step", sa.Float(), nullable=True),
        sa.Column("range", JSON, nullable=True),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("commandable", sa.Boolean(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("synced_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("product_id", "code", name=op.f("pk_data_points")),
    )
    op.create_index(op.f("ix_data_points_product_id_dp_id"), "data_points", ["product_id", "dp_id"])


def create_api_paths() -> None:
    op.create_table(
        "api_paths",
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("checked_at", TIME, nullable=False),
        sa.CheckConstraint("status IN ('ok', 'refused')", name=op.f("ck_api_paths_status")),
        sa.PrimaryKeyConstraint("purpose", "path", name=op.f("pk_api_paths")),
    )


def create_api_usage() -> None:
    op.create_table(
        "api_usage",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_api_usage")),
    )


def downgrade() -> None:
    drop_views()
    # The older schema has no room for an item without a code: it keeps its DP id under the name dp_<id>.
    op.drop_index("ix_device_status_unnamed", table_name="device_status")
    op.execute(
        "UPDATE device_status SET code = 'dp_' || COALESCE(CAST(dp_id AS VARCHAR), 'unknown') WHERE code IS NULL"
    )
    with op.batch_alter_table("device_status") as batch:
        batch.alter_column("code", existing_type=sa.String(), nullable=False)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("synced_at")
        batch.drop_column("username")
    with op.batch_alter_table("device_state") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index(batch.f("ix_devices_name"))
        for name, _type in reversed(DEVICE_COLUMNS):
            batch.drop_column(name)
    op.drop_table("api_usage")
    op.drop_table("api_paths")
    op.drop_index(op.f("ix_data_points_product_id_dp_id"), table_name="data_points")
    op.drop_table("data_points")
    create_views(OLD_LATEST_STATUS, OLD_STATUS_HISTORY)
