"""Queuing jobs: validation, quota, idempotency, uploads. Nothing half-written on bad input."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    PdfReferenceDocument,
)
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, serve
from tests.fixtures.generation import queue
from tests.fixtures.pdfs import text_pdf

Client = httpx.AsyncClient


async def _job_rows(db: AsyncSession) -> tuple[int, int]:
    jobs = await db.scalar(select(func.count()).select_from(CourseGenerationJob))
    steps = await db.scalar(select(func.count()).select_from(GenerationStep))
    return int(jobs or 0), int(steps or 0)


async def test_a_job_has_every_step_from_the_start(
    api: Client, admin_account: Account, db: AsyncSession
) -> None:
    job = await queue(api, admin_account, "Bird watching", 14)
    detail = (
        await api.get(f"/admin/generation-jobs/{job['id']}", headers=admin_account.headers)
    ).json()
    kinds = [s["kind"] for s in detail["steps"]]
    assert kinds.count("LESSON") == kinds.count("SCRIPT") == 14
    assert {"OUTLINE", "THUMBNAIL", "SAVE", "NOTIFY"} <= set(kinds)
    assert next(s for s in detail["steps"] if s["kind"] == "OUTLINE")["status"] == "QUEUED"
    assert detail["status"] == "RUNNING"
    assert await _job_rows(db) == (1, 32)


@pytest.mark.parametrize(
    "body",
    [
        {"topic": "SQL", "duration_days": 10},
        {"topic": "", "duration_days": 7},
        {"topic": "   ", "duration_days": 7, "level": "wizard"},
        {"duration_days": 7},
        {"topic": "SQL", "duration_days": 7, "priority": "high"},
        {"topic": "SQL", "duration_days": 7, "language": "english please"},
        {"topic": "SQL", "duration_days": 7, "category_id": "00000000-0000-0000-0000-000000000000"},
        {
            "topic": "SQL",
            "duration_days": 7,
            "reference_document_ids": ["00000000-0000-0000-0000-000000000001"],
        },
    ],
)
async def test_bad_requests_write_nothing(
    api: Client, admin_account: Account, db: AsyncSession, body: dict
) -> None:
    response = await api.post("/admin/generation-jobs", json=body, headers=admin_account.headers)
    # Unknown references are well-formed (422); the rest do not match the schema (400).
    unknown = "category_id" in body or "reference_document_ids" in body
    assert response.status_code == (422 if unknown else 400), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _job_rows(db) == (0, 0)


async def test_idempotency_key_returns_the_same_job(
    api: Client, admin_account: Account, db: AsyncSession
) -> None:
    headers = {"Idempotency-Key": "generate-sql-once"}
    responses = await asyncio.gather(
        *(queue(api, admin_account, "SQL joins", headers=headers) for _ in range(5))
    )
    assert len({r["id"] for r in responses}) == 1
    assert (await _job_rows(db))[0] == 1


async def test_daily_quota_per_admin(
    api: Client,
    admin_account: Account,
    make_account: MakeAccount,
    settings: Settings,
    db: AsyncSession,
) -> None:
    async with serve(
        create_app(settings.model_copy(update={"generation_jobs_per_admin_per_day": 2}))
    ) as limited:
        for n in range(2):
            await queue(limited, admin_account, f"Topic {n}")
        third = await limited.post(
            "/admin/generation-jobs",
            json={"topic": "One more", "duration_days": 7},
            headers=admin_account.headers,
        )
        assert third.status_code == 429
        assert "quota" in third.json()["detail"]
        assert int(third.headers["retry-after"]) > 0
        other_admin = await make_account(Role.ADMIN)
        theirs = await queue(limited, other_admin, "Theirs")  # a quota per admin
        assert theirs["status"] == "RUNNING"
    assert (await _job_rows(db))[0] == 3


async def test_only_admins_generate(api: Client, learner: Account) -> None:
    body = {"topic": "SQL", "duration_days": 7}
    assert (await api.post("/admin/generation-jobs", json=body)).status_code == 401
    assert (
        await api.post("/admin/generation-jobs", json=body, headers=learner.headers)
    ).status_code == 403


@pytest.mark.parametrize(
    ("filename", "content", "status"),
    [
        # A file that is not a readable PDF is well-formed, but cannot be processed.
        ("notes.pdf", b"just some text, not a pdf", 422),
        ("empty.pdf", b"", 422),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", 422),
    ],
)
async def test_bad_uploads(
    api: Client,
    admin_account: Account,
    db: AsyncSession,
    filename: str,
    content: bytes,
    status: int,
) -> None:
    response = await api.post(
        "/admin/reference-documents",
        files={"file": (filename, content, "application/pdf")},
        headers=admin_account.headers,
    )
    assert response.status_code == status, response.text
    assert await db.scalar(select(func.count()).select_from(PdfReferenceDocument)) == 0


async def test_oversized_upload(
    settings: Settings, admin_account: Account, db: AsyncSession, reference_rows: object
) -> None:
    pdf = text_pdf(["A small document."])
    app = create_app(settings.model_copy(update={"reference_pdf_max_bytes": len(pdf) - 1}))
    async with serve(app) as client:
        response = await client.post(
            "/admin/reference-documents",
            files={"file": ("doc.pdf", pdf, "application/pdf")},
            headers=admin_account.headers,
        )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(PdfReferenceDocument)) == 0
