"""The public catalog: courses, course details, lessons (day 1 is a free preview), categories."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, PathParameter, QueryParameter

from momentum_api.catalog.schemas import (
    CategoryOut,
    CourseDetail,
    CoursePage,
    CourseSummary,
    LessonOut,
    MyProgress,
    course_detail,
    course_summary,
)
from momentum_api.conditional import conditional_json
from momentum_api.deps import AppSettings, AutocommitSession, CatalogCache, StorageDep
from momentum_api.identity.principal import Principal
from momentum_api.videos.links import MediaLinks
from momentum_domain.catalog.service import CourseQuery, catalog
from momentum_domain.learning.service import learning

PUBLIC_CACHE = "public, max-age=30"
# The first courses of each browse list (filters and sort, no search), kept whole per process.
BROWSE_WINDOW = 1000
PRIVATE_CACHE = "private, no-cache"
Duration = Literal[7, 14, 21]
# The constraints sit on the optional type itself: FromQuery[...] around an annotated type
# would replace them with its own empty QueryParameter, leaving maxLength documented only.
SearchText = Annotated[
    str | None, QueryParameter(min_length=1, max_length=200, description="Full-text search")
]


def _learner(request: Request[Any, Any, Any]) -> Principal | None:
    user: Principal | None = request.scope.get("user")
    return user


class CatalogController(Controller):
    tags = ["Catalog"]

    @get(
        "/courses",
        operation_id="listCourses",
        summary="Browse and search published courses",
        responses={200: ResponseSpec(CoursePage, description="A page of courses")},
    )
    async def list_courses(
        self,
        request: Request[Any, Any, Any],
        autocommit_session: AutocommitSession,
        catalog_cache: CatalogCache,
        settings: AppSettings,
        category: FromQuery[str | None] = None,
        duration: FromQuery[Duration | None] = None,
        price: FromQuery[Literal["free", "premium", "paid"] | None] = None,
        q: SearchText = None,
        sort: FromQuery[Literal["newest", "rating", "popularity", "relevance"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
    ) -> Response[bytes]:
        """Filters combine; `q` ranks by relevance unless another sort is asked for."""
        if q is None and offset + limit <= BROWSE_WINDOW:
            # Browsing: pages are cut from the whole filtered list, which each process keeps,
            # so every offset of every filter shares one entry.
            browse = CourseQuery(category, duration, price, None, sort, BROWSE_WINDOW, 0)

            async def produce_listing() -> tuple[list[CourseSummary], int]:
                found = await catalog.list_published(autocommit_session, browse)
                listing = [course_summary(c, cat, settings.public_url) for c, cat in found.items]
                return listing, found.total

            kept = await catalog_cache.fetch_local(
                f"browse:{category}:{duration}:{price}:{sort}", produce_listing
            )
            if kept is not None:
                listing, total = kept
                page = CoursePage(listing[offset : offset + limit], total, limit, offset)
                body = msgspec.json.encode(page)
                return conditional_json(request, body, cache_control=PUBLIC_CACHE)

        query = CourseQuery(category, duration, price, q, sort, limit, offset)

        async def produce() -> bytes:
            found = await catalog.list_published(autocommit_session, query)
            summaries = [course_summary(c, cat, settings.public_url) for c, cat in found.items]
            page = CoursePage(summaries, found.total, limit, offset)
            return msgspec.json.encode(page)

        key = hashlib.blake2b(repr(query).encode(), digest_size=16).hexdigest()
        body = await catalog_cache.fetch(f"courses:{key}", produce)
        return conditional_json(request, body, cache_control=PUBLIC_CACHE)

    @get(
        "/courses/{ref:str}",
        operation_id="getCourse",
        summary="A course by id or slug, with its lesson outline",
        responses={200: ResponseSpec(CourseDetail, description="The course")},
    )
    async def get_course(
        self,
        request: Request[Any, Any, Any],
        autocommit_session: AutocommitSession,
        catalog_cache: CatalogCache,
        settings: AppSettings,
        ref: Annotated[str, PathParameter(max_length=200, description="Course id or slug")],
    ) -> Response[bytes]:
        """Drafts and archived courses are 404 for everyone but admins."""
        caller = _learner(request)

        async def produce() -> bytes:
            view = await catalog.view_course(
                autocommit_session, ref, include_unpublished=caller is not None and caller.is_admin
            )
            detail = course_detail(view, settings.public_url)
            return msgspec.json.encode(detail)

        if caller is not None and caller.is_admin:
            body = await produce()
        else:
            body = await catalog_cache.fetch(f"course:{ref}", produce)
        if caller is None:
            return conditional_json(request, body, cache_control=PUBLIC_CACHE)
        detail = msgspec.json.decode(body, type=CourseDetail)
        detail.is_enrolled = await learning.is_enrolled(autocommit_session, caller.id, detail.id)
        return conditional_json(request, msgspec.json.encode(detail), cache_control=PRIVATE_CACHE)

    @get(
        "/courses/{ref:str}/lessons/{day:int}",
        operation_id="getLesson",
        summary="A lesson's full content, with the caller's progress",
        responses={
            200: ResponseSpec(LessonOut, description="The lesson"),
            403: ResponseSpec(
                None,
                description="Not enrolled or no access; or a day the daily schedule has not "
                "opened yet: then `opens_on` (ISO date in the learner's time zone), `opens_at` "
                "(the instant, with the zone's offset) and `time_zone` say when it opens",
            ),
        },
    )
    async def get_lesson(
        self,
        request: Request[Any, Any, Any],
        autocommit_session: AutocommitSession,
        storage: StorageDep,
        ref: Annotated[str, PathParameter(max_length=200, description="Course id or slug")],
        day: Annotated[int, PathParameter(ge=1, le=21)],
    ) -> Response[bytes]:
        """Day 1 of any published course is a free preview; other days need an enrollment, and
        open one a day: day N on the (N-1)th local calendar day after the enrollment's, in the
        learner's time zone. Missed days stay open; days ahead are 403 with when they open.
        The video and any stored resource come as links signed for the caller, valid until
        `video_url_expires_at` (`MOMENTUM_MEDIA_URL_TTL_SECONDS`): ask again for fresh ones."""
        caller = _learner(request)
        learner = caller.as_learner() if caller else None
        lesson = await learning.open_lesson(
            autocommit_session, learner, ref, day, datetime.now(UTC)
        )
        # The caller may open this lesson: only now are its files' links signed, for them.
        links: MediaLinks = request.app.state.media_links
        viewer = caller.id if caller else None
        video = await links.link_stored(storage, lesson.video_url, viewer)
        body = LessonOut(
            id=lesson.id,
            course_id=lesson.course_id,
            day=lesson.day_number,
            title=lesson.title,
            content_markdown=lesson.content_markdown,
            content_html=lesson.content_html,
            action_items=lesson.action_items,
            resources=await links.link_resources(storage, lesson.resources, viewer),
            video_status=lesson.video_status.value,
            video_url=video.url if video else lesson.video_url,
            video_url_expires_at=video.expires_at if video else None,
            video_duration_seconds=lesson.video_duration_seconds,
            is_preview=day == 1,
            my_progress=MyProgress(
                lesson.completed,
                lesson.completed_at,
                lesson.time_spent_seconds,
                lesson.notes,
            )
            if lesson.progress_id is not None
            else None,
        )
        return conditional_json(request, msgspec.json.encode(body), cache_control=PRIVATE_CACHE)

    @get(
        "/categories",
        operation_id="listCategories",
        summary="Categories with their published course counts",
        responses={200: ResponseSpec(list[CategoryOut], description="Every category")},
    )
    async def list_categories(
        self,
        request: Request[Any, Any, Any],
        autocommit_session: AutocommitSession,
        catalog_cache: CatalogCache,
    ) -> Response[bytes]:
        async def produce() -> bytes:
            rows = await catalog.categories_with_counts(autocommit_session)
            return msgspec.json.encode(
                [
                    CategoryOut(c.id, c.slug, c.name, c.description, c.sort_order, count)
                    for c, count in rows
                ]
            )

        body = await catalog_cache.fetch("categories", produce)
        return conditional_json(request, body, cache_control=PUBLIC_CACHE)
