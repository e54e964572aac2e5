"""The history's times as integer milliseconds on SQLite; ``device_status.reported_key`` on both databases.

A status value's time took 26 bytes of text on SQLite, a third of what a value of the history costs there
(issue 17: at most 60 bytes a value, all included). ``status_values`` and ``status_recent`` now keep
``reported_at``, and ``status_messages`` its ``first_at`` and ``last_at``, as milliseconds since the Unix epoch:
6 bytes. Tuya's times are milliseconds, so nothing is lost. PostgreSQL's timestamptz is 8 bytes either way and
does not change.

``device_status`` still shows ``reported_at`` as the text it was, made from the integer, and adds
``reported_key``: the time as the history keeps it (the integer on SQLite, ``reported_at`` itself on PostgreSQL).
A filter or an order on ``reported_key`` reaches a series' values through their primary key; on SQLite a filter on
``reported_at`` is compared row by row over the device's values. ``status_history`` adds it too.

On SQLite the three tables are rebuilt, each value's time converted (17 s for 10 M values on our machines; disk
about the size of the history meanwhile, which ``db compact`` gives back), with a check that each time is an integer:
a worker older than this revision, still running, has its batch refused rather than writing text times. The
downgrade converts them back.

Revision ID: a7c3d9f1b264
Revises: 8d2e5b7c1a93
Create Date: 2026-12-06 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3d9f1b264"
down_revision: str | Sequence[str] | None = "8d2e5b7c1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.Text(), "sqlite")
MESSAGE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: SQLite: text time → milliseconds (julianday keeps milliseconds exactly) and back, in SQLAlchemy's text form.
MILLIS = "CAST(ROUND((julianday({0}) - 2440587.5) * 86400000.0) AS INTEGER)"
TEXT = "strftime('%Y-%m-%d %H:%M:%f', {0} / 1000.0, 'unixepoch') || '000'"

# The values' alias: v settled, r recent; {at}: reported_at as users read it.
COLUMNS = (
    "m.message_id, {v}.item_index, s.device_id, s.code, {v}.value, {v}.dp_id, {at} AS reported_at, m.data_id, "
    "m.source{key}"
)
PLACED = "m.device_id = s.device_id AND {v}.reported_at BETWEEN m.first_at AND COALESCE(m.last_at, m.first_at)"

# As in 8d2e5b7c1a93: SQLite joins each table to its series and message; PostgreSQL joins the union of the two.
SQLITE_VALUES = """
SELECT {columns}
FROM {table} {v}
JOIN status_series s ON s.series_id = {v}.series_id
JOIN status_messages m ON m.message_key = {v}.message_key AND {placed}
"""
POSTGRES_VALUES = """
SELECT {columns}
FROM ({union}) v
JOIN status_series s ON s.series_id = v.series_id
LEFT JOIN status_messages m ON m.message_key = v.message_key AND {placed}
"""
VALUE_COLUMNS = "series_id, reported_at, message_key, item_index, value, dp_id"


def _device_status(dialect: str, keyed: bool) -> str:
    def columns(v: str) -> str:
        at = TEXT.format(f"{v}.reported_at") if dialect == "sqlite" and keyed else f"{v}.reported_at"
        return COLUMNS.format(v=v, at=at, key=f", {v}.reported_at AS reported_key" if keyed else "")

    if dialect == "postgresql":
        union = " UNION ALL ".join(f"SELECT {VALUE_COLUMNS} FROM {t}" for t in ("status_values", "status_recent"))
        return POSTGRES_VALUES.format(columns=columns("v"), union=union, placed=PLACED.format(v="v"))
    return "UNION ALL".join(
        SQLITE_VALUES.format(columns=columns(v), table=table, v=v, placed=PLACED.format(v=v))
        for table, v in (("status_values", "v"), ("status_recent", "r"))
    )


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
       p.unit, s.dp_id, s.message_id, s.item_index, s.source{key}
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
LEFT JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
"""


def _views(keyed: bool) -> None:
    dialect = op.get_bind().dialect.name
    op.execute("CREATE VIEW device_status AS" + _device_status(dialect, keyed))
    op.execute(STATUS_HISTORY.format(scaled=SCALED[dialect], key=", s.reported_key" if keyed else ""))


def _drop_views() -> None:
    for view in ("status_history", "device_status"):
        op.execute(f"DROP VIEW {view}")


def _in_millis(table: str, column: str, nullable: bool = False) -> list[sa.CheckConstraint]:
    """An integer column takes text all the same: a text time written by a worker older than this revision would
    read back as a time in 1970, so the integer tables refuse it."""
    check = f"typeof({column}) = 'integer'"
    return [
        sa.CheckConstraint(f"{column} IS NULL OR {check}" if nullable else check, name=op.f(f"ck_{table}_{column}_ms"))
    ]


def _values_table(name: str, time: sa.types.TypeEngine, millis: bool) -> None:
    op.create_table(
        name,
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("reported_at", time, nullable=False),
        sa.Column("message_key", MESSAGE_KEY, nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("dp_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("series_id", "reported_at", "message_key", "item_index", name=f"pk_{name}"),
        *(_in_millis(name, "reported_at") if millis else ()),
        sqlite_with_rowid=False,
    )


def _messages_table(time: sa.types.TypeEngine, millis: bool) -> None:
    checks = [*_in_millis("status_messages", "first_at"), *_in_millis("status_messages", "last_at", True)]
    op.create_table(
        "status_messages",
        sa.Column("message_key", MESSAGE_KEY, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("data_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), server_default="stream", nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("first_at", time, nullable=False),
        sa.Column("last_at", time, nullable=True),
        sa.PrimaryKeyConstraint("message_key", name="pk_status_messages"),
        sa.UniqueConstraint("message_id", name="uq_status_messages_message_id"),
        *(checks if millis else ()),
    )


def _rebuild(time: sa.types.TypeEngine, convert: str, millis: bool) -> None:
    """SQLite: the three tables again with ``time`` columns, each time through ``convert``, in key order (the
    conversion keeps the order, so the old table's key gives it)."""
    for name in ("status_values", "status_recent"):
        op.rename_table(name, f"{name}_old")
        _values_table(name, time, millis)
        at = convert.format("reported_at")
        op.execute(
            f"INSERT INTO {name} ({VALUE_COLUMNS}) SELECT series_id, {at}, message_key, item_index, value, dp_id "
            f"FROM {name}_old ORDER BY series_id, reported_at, message_key, item_index"
        )
        op.drop_table(f"{name}_old")
    op.rename_table("status_messages", "status_messages_old")
    _messages_table(time, millis)
    first, last = convert.format("first_at"), convert.format("last_at")
    op.execute(
        "INSERT INTO status_messages (message_key, message_id, data_id, source, device_id, first_at, last_at) "
        f"SELECT message_key, message_id, data_id, source, device_id, {first}, {last} FROM status_messages_old "
        "ORDER BY message_key"
    )
    op.drop_table("status_messages_old")


def upgrade() -> None:
    _drop_views()
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(sa.BigInteger(), MILLIS, millis=True)
    _views(keyed=True)


def downgrade() -> None:
    _drop_views()
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(sa.DateTime(timezone=True), TEXT, millis=False)
    _views(keyed=False)
