"""A message the normaliser knew no kind of is kept: ``messages.unknown``.

Such a message (a protocol or bizCode the project does not map yet, an UnknownMessage) has no row in the history,
``device_events`` or ``user_events``: its ``messages`` row is its only record. KEEP_MESSAGES' expiry and ``purge
--table messages`` deleted it with the rest after 14 days, and a later version that maps its kind had nothing left
to derive it from. The store now marks it (``unknown`` true; NULL for every other message, which costs no bytes),
and retention keeps it.

The upgrade marks the messages already stored that have no row in those tables and are of no kind the normaliser
knew when it was written (a message whose history ``purge`` deleted, or a report with no items, has no such row
either, and is no unknown message). ``replay --messages`` sets the mark as the messages derive today.

Revision ID: e5a1c7d3b902
Revises: c2f4b8e1d7a5
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c7d3b902"
down_revision: str | Sequence[str] | None = "c2f4b8e1d7a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The (protocol, bizCode) kinds streams.tuya.normalize knew at this revision, kept here as they were: a later
# version knowing more must not change what this upgrade marked.
KNOWN_KINDS = {
    1000: ("devicePropertyMessage", "deviceQueryPropertyMessage"),
    20: (
        "bindUser", "delete", "deviceDpCommand", "deviceSignal", "dpNameUpdate", "nameUpdate", "offline", "online",
        "share", "upgradeProcess", "upgradeStatus",
    ),
    1001: (
        "deviceBindSpace", "deviceFreeze", "deviceNameUpdate", "deviceOffline", "deviceOnline", "deviceTransfer",
        "deviceUnFreeze", "deviceUnbindSpace",
    ),
    1002: ("deviceOtaProgress",),
    21: ("userDelete", "userRegister", "userUpdate"),
}  # fmt: skip
_KNOWN = " OR ".join(
    f"(protocol = {protocol} AND COALESCE(biz_code, '') IN ({', '.join(repr(code) for code in codes)}))"
    for protocol, codes in KNOWN_KINDS.items()
)
# A protocol-4 message is a status report when its payload has no bizCode; ``biz_code`` is NULL for one that is no
# text too (a number, a list), which the normaliser keeps as an unknown message.
NO_BIZ_CODE = {
    "sqlite": "json_extract(payload, '$.bizCode') IS NULL",
    "postgresql": "payload ->> 'bizCode' IS NULL",
}
MARK_UNKNOWN = f"""
UPDATE messages SET unknown = TRUE
WHERE NOT ((protocol = 4 AND biz_code IS NULL AND {{no_biz_code}}) OR {_KNOWN})
  AND NOT EXISTS (SELECT 1 FROM status_messages s WHERE s.message_id = messages.message_id)
  AND NOT EXISTS (SELECT 1 FROM device_events e WHERE e.message_id = messages.message_id)
  AND NOT EXISTS (SELECT 1 FROM user_events u WHERE u.message_id = messages.message_id)
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("unknown", sa.Boolean(), nullable=True))
    op.execute(MARK_UNKNOWN.format(no_biz_code=NO_BIZ_CODE[op.get_bind().dialect.name]))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("unknown")
