"""Reviews and badges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from momentum_api.deps import AppSettings, DbSession
from momentum_api.identity.guards import admin, authenticated
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_api.schemas import Offset, Page, Strict
from momentum_domain.community.models import Review
from momentum_domain.community.service import badges, reviews
from momentum_domain.kit.pagination import PageRequest

CourseRef = Annotated[str, PathParameter(max_length=200, description="Course id or slug")]


class ReviewIn(Strict):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=5_000)] = ""


class VisibilityIn(Strict):
    hidden: bool


class ReviewOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    rating: int
    comment: str
    created_at: datetime
    updated_at: datetime


class AdminReviewOut(ReviewOut, kw_only=True):
    user_id: uuid.UUID
    is_hidden: bool


class BadgeOut(msgspec.Struct):
    code: str
    name: str
    description: str
    earned_at: datetime | None
    current: int
    threshold: int


def review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        review.id, review.course_id, review.rating, review.comment, review.created_at,
        review.updated_at,
    )  # fmt: skip


class ReviewController(Controller):
    tags = ["Community"]

    @get(
        "/courses/{ref:str}/reviews", operation_id="listCourseReviews", summary="A course's reviews"
    )
    async def list_reviews(
        self,
        db_session: DbSession,
        ref: CourseRef,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Offset = 0,
    ) -> Page[ReviewOut]:
        found = await reviews.for_course(db_session, ref, PageRequest(limit, offset))
        return Page([review_out(r) for r in found.items], found.total, limit, offset)

    @put(
        "/me/reviews/{ref:str}",
        operation_id="writeReview",
        summary="Write or edit my review of a course",
        guards=[authenticated],
        security=[{"BearerToken": []}],
    )
    async def write_review(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        ref: CourseRef,
        data: JSONBody[ReviewIn],
    ) -> ReviewOut:
        """One review per learner per course, for enrolled learners; writing again edits it."""
        review = await reviews.write(
            db_session, user_id=request.user.id, course_ref=ref, rating=data.rating,
            comment=data.comment.strip(),
        )  # fmt: skip
        return review_out(review)

    @put(
        "/admin/reviews/{review_id:uuid}/visibility",
        operation_id="adminSetReviewVisibility",
        summary="Hide or show a review",
        guards=[admin],
        security=[{"BearerToken": []}],
        tags=["Admin: content"],
    )
    async def set_visibility(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        review_id: FromPath[uuid.UUID],
        data: JSONBody[VisibilityIn],
    ) -> AdminReviewOut:
        """A hidden review leaves the course's average and count."""
        review = await reviews.set_hidden(
            db_session, review_id, data.hidden,
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return AdminReviewOut(
            **msgspec.structs.asdict(review_out(review)),
            user_id=review.user_id,
            is_hidden=review.is_hidden,
        )


class BadgeController(Controller):
    path = "/me/badges"
    tags = ["Community"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/", operation_id="listMyBadges", summary="My badges and progress toward the others")
    async def my_badges(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> list[BadgeOut]:
        now = datetime.now(UTC)
        return [
            BadgeOut(
                code=item.badge.code,
                name=item.badge.name,
                description=item.badge.description,
                earned_at=item.earned_at,
                current=item.current,
                threshold=item.threshold,
            )
            for item in await badges.progress(db_session, request.user.id, now)
        ]
