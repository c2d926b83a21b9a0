"""HeyGen's webhook, the media files, and the admin's video endpoints."""

from __future__ import annotations

import asyncio
import mimetypes
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.response import Redirect, Stream
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.deps import AppSettings, AutocommitSession, DbSession, StorageDep
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_api.problems import problem
from momentum_api.videos.links import REFERENCES, MediaLinks, MediaRefused
from momentum_api.videos.media import RangeNotSatisfiable, byte_range, file_chunks
from momentum_api.videos.schemas import (
    MediaLinkOut,
    VideoRequestOut,
    WebhookReceipt,
    video_request_out,
)
from momentum_domain.config import Settings
from momentum_domain.kit.queue import trace_carrier
from momentum_domain.kit.storage import (
    LocalStorage,
    ObjectNotFound,
    ObjectStorage,
    media_path,
    validate_key,
)
from momentum_domain.videos.heygen_events import SIGNATURE_HEADERS, parse_event, signature_matches
from momentum_domain.videos.media_access import is_admin_now, is_published_thumbnail
from momentum_domain.videos.service import VideoStats, videos


class HeyGenWebhookController(Controller):
    path = "/webhooks/heygen"
    tags = ["Webhooks"]

    @post(
        "/",
        operation_id="receiveHeyGenWebhook",
        status_code=200,
        summary="HeyGen video events",
        responses={401: ResponseSpec(None, description="Missing or wrong signature")},
    )
    async def receive(
        self, request: Request[Any, Any, Any], db_session: DbSession, settings: AppSettings
    ) -> Response[Any]:
        """HeyGen's `avatar_video.success` / `avatar_video.fail` events, signed with the
        endpoint's secret (HMAC-SHA256 of the raw body, hex, in `Signature`). A finished video
        is polled and downloaded at once instead of at its next scheduled poll. Each event is
        applied once; a redelivered one is acknowledged and ignored."""
        body = await request.body()
        signature = next(
            (value for name in SIGNATURE_HEADERS if (value := request.headers.get(name))), None
        )
        if not signature_matches(settings.heygen_webhook_secret, body, signature):
            return problem(request, 401, "The webhook signature is missing or does not match.")
        first_time = await videos.record_webhook(db_session, parse_event(body))
        return Response(WebhookReceipt(received=True, duplicate=not first_time))


# A published course's thumbnail is public: any cache may keep it.
PUBLIC_MEDIA_CACHE = "public, max-age=3600"
THUMBNAILS = "thumbnails/"

# No lower bound: a time in the past is an expired link (403), like any other.
SignedExpiry = Annotated[
    int | None, QueryParameter(le=2**53, description="Signed link: expiry (Unix time)")
]
SignedViewer = Annotated[
    str | None, QueryParameter(max_length=64, description="Signed link: the viewer's user id")
]
Signature = Annotated[
    str | None, QueryParameter(max_length=128, description="Signed link: HMAC-SHA256 signature")
]
MEDIA_RESPONSES = {
    206: ResponseSpec(None, description="The requested byte range"),
    302: ResponseSpec(None, description="Redirect to a short-lived S3 URL"),
    403: ResponseSpec(None, description="The link is unsigned, altered or expired"),
    416: ResponseSpec(None, description="Range outside the file"),
}


@dataclass(frozen=True)
class _Served:
    """What a GET of a local file sends, and a HEAD announces."""

    path: Path
    status_code: int
    headers: dict[str, str]
    first: int
    length: int
    media_type: str


class MediaController(Controller):
    """Stored files. Nothing is served without a valid signed link (the lesson endpoint hands
    them out to whoever may open the lesson) except a published course's thumbnail; reference
    PDFs only on a link signed for someone who is an administrator still."""

    path = "/media"
    tags = ["Media"]

    @get(
        "/{key:path}",
        operation_id="getMedia",
        summary="A stored media file (lesson video, thumbnail), by signed link",
        responses=MEDIA_RESPONSES,
    )
    async def media(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        storage: StorageDep,
        autocommit_session: AutocommitSession,
        key: Annotated[str, PathParameter(max_length=1024, description="Storage key")],
        expires: SignedExpiry = None,
        viewer: SignedViewer = None,
        signature: Signature = None,
    ) -> Response[Any]:
        """Local storage serves the file itself, with `Range` support for seeking, cached
        privately for no longer than the link lives; S3 storage redirects to a presigned URL
        valid for `MOMENTUM_MEDIA_URL_TTL_SECONDS`. An unsigned, altered or expired link is 403
        whether or not the file exists."""
        served = await _prepare(
            request, settings, storage, autocommit_session, key, expires, viewer, signature
        )
        if isinstance(served, Response):
            return served
        return Stream(
            file_chunks(served.path, served.first, served.length),
            status_code=served.status_code,
            media_type=served.media_type,
            headers=served.headers,
        )


