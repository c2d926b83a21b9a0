"""Keep courses.enrollment_count in the database: statement triggers on enrollments.

An enrollment then counts however it is written (the API's one-statement enroll, a bulk COPY,
an operator's psql), in the same transaction, and the count falls when enrollments are erased.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Statement-level with transition tables: one UPDATE per course per statement, not per row.
    for event, table, sign in (("INSERT", "new_rows", "+"), ("DELETE", "old_rows", "-")):
        op.execute(f"""
            CREATE FUNCTION count_enrollments_on_{event.lower()}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                -- Lock the courses in one order first: two statements touching the same courses
                -- (concurrent erasures, say) would otherwise lock them in plan order and could
                -- deadlock.
                PERFORM 1 FROM courses
                WHERE id IN (SELECT course_id FROM {table})
                ORDER BY id FOR NO KEY UPDATE;
                UPDATE courses c
                SET enrollment_count = greatest(c.enrollment_count {sign} changed.n, 0)
                FROM (SELECT course_id, count(*) AS n FROM {table} GROUP BY course_id) changed
                WHERE c.id = changed.course_id;
                RETURN NULL;
            END $$
        """)  # noqa: S608 - every name here is a constant of this file
        op.execute(f"""
            CREATE TRIGGER enrollments_count_on_{event.lower()}
            AFTER {event} ON enrollments REFERENCING {"NEW" if sign == "+" else "OLD"} TABLE
            AS {table} FOR EACH STATEMENT EXECUTE FUNCTION count_enrollments_on_{event.lower()}()
        """)
    # From now on the triggers keep it; start from the truth.
    op.execute("""
        UPDATE courses c SET enrollment_count = coalesce(
            (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id), 0)
    """)


def downgrade() -> None:
    for event in ("insert", "delete"):
        op.execute(f"DROP TRIGGER enrollments_count_on_{event} ON enrollments")
        op.execute(f"DROP FUNCTION count_enrollments_on_{event}()")
