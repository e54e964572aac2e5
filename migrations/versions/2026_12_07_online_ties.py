"""Online wins a tie: ``device_online_periods`` puts an offline event before an online event of the same time.

Tuya times the stream's online and offline events in whole seconds, and a device that reconnects is often
reported offline and online within one second, in either order (the new session may come up before the old one is
closed). The periods view ordered such a pair by message id, and ``devices.online`` kept the earlier message's
event, so the two could disagree, and a device that had reconnected could show offline until its next event. Now
both take the device as online: the view orders events of one time offline first, and the store's rule for
``devices.online`` is the same (streams.store.facts, streams.store.statements).

Only the view changes; ``devices.online`` of a past tie is set right by the device's next online or offline event.

Revision ID: c2f4b8e1d7a5
Revises: a7c3d9f1b264
Create Date: 2026-12-07 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c2f4b8e1d7a5"
down_revision: str | Sequence[str] | None = "a7c3d9f1b264"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIODS = """
CREATE VIEW device_online_periods AS
WITH transitions AS (
    SELECT device_id, event, occurred_at, message_id,
           LAG(event) OVER (PARTITION BY device_id ORDER BY {order}) AS previous_event
    FROM device_events
    WHERE event IN ('online', 'offline')
), periods AS (
    SELECT device_id, event, occurred_at, message_id,
           LEAD(occurred_at) OVER (PARTITION BY device_id ORDER BY {order}) AS ended_at
    FROM transitions
    WHERE previous_event IS NULL OR previous_event <> event
)
SELECT p.device_id, d.name AS device_name, p.event AS state, p.occurred_at AS started_at, p.ended_at,
       {seconds} AS duration_s, p.message_id
FROM periods p
LEFT JOIN devices d ON d.device_id = p.device_id
"""

ONLINE_LAST = "occurred_at, CASE WHEN event = 'online' THEN 1 ELSE 0 END, message_id"
BY_MESSAGE = "occurred_at, message_id"  # the revision before this one

SECONDS_BETWEEN = {
    "postgresql": "ROUND(EXTRACT(EPOCH FROM p.ended_at - p.occurred_at), 3)",
    "sqlite": "ROUND((julianday(p.ended_at) - julianday(p.occurred_at)) * 86400.0, 3)",
}


def _periods(order: str) -> None:
    op.execute("DROP VIEW device_online_periods")
    op.execute(PERIODS.format(order=order, seconds=SECONDS_BETWEEN[op.get_bind().dialect.name]))


def upgrade() -> None:
    _periods(ONLINE_LAST)


def downgrade() -> None:
    _periods(BY_MESSAGE)
