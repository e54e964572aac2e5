"""A message the normaliser knew no kind of is kept: ``messages.unknown``.

Such a message (a protocol or bizCode the project does not map yet, an UnknownMessage) has no row in the history,
``device_events`` or ``user_events``: its ``messages`` row is its only record. KEEP_MESSAGES' expiry and ``purge
--table messages`` deleted it with the rest after 14 days, and a later version that maps its kind had nothing left
to derive it from. The store now marks it (``unknown`` true; NULL for every other message, which costs no bytes),
and retention keeps it.

The upgrade marks the messages already stored that have no row in those tables.

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

MARK_UNKNOWN = """
UPDATE messages SET unknown = TRUE
WHERE NOT EXISTS (SELECT 1 FROM status_messages s WHERE s.message_id = messages.message_id)
  AND NOT EXISTS (SELECT 1 FROM device_events e WHERE e.message_id = messages.message_id)
  AND NOT EXISTS (SELECT 1 FROM user_events u WHERE u.message_id = messages.message_id)
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("unknown", sa.Boolean(), nullable=True))
    op.execute(MARK_UNKNOWN)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("unknown")
