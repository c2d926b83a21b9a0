"""A course's pacing: 'daily' (one lesson opens each day, the default) or 'self_paced' (every
day opens on enrollment), chosen by admins per course.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PACING = sa.Enum(
    "daily", "self_paced", name="course_pacing", native_enum=False, create_constraint=True
)


def upgrade() -> None:
    op.add_column("courses", sa.Column("pacing", PACING, nullable=False, server_default="daily"))


def downgrade() -> None:
    op.drop_column("courses", "pacing")
