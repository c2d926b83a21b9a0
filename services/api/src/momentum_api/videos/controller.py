"""HeyGen's webhook, the media files, and the admin's video endpoints."""

from __future__ import annotations

import asyncio
import mimetypes
import stat
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, PathParameter
from litestar.response import Redirect, Stream
from litestar.status_codes import HTTP_202_ACCEPTED

from momentum_api.admin.writes import commit_admin_write
from momentum_api.deps import AppSettings, CatalogCache, DbSession, StorageDep
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.problems import problem
from momentum_api.videos.media import RangeNotSatisfiable, byte_range, file_chunks
from momentum_api.videos.schemas import (
    VideoRequestOut,
    VideoStats,
    WebhookReceipt,
    video_request_out,
)
from momentum_api.videos.service import SIGNATURE_HEADERS, parse_event, signature_matches, videos
from momentum_domain.queue import trace_carrier
from momentum_domain.storage import LocalStorage, ObjectNotFound, validate_key

MEDIA_CACHE = "public, max-age=3600"


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


class MediaController(Controller):
    path = "/media"
    tags = ["Media"]

    @get(
        "/{key:path}",
        operation_id="getMedia",
        summary="A stored media file (lesson video, thumbnail)",
        responses={
            206: ResponseSpec(None, description="The requested byte range"),
            302: ResponseSpec(None, description="Redirect to a short-lived S3 URL"),
            416: ResponseSpec(None, description="Range outside the file"),
        },
    )
    async def media(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        storage: StorageDep,
        key: Annotated[str, PathParameter(max_length=1024, description="Storage key")],
    ) -> Response[Any]:
        """Local storage serves the file itself, with `Range` support for seeking; S3 storage
        redirects to a presigned URL valid for `MOMENTUM_MEDIA_URL_TTL_SECONDS`."""
        key = validate_key(key.lstrip("/"))
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
        headers = {"Accept-Ranges": "bytes", "Cache-Control": MEDIA_CACHE}
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
        return Stream(
            file_chunks(path, first, length),
            status_code=206 if requested is not None else 200,
            media_type=mimetypes.guess_type(key)[0] or "application/octet-stream",
            headers=headers,
        )


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
        catalog_cache: CatalogCache,
        lesson_id: FromPath[uuid.UUID],
    ) -> VideoRequestOut:
        """Queues a new video from the lesson's narration script (for instance after it
        failed). 404 for an unknown lesson, 422 when the lesson has no script, 409 while a
        video for it is still in progress."""
        video = await videos.request_again(
            db_session, lesson_id, provider=settings.video_provider, trace_context=trace_carrier()
        )
        await commit_admin_write(
            request, db_session, catalog_cache, action="lesson.video.request",
            resource_type="lesson", resource_id=lesson_id,
            details={"video_request_id": str(video.id), "provider": video.provider},
        )  # fmt: skip
        return video_request_out(video)

    @get("/videos/stats", operation_id="adminVideoStats", summary="Lesson videos by status")
    async def stats(self, db_session: DbSession) -> VideoStats:
        """Pending, in flight (at the provider or downloading), completed and failed videos,
        and how long the oldest pending one has waited."""
        return await videos.stats(db_session)
