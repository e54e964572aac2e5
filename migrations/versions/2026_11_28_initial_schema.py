"""Initial schema: the archive's tables (DESIGN.md §4) and the views for the common questions.

Revision ID: ae4e3783abe0
Revises:
Create Date: 2026-11-28 12:47:42.951048
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ae4e3783abe0"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSON on PostgreSQL; TEXT on SQLite, whose JSON type name would give the column NUMERIC affinity and round big
# numbers (models.tables.JSONDocument).
JSON = sa.JSON().with_variant(sa.Text(), "sqlite")
TIME = sa.DateTime(timezone=True)
# Tables every batch updates: rows in the key's B-tree on SQLite, room for HOT updates on PostgreSQL.
UPDATED_OFTEN = {"sqlite_with_rowid": False, "postgresql_with": {"fillfactor": 70}}

LATEST_STATUS = """
CREATE VIEW latest_status AS
SELECT s.device_id, d.name AS device_name, d.product_key, s.code, s.value, s.dp_id, s.reported_at, s.message_id
FROM device_state s
LEFT JOIN devices d ON d.device_id = s.device_id
"""

STATUS_HISTORY = """
CREATE VIEW status_history AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, s.dp_id,
       s.message_id, s.item_index
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
"""

# A period starts at an online/offline event whose state differs from the device's previous one (repeated
# "online" events extend a period) and ends at the next change; the current period has no end.
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

VIEWS = ("latest_status", "status_history", "device_online_periods")


def upgrade() -> None:
    create_tables()
    create_indexes()
    seconds = SECONDS_BETWEEN[op.get_bind().dialect.name]
    for statement in (LATEST_STATUS, STATUS_HISTORY, DEVICE_ONLINE_PERIODS.format(seconds=seconds)):
        op.execute(statement)


def create_tables() -> None:
    create_messages()
    create_device_status()
    create_device_events()
    create_devices()
    create_device_state()
    create_users()
    create_user_events()
    create_commands()
    create_rule_state()
    create_dead_letters()


def create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("protocol", sa.Integer(), nullable=False),
        sa.Column("biz_code", sa.String(), nullable=True),
        sa.Column("device_id", sa.String(), nullable=True),
        sa.Column("encrypt_model", sa.String(), nullable=False),
        sa.Column("sign_ok", sa.Boolean(), nullable=False),
        sa.Column("published_at", TIME, nullable=True),
        sa.Column("pushed_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_messages")),
    )


def create_device_status() -> None:
    op.create_table(
        "device_status",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("data_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", "item_index", name=op.f("pk_device_status")),
        sqlite_with_rowid=False,
    )


def create_device_events() -> None:
    op.create_table(
        "device_events",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("biz_code", sa.String(), nullable=False),
        sa.Column("protocol", sa.Integer(), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_device_events")),
    )


def create_devices() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("product_key", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("name_updated_at", TIME, nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("online_changed_at", TIME, nullable=True),
        sa.Column("owner_uid", sa.String(), nullable=True),
        sa.Column("owner_updated_at", TIME, nullable=True),
        sa.Column("first_seen_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("deleted_at", TIME, nullable=True),
        sa.Column("report_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_devices")),
        **UPDATED_OFTEN,
    )


def create_device_state() -> None:
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "code", name=op.f("pk_device_state")),
        **UPDATED_OFTEN,
    )


def create_users() -> None:
    op.create_table(
        "users",
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("registered_at", TIME, nullable=True),
        sa.Column("deleted_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_users")),
    )


def create_user_events() -> None:
    op.create_table(
        "user_events",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("biz_code", sa.String(), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_user_events")),
    )


def create_commands() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("commands", JSON, nullable=False),
        sa.Column("status", sa.String(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tuya_tid", sa.String(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_at", TIME, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIME, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'sent', 'failed', 'dry_run')", name=op.f("ck_commands_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_commands_idempotency_key")),
    )


def create_rule_state() -> None:
    op.create_table(
        "rule_state",
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("pending_since", TIME, nullable=True),
        sa.Column("pending_message_id", sa.String(), nullable=True),
        sa.Column("armed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_fired_at", TIME, nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("updated_at", TIME, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "device_id", name=op.f("pk_rule_state")),
    )


def create_dead_letters() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("error_kind", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("published_at", TIME, nullable=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_dead_letters")),
    )


INDEXES = {
    "messages": (("received_at",),),
    "device_status": (("device_id", "reported_at"),),
    "device_events": (("device_id", "occurred_at"), ("occurred_at",)),
    "user_events": (("uid", "occurred_at"), ("occurred_at",)),
    "commands": (("status", "created_at"), ("created_at",)),
    "dead_letters": (("received_at",),),
}


def create_indexes() -> None:
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.drop_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table_name=table)
    for table in (
        "dead_letters",
        "rule_state",
        "commands",
        "user_events",
        "users",
        "device_state",
        "devices",
        "device_events",
        "device_status",
        "messages",
    ):
        op.drop_table(table)
