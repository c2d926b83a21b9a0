"""Reviews and badges: what learners say about courses, and what they achieve."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.catalog.events import CatalogChanged
from momentum_domain.catalog.models import Course
from momentum_domain.catalog.service import catalog
from momentum_domain.community.models import Badge, Review, UserBadge
from momentum_domain.errors import Forbidden, NotFound
from momentum_domain.kit.db import run
from momentum_domain.kit.pagination import Paged, PageRequest, paginate
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.learning.events import LessonCompleted
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.streaks import current_streak, local_day, zone_parameter
from momentum_domain.users.service import users


@dataclass(frozen=True, slots=True)
class LearnerStats:
    lessons_completed: int
    courses_completed: int
    streak_days: int
    reviews_written: int

    def value_of(self, kind: str) -> int:
        value: int = getattr(self, kind, 0)
        return value


@dataclass(frozen=True, slots=True)
class BadgeProgress:
    badge: Badge
    earned_at: datetime | None
    current: int
    threshold: int


class ReviewService:
    async def write(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        course_ref: str,
        rating: int,
        comment: str,
    ) -> Review:
        """Create or edit the learner's one review of a course they are enrolled in; the
        course's rating changes with it (and the public catalog shows it)."""
        course = await catalog.get_course(session, course_ref)
        enrolled = await session.scalar(
            select(Enrollment.id).where(
                Enrollment.user_id == user_id, Enrollment.course_id == course.id
            )
        )
        if enrolled is None:
            raise Forbidden("Only learners enrolled in this course can review it.")
        # The course first, then the review, everywhere: reviewers take turns on the course
        # row, so the aggregate below sees every review written before it.
        await self._lock_course(session, course.id)
        review_id = await session.scalar(
            insert(Review)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                course_id=course.id,
                rating=rating,
                comment=comment,
                is_hidden=False,
            )
            .on_conflict_do_update(
                index_elements=[Review.user_id, Review.course_id],
                set_={"rating": rating, "comment": comment},
            )
            .returning(Review.id)
        )
        await self.refresh_rating(session, course.id)
        await badges.award(session, user_id)
        review = await session.get(Review, review_id, populate_existing=True)
        assert review is not None
        publish(session, CatalogChanged())
        await commit(session)
        return review

    async def set_hidden(
        self,
        session: AsyncSession,
        review_id: uuid.UUID,
        hidden: bool,
        *,
        actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> Review:
        """An administrator hides or shows a review (audited as ``review.hide`` or
        ``review.show``): a hidden review leaves the course's average and count."""
        review = await session.get(Review, review_id)
        if review is None:
            raise NotFound("No such review.")
        # Course before review, as every writer of reviews locks them.
        await self._lock_course(session, review.course_id)
        review.is_hidden = hidden
        await session.flush()
        await self.refresh_rating(session, review.course_id)
        await audit.record(
            session,
            actor_id=actor_id,
            action="review.hide" if hidden else "review.show",
            resource_type="review",
            resource_id=review.id,
            origin=origin,
        )
        publish(session, CatalogChanged())
        await commit(session)
        return review

    async def refresh_rating(self, session: AsyncSession, course_id: uuid.UUID) -> None:
        """Recompute the course's average and count from its visible reviews. The course row
        lock makes concurrent reviewers take turns, so the aggregate is always exact."""
        await self._lock_course(session, course_id)
        count, average = (
            await session.execute(
                select(func.count(), func.coalesce(func.avg(Review.rating), 0)).where(
                    Review.course_id == course_id, Review.is_hidden.is_(False)
                )
            )
        ).one()
        await session.execute(
            update(Course)
            .where(Course.id == course_id)
            .values(rating_count=count, rating_average=Decimal(average).quantize(Decimal("0.01")))
        )

    async def _lock_course(self, session: AsyncSession, course_id: uuid.UUID) -> None:
        # NO KEY UPDATE: excludes other reviewers (it conflicts with itself) but not the
        # key-share locks that foreign keys to the course take.
        await session.execute(
            select(Course.id).where(Course.id == course_id).with_for_update(key_share=True)
        )

    async def for_course(
        self, session: AsyncSession, course_ref: str, page: PageRequest
    ) -> Paged[Review]:
        """A published course's visible reviews, newest first."""
        course = await catalog.get_course(session, course_ref)
        stmt = select(Review).where(Review.course_id == course.id, Review.is_hidden.is_(False))
        return await paginate(session, stmt, page, [Review.created_at.desc(), Review.id])


@cache
def _stats_statement() -> Select[Any]:
    learner = bindparam("learner", type_=Progress.user_id.type)
    completed_day = local_day(Progress.completed_at, zone_parameter())
    progress = (
        select(
            func.count().filter(Progress.completed.is_(True)).label("lessons"),
            func.array_agg(func.distinct(completed_day))
            .filter(Progress.completed_at.is_not(None))
            .label("days"),
        )
        .where(Progress.user_id == learner)
        .subquery()
    )
    courses = (
        select(func.count())
        .where(Enrollment.user_id == learner, Enrollment.status == EnrollmentStatus.COMPLETED)
        .scalar_subquery()
    )
    reviews = select(func.count()).where(Review.user_id == learner).scalar_subquery()
    earned = exists().where(UserBadge.user_id == learner, UserBadge.badge_id == Badge.id)
    unearned = (
        select(func.json_agg(func.json_build_object("id", Badge.id, "rule", Badge.rule)))
        .where(~earned)
        .scalar_subquery()
    )
    return select(
        progress.c.lessons,
        progress.c.days,
        courses.label("courses"),
        reviews.label("reviews"),
        unearned.label("unearned"),
    )


class BadgeService:
    async def stats(self, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> LearnerStats:
        return (await self._stats_and_unearned(session, user_id, now))[0]

    async def _stats_and_unearned(
        self, session: AsyncSession, user_id: uuid.UUID, now: datetime
    ) -> tuple[LearnerStats, list[dict[str, Any]]]:
        """What the badge rules measure, and the badges not yet earned (id and rule): one
        round trip. Streak days are days in the learner's time zone."""
        zone = (await users.preferences(session, user_id)).zone
        params = {"learner": user_id, "zone": zone.key}
        row = (await run(session, _stats_statement(), params)).one()
        today = now.astimezone(zone).date()
        stats = LearnerStats(
            lessons_completed=int(row.lessons),
            courses_completed=int(row.courses),
            streak_days=current_streak(set(row.days or ()), today),
            reviews_written=int(row.reviews),
        )
        return stats, row.unearned or []

    async def award(
        self, session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
    ) -> list[uuid.UUID]:
        """Award every badge whose rule the learner now meets, and return their ids. Each is
        awarded once, however many requests race to award it (the unique key decides)."""
        stats, unearned = await self._stats_and_unearned(session, user_id, now or datetime.now(UTC))
        due = [
            uuid.UUID(badge["id"])
            for badge in unearned
            if stats.value_of(badge["rule"]["kind"]) >= int(badge["rule"]["threshold"])
        ]
        if not due:
            return []
        inserted = await session.scalars(
            insert(UserBadge)
            .values([{"id": uuid.uuid4(), "user_id": user_id, "badge_id": badge} for badge in due])
            .on_conflict_do_nothing(index_elements=[UserBadge.user_id, UserBadge.badge_id])
            .returning(UserBadge.badge_id)
        )
        return list(inserted)

    async def on_lesson_completed(self, session: AsyncSession, completed: LessonCompleted) -> None:
        """Badges follow completions, in the unit of work that completed the lesson (bound with
        ``Handlers.within``), so the learner's next read already shows them."""
        await self.award(session, completed.user_id, completed.completed_at)

    async def progress(
        self, session: AsyncSession, user_id: uuid.UUID, now: datetime
    ) -> list[BadgeProgress]:
        """Every badge: when it was earned, or how far the learner is from it."""
        stats = await self.stats(session, user_id, now)
        earned = dict(
            (
                await session.execute(
                    select(UserBadge.badge_id, UserBadge.awarded_at).where(
                        UserBadge.user_id == user_id
                    )
                )
            ).all()
        )
        badges = await session.scalars(select(Badge).order_by(Badge.created_at, Badge.code))
        return [
            BadgeProgress(
                badge=badge,
                earned_at=earned.get(badge.id),
                current=min(stats.value_of(badge.rule["kind"]), int(badge.rule["threshold"])),
                threshold=int(badge.rule["threshold"]),
            )
            for badge in badges
        ]


reviews = ReviewService()
badges = BadgeService()
