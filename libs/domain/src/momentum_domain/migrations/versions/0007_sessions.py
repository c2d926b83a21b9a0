"""Refresh tokens belong to a session (the family a sign-in starts): a refresh token replayed
after rotation ends every token of its session, and signing out ends the session's access
tokens too (their ``sid`` claim).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "refresh_tokens"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("session_id", sa.Uuid(), nullable=True))
    # A token issued before sessions existed is a session of its own.
    op.execute("UPDATE refresh_tokens SET session_id = id")
    op.alter_column(TABLE, "session_id", nullable=False)
    op.create_index("ix_refresh_tokens_session_id", TABLE, ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_session_id", table_name=TABLE)
    op.drop_column(TABLE, "session_id")
