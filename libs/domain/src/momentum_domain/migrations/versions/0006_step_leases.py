"""Generation steps are held by a worker with a lease it renews while it runs them: the owner
and when the lease ends. A dead worker's steps are taken over once their leases end.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "generation_steps"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("lease_owner", sa.String(120), nullable=True))
    op.add_column(TABLE, sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    # Steps running under the old release keep the old rule: taken over 600 s after starting.
    op.execute(
        "UPDATE generation_steps SET lease_expires_at = started_at + interval '600 seconds' "
        "WHERE status = 'RUNNING'"
    )
    # The sweeper now looks for running steps whose lease has ended.
    op.drop_index("ix_generation_steps_status_started_at", table_name=TABLE)
    op.create_index(
        "ix_generation_steps_status_lease_expires_at", TABLE, ["status", "lease_expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_generation_steps_status_lease_expires_at", table_name=TABLE)
    op.create_index("ix_generation_steps_status_started_at", TABLE, ["status", "started_at"])
    op.drop_column(TABLE, "lease_expires_at")
    op.drop_column(TABLE, "lease_owner")
