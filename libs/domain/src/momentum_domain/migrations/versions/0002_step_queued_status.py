"""Generation steps gain a QUEUED status: enqueued, not yet picked up by a worker.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_generation_steps_step_status"


def _status_check(statuses: tuple[str, ...]) -> None:
    op.drop_constraint(op.f(CONSTRAINT), "generation_steps", type_="check")
    values = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint(op.f(CONSTRAINT), "generation_steps", f"status IN ({values})")


def upgrade() -> None:
    _status_check(("PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"))


def downgrade() -> None:
    op.execute("UPDATE generation_steps SET status = 'PENDING' WHERE status = 'QUEUED'")
    _status_check(("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"))
