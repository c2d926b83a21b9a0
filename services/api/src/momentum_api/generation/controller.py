"""The admin side of course generation: queue, inspect, cancel and retry jobs; upload the
reference PDFs that ground them; read the notification outbox."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from momentum_api.deps import AppSettings, DbSession, StorageDep
from momentum_api.generation.pdf import extract_pdf
from momentum_api.generation.schemas import (
    DocumentOut,
    JobDetail,
    JobOut,
    OutboxOut,
    ReferenceUpload,
    document_out,
    job_detail,
    job_out,
    outbox_out,
)
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_api.schemas import Offset, Page
from momentum_domain.generation.jobs import generation_jobs
from momentum_domain.generation.models import JobStatus
from momentum_domain.generation.references import references
from momentum_domain.generation.schemas import JobParameters
from momentum_domain.kit.pagination import PageRequest
from momentum_domain.kit.queue import trace_carrier
from momentum_domain.notifications.service import notifications

AdminRequest = Request[Principal, Any, Any]
IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)
]


class GenerationJobController(Controller):
    path = "/admin/generation-jobs"
    tags = ["Admin: generation"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @post(
        "/",
        operation_id="queueGenerationJob",
        status_code=HTTP_202_ACCEPTED,
        summary="Queue a course",
    )
    async def queue_job(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        data: Annotated[JobParameters, Body(media_type=RequestEncodingType.JSON)],
        idempotency_key: IdempotencyKey = None,
    ) -> JobOut:
        """Generate a DRAFT course from a topic. Repeating a request with the same
        `Idempotency-Key` returns the same job. Each admin may queue a limited number of jobs
        per day (429 after that)."""
        job = await generation_jobs.request_job(
            db_session,
            settings,
            data,
            actor_id=request.user.id,
            origin=request_origin(request, settings),
            idempotency_key=idempotency_key,
            trace_context=trace_carrier(),
        )
        return job_out(job, settings.public_url)

    @get("/", operation_id="listGenerationJobs", summary="Generation jobs, newest first")
    async def list_jobs(
        self,
        db_session: DbSession,
        settings: AppSettings,
        status: FromQuery[JobStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Offset = 0,
    ) -> Page[JobOut]:
        jobs = await generation_jobs.list_jobs(db_session, status, PageRequest(limit, offset))
        return Page(
            [job_out(job, settings.public_url) for job in jobs.items], jobs.total, limit, offset
        )

    @get("/{job_id:uuid}", operation_id="getGenerationJob", summary="A job, step by step")
    async def get_job(
        self, db_session: DbSession, settings: AppSettings, job_id: FromPath[uuid.UUID]
    ) -> JobDetail:
        """Status, per-step and per-lesson state, timings, tokens, cost so far, errors."""
        return job_detail(await generation_jobs.get_job(db_session, job_id), settings.public_url)

    @post(
        "/{job_id:uuid}/cancel",
        operation_id="cancelGenerationJob",
        status_code=200,
        summary="Cancel a job",
    )
    async def cancel_job(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        job_id: FromPath[uuid.UUID],
    ) -> JobOut:
        """Stops new steps at once; a step already running finishes, and its result is kept
        but nothing after it runs."""
        job = await generation_jobs.cancel_job(
            db_session, job_id, actor_id=request.user.id, origin=request_origin(request, settings)
        )
        return job_out(job, settings.public_url)

    @post(
        "/{job_id:uuid}/retry",
        operation_id="retryGenerationJob",
        status_code=HTTP_202_ACCEPTED,
        summary="Retry a failed job",
    )
    async def retry_job(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        job_id: FromPath[uuid.UUID],
    ) -> JobOut:
        """Resume a failed job from the step that failed; finished steps are not redone."""
        job = await generation_jobs.retry_job(
            db_session,
            settings,
            job_id,
            actor_id=request.user.id,
            origin=request_origin(request, settings),
        )
        return job_out(job, settings.public_url)


class ReferenceDocumentController(Controller):
    path = "/admin/reference-documents"
    tags = ["Admin: generation"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @post(
        "/",
        operation_id="uploadReferenceDocument",
        status_code=HTTP_201_CREATED,
        summary="Upload a reference PDF",
        # The configured limit is checked in the service (413 with a clear message); this
        # outer bound keeps a huge body from being read at all.
        request_max_body_size=64 * 1024 * 1024,
    )
    async def upload(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        storage: StorageDep,
        data: Annotated[ReferenceUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> DocumentOut:
        """A PDF in the multipart field `file`. The same file twice is a 409 naming the first."""
        document = await references.upload(
            db_session,
            storage,
            uploaded_by=request.user.id,
            filename=data.file.filename or "document.pdf",
            data=await data.file.read(),
            max_bytes=settings.reference_pdf_max_bytes,
            read_pdf=extract_pdf,
            origin=request_origin(request, settings),
        )
        return document_out(document)

    @get("/", operation_id="listReferenceDocuments", summary="Uploaded reference PDFs")
    async def list_documents(
        self,
        db_session: DbSession,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> Page[DocumentOut]:
        documents = await references.list_documents(db_session, PageRequest(limit, offset))
        return Page([document_out(d) for d in documents.items], documents.total, limit, offset)


class OutboxController(Controller):
    path = "/admin/notifications"
    tags = ["Admin: generation"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get("/", operation_id="listNotifications", summary="The notification outbox, newest first")
    async def list_messages(
        self,
        db_session: DbSession,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> list[OutboxOut]:
        messages = await notifications.list_messages(db_session, PageRequest(limit, offset))
        return [outbox_out(message) for message in messages]