async def _prepare(
    request: Request[Any, Any, Any],
    settings: Settings,
    storage: ObjectStorage,
    session: AsyncSession,
    key: str,
    expires: int | None,
    viewer: str | None,
    signature: str | None,
) -> _Served | Response[Any]:
    key = validate_key(key.lstrip("/"))
    links: MediaLinks = request.app.state.media_links
    cache_control = await _allowed(session, links, key, expires, viewer, signature)
    if not isinstance(storage, LocalStorage):
        url = await storage.presigned_url(key, settings.media_url_ttl_seconds)
        assert url is not None
        return Redirect(url, status_code=302, headers={"Cache-Control": "no-store"})
    path = storage.path_for(key)
    try:
        info = await asyncio.to_thread(path.stat)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise ObjectNotFound(f"No media file {key!r}.")
    size = info.st_size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": cache_control}
    try:
        requested = byte_range(request.headers.get("range"), size)
    except RangeNotSatisfiable as exc:
        return problem(
            request, 416, str(exc), title="Range not satisfiable",
            headers={**headers, "Content-Range": f"bytes */{exc.size}"},
        )  # fmt: skip
    first, last = requested or (0, size - 1)
    length = last - first + 1 if size else 0
    headers["Content-Length"] = str(length)
    if requested is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return _Served(
        path,
        206 if requested is not None else 200,
        headers,
        first,
        length,
        mimetypes.guess_type(key)[0] or "application/octet-stream",
    )


async def _allowed(
    session: AsyncSession,
    links: MediaLinks,
    key: str,
    expires: int | None,
    viewer: str | None,
    signature: str | None,
) -> str:
    """The Cache-Control to serve the file with, or MediaRefused. The signature is checked
    before the file is looked for: a refusal says nothing about what exists."""
    unsigned = expires is None and viewer is None and signature is None
    if (
        unsigned
        and key.startswith(THUMBNAILS)
        and await is_published_thumbnail(session, [media_path(key), links.public(key)])
    ):
        return PUBLIC_MEDIA_CACHE
    remaining = links.check(key, expires, viewer, signature)
    if key.startswith(REFERENCES) and not await is_admin_now(session, viewer or ""):
        raise MediaRefused("Reference documents are for administrators only.")
    return f"private, max-age={remaining}"


class VideoAdminController(Controller):
    path = "/admin"
    tags = ["Admin: videos"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @post(
        "/lessons/{lesson_id:uuid}/video",
        operation_id="adminRequestLessonVideo",
        status_code=HTTP_202_ACCEPTED,
        summary="Make a lesson's video again",
    )
    async def request_video(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        lesson_id: FromPath[uuid.UUID],
    ) -> VideoRequestOut:
        """Queues a new video from the lesson's narration script (for instance after it
        failed). 404 for an unknown lesson, 422 when the lesson has no script, 409 while a
        video for it is still in progress."""
        video = await videos.request_again(
            db_session,
            lesson_id,
            provider=settings.video_provider,
            trace_context=trace_carrier(),
            actor_id=request.user.id,
            origin=request_origin(request, settings),
        )
        return video_request_out(video)

    @get(
        "/media-links/{key:path}",
        operation_id="adminMediaLink",
        summary="A short-lived link to a stored file, for the administrator",
    )
    async def media_link(
        self,
        request: Request[Principal, Any, Any],
        storage: StorageDep,
        key: Annotated[str, PathParameter(max_length=1024, description="Storage key")],
    ) -> MediaLinkOut:
        """A link signed for the calling administrator to any stored file: a reference PDF
        (`references/<sha256>.pdf`), a draft course's video or thumbnail. It works until
        `expires_at`, and a reference PDF's only while its viewer is still an administrator."""
        links: MediaLinks = request.app.state.media_links
        link = await links.link(storage, validate_key(key.lstrip("/")), request.user.id)
        return MediaLinkOut(link.url, link.expires_at)

    @get("/videos/stats", operation_id="adminVideoStats", summary="Lesson videos by status")
    async def stats(self, db_session: DbSession) -> VideoStats:
        """Pending, in flight (at the provider or downloading), completed and failed videos,
        and how long the oldest pending one has waited."""
        return await videos.stats(db_session)
