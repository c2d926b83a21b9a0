"""The notification outbox is relayed with retries: attempts, the time of the next one (also
the relay's lease on a message it is sending) and the last error.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "notification_outbox"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    # Rows already waiting are due at once.
    op.add_column(
        TABLE,
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(TABLE, sa.Column("last_error", sa.Text(), nullable=True))
    # Nothing relayed the outbox before: a notice older than a day is stale news, not sent now.
    op.execute(
        "UPDATE notification_outbox SET status = 'FAILED', last_error = 'expired: written "
        "before the relay existed' WHERE status = 'PENDING' AND created_at < now() - interval "
        "'1 day'"
    )
    # The relay asks only for pending messages that are due; sent ones pile up outside the index.
    op.drop_index("ix_notification_outbox_status_created_at", table_name=TABLE)
    op.create_index(
        "ix_notification_outbox_next_attempt_at",
        TABLE,
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_next_attempt_at", table_name=TABLE)
    op.create_index("ix_notification_outbox_status_created_at", TABLE, ["status", "created_at"])
    op.drop_column(TABLE, "last_error")
    op.drop_column(TABLE, "next_attempt_at")
    op.drop_column(TABLE, "attempts")
