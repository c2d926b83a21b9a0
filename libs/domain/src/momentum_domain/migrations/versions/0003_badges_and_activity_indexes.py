"""Seed the achievement badges; index enrollments and progress by time for analytics.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BADGES = (
    ("first-lesson", "First step", "Completed your first lesson.", "lessons_completed", 1),
    ("ten-lessons", "Getting into it", "Completed ten lessons.", "lessons_completed", 10),
    ("fifty-lessons", "Lifelong learner", "Completed fifty lessons.", "lessons_completed", 50),
    ("first-course", "Finisher", "Completed your first course.", "courses_completed", 1),
    ("three-courses", "Collector", "Completed three courses.", "courses_completed", 3),
    ("streak-3", "On a roll", "Learned three days in a row.", "streak_days", 3),
    ("streak-7", "Week of momentum", "Learned seven days in a row.", "streak_days", 7),
    ("streak-30", "Unstoppable", "Learned thirty days in a row.", "streak_days", 30),
    ("first-review", "Critic", "Wrote your first course review.", "reviews_written", 1),
)


def upgrade() -> None:
    op.create_index("ix_enrollments_created_at", "enrollments", ["created_at"])
    op.create_index(
        "ix_enrollments_completed_at",
        "enrollments",
        ["completed_at"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
    )
    op.create_index(
        "ix_progress_user_id_completed_at",
        "progress",
        ["user_id", "completed_at"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
    )
    badges = sa.table(
        "badges",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("rule", sa.dialects.postgresql.JSONB),
    )
    op.bulk_insert(
        badges,
        [
            {
                "code": code,
                "name": name,
                "description": description,
                "rule": {"kind": kind, "threshold": threshold},
            }
            for code, name, description, kind, threshold in BADGES
        ],
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM badges WHERE code = ANY(:codes)").bindparams(
            codes=[code for code, *_ in BADGES]
        )
    )
    op.drop_index("ix_progress_user_id_completed_at", table_name="progress")
    op.drop_index("ix_enrollments_completed_at", table_name="enrollments")
    op.drop_index("ix_enrollments_created_at", table_name="enrollments")
