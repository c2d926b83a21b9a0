"""Course generation end to end: the API queues, a real Dramatiq worker on the real Redis broker
runs the pipeline, PostgreSQL ends up with a DRAFT course."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.catalog.models import Course, CourseStatus, Lesson, VideoStatus
from momentum_domain.generation.models import CourseGenerationJob, GenerationStep, LlmCall
from momentum_domain.kit.telemetry import setup_tracing
from momentum_domain.notifications.models import OutboxMessage
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from momentum_generator.llm import LlmRejected, LlmRequest
from tests.fixtures.app import Account, serve
from tests.fixtures.generation import ProbeProvider, queue, wait_for_job
from tests.fixtures.pdfs import text_pdf

Client = httpx.AsyncClient


async def test_a_seven_day_course_is_generated_as_a_draft(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    queued = await queue(api, admin_account, "Intro to SQL", 7)
    assert queued["status"] in ("QUEUED", "RUNNING")
    job = await wait_for_job(api, admin_account, queued["id"])
    assert job["status"] == "SUCCEEDED", job["error"]

    course = await db.get(Course, uuid.UUID(job["course_id"]))
    assert course is not None
    assert course.status is CourseStatus.DRAFT
    assert course.duration_days == 7
    assert "offline" in course.description.lower()
    assert course.thumbnail_url == f"/media/thumbnails/{queued['id']}.png"
    lessons = list(
        await db.scalars(
            select(Lesson).where(Lesson.course_id == course.id).order_by(Lesson.day_number)
        )
    )
    assert [lesson.day_number for lesson in lessons] == list(range(1, 8))
    assert all(lesson.content_html and lesson.action_items for lesson in lessons)
    assert {lesson.video_status for lesson in lessons} == {VideoStatus.PENDING}
    videos = list(await db.scalars(select(LessonVideoScript)))
    assert sorted(v.lesson_id for v in videos) == sorted(lesson.id for lesson in lessons)
    assert {v.status for v in videos} == {VideoJobStatus.PENDING}
    assert all(len(v.script.split()) > 50 for v in videos)

    # One call per outline, lesson and script; their cost adds up on the job.
    assert (worker.count("outline"), worker.count("lesson"), worker.count("script")) == (1, 7, 7)
    calls = list(await db.scalars(select(LlmCall)))
    assert len(calls) == 15
    assert job["cost_usd"] > 0
    assert Decimal(str(job["cost_usd"])) == sum(c.cost_usd for c in calls)
    assert job["input_tokens"] == sum(c.input_tokens for c in calls)
    assert {s["status"] for s in job["steps"]} == {"SUCCEEDED"}
    first_day = job["lessons"][0]
    assert (first_day["day"], first_day["lesson"], first_day["script"]) == (
        1,
        "SUCCEEDED",
        "SUCCEEDED",
    )

    # The admin is told, with a link to review; the public catalog does not show a draft.
    message = await db.scalar(select(OutboxMessage).where(OutboxMessage.channel == "email"))
    assert message is not None
    assert message.recipient == admin_account.user.email
    assert job["review_url"] in message.body
    outbox = (await api.get("/admin/notifications", headers=admin_account.headers)).json()
    assert {m["channel"] for m in outbox} == {"email", "sns"}
    assert (await api.get(f"/courses/{course.id}")).status_code == 404
    review = await api.get(f"/admin/courses/{course.id}", headers=admin_account.headers)
    assert len(review.json()["lessons"]) == 7
    published = await api.put(
        f"/admin/courses/{course.id}/status",
        json={"status": "PUBLISHED"},
        headers=admin_account.headers,
    )
    assert published.status_code == 200


async def test_concurrency_caps_hold(
    api: Client,
    probe: ProbeProvider,
    pipeline_settings,
    admin_account: Account,
    database_url: str,  # type: ignore[no-untyped-def]
) -> None:
    from momentum_generator.worker import start_worker, stop_worker

    probe.latency = {"lesson": 0.15, "script": 0.05}
    capped = pipeline_settings.model_copy(
        update={
            "generation_lesson_concurrency_per_job": 3,
            "generation_lesson_concurrency_global": 4,
        }
    )
    started = start_worker(capped, threads=24, provider_factory=lambda s, r: probe)
    try:
        # The API process reads the per-job cap too (it dispatches the first steps).
        jobs = [await queue(api, admin_account, f"Topic {n}", 14) for n in range(3)]
        results = await asyncio.gather(*(wait_for_job(api, admin_account, j["id"]) for j in jobs))
    finally:
        stop_worker(*started)
    assert {r["status"] for r in results} == {"SUCCEEDED"}
    assert max(probe.peak_by_topic.values()) <= 3
    assert probe.peak <= 4
    assert probe.peak == 4  # and the caps were actually reached: the work ran in parallel


async def test_invalid_outline_gets_one_repair(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    answers = iter(["this is not json", None])
    worker.misbehave["outline"] = lambda request: next(answers)
    job = await wait_for_job(api, admin_account, (await queue(api, admin_account, "Knots"))["id"])
    assert job["status"] == "SUCCEEDED"
    purposes = sorted(
        await db.scalars(select(LlmCall.purpose).where(LlmCall.purpose.like("outline%")))
    )
    assert purposes == ["outline", "outline-repair"]


async def test_outline_invalid_twice_fails_readably(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    worker.misbehave["outline"] = lambda request: json.dumps({"title": "only a title"})
    job = await wait_for_job(api, admin_account, (await queue(api, admin_account, "Knots"))["id"])
    assert job["status"] == "FAILED"
    assert job["error"].startswith("outline step failed: the model's outline did not match")
    assert await db.scalar(select(func.count()).select_from(Course)) == 0


async def test_failed_job_resumes_where_it_failed(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    failures = {"left": 1}

    def fail_day_three(request: LlmRequest) -> str | None:
        if "DAY: 3" in request.prompt and failures["left"]:
            failures["left"] -= 1
            raise LlmRejected("the model refused this request")
        return None

    worker.misbehave["lesson"] = fail_day_three
    queued = await queue(api, admin_account, "Watercolour", 7)
    failed = await wait_for_job(api, admin_account, queued["id"])
    assert failed["status"] == "FAILED"
    assert "lesson step (day 3) failed" in failed["error"]
    lessons_before = worker.count("lesson")

    retried = await api.post(
        f"/admin/generation-jobs/{queued['id']}/retry", headers=admin_account.headers
    )
    assert retried.status_code == 202
    job = await wait_for_job(api, admin_account, queued["id"])
    assert job["status"] == "SUCCEEDED"
    # Only day 3 (and anything not yet started when it failed) was generated again.
    redone = worker.count("lesson") - lessons_before
    assert 1 <= redone <= 7 - sum(1 for x in failed["lessons"] if x["lesson"] == "SUCCEEDED")
    per_day = await db.execute(
        select(GenerationStep.day_number, func.count())
        .select_from(LlmCall)
        .join(GenerationStep, GenerationStep.id == LlmCall.step_id)
        .where(LlmCall.purpose == "lesson")
        .group_by(GenerationStep.day_number)
    )
    counts = dict(per_day.all())
    assert counts[3] == 1  # the refused call raised: it produced nothing and was not billed
    assert set(counts.values()) == {1}
    assert (
        await api.post(
            f"/admin/generation-jobs/{queued['id']}/retry", headers=admin_account.headers
        )
    ).status_code == 409


async def test_cancel_stops_new_steps(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    worker.latency = {"lesson": 0.3}
    queued = await queue(api, admin_account, "Origami", 21)
    for _ in range(200):
        if worker.count("lesson") >= 2:
            break
        await asyncio.sleep(0.05)
    cancelled = await api.post(
        f"/admin/generation-jobs/{queued['id']}/cancel", headers=admin_account.headers
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    await asyncio.sleep(1.0)  # running steps finish; nothing starts after them
    job = (
        await api.get(f"/admin/generation-jobs/{queued['id']}", headers=admin_account.headers)
    ).json()
    assert job["status"] == "CANCELLED"
    assert not [s for s in job["steps"] if s["status"] in ("QUEUED", "RUNNING", "PENDING")]
    assert worker.count("lesson") <= 12  # the first wave at most, never the whole course
    assert await db.scalar(select(func.count()).select_from(Course)) == 0
    again = await api.post(
        f"/admin/generation-jobs/{queued['id']}/cancel", headers=admin_account.headers
    )
    assert again.status_code == 409


async def test_budget_aborts_the_job(
    api: Client,
    worker: ProbeProvider,
    admin_account: Account,
    pipeline_settings,
    db: AsyncSession,  # type: ignore[no-untyped-def]
) -> None:
    tight_settings = pipeline_settings.model_copy(update={"generation_job_budget_usd": 0.000001})
    async with serve(create_app(tight_settings)) as tight:
        queued = await queue(tight, admin_account, "Expensive topic")
        job = await wait_for_job(tight, admin_account, queued["id"])
    assert job["status"] == "FAILED"
    assert "budget" in job["error"]
    assert await db.scalar(select(func.count()).select_from(Course)) == 0


async def test_reference_pdfs_ground_lessons(
    api: Client, worker: ProbeProvider, admin_account: Account, db: AsyncSession
) -> None:
    pdf = text_pdf(
        [
            "Sourdough starter needs flour and water, fed daily.",
            "Hydration above seventy percent gives an open crumb.",
            "Bake at high heat with steam for a crisp crust.",
        ]
    )
    files = {"file": ("sourdough.pdf", pdf, "application/pdf")}
    uploaded = await api.post(
        "/admin/reference-documents", files=files, headers=admin_account.headers
    )
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    assert document["page_count"] == 1
    assert document["text_characters"] > 50
    duplicate = await api.post(
        "/admin/reference-documents", files=files, headers=admin_account.headers
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["document_id"] == document["id"]

    queued = await queue(
        api, admin_account, "Sourdough baking", 7, reference_document_ids=[document["id"]]
    )
    job = await wait_for_job(api, admin_account, queued["id"])
    assert job["status"] == "SUCCEEDED"
    grounding = job["documents"][0]
    assert len(job["documents"]) == 1
    assert grounding["id"] == document["id"]
    assert grounding["used_in_days"]  # at least one lesson was grounded on it
    grounded_prompts = [r.prompt for r in worker.requests if "<excerpt>" in r.prompt]
    assert grounded_prompts
    assert any("Hydration above seventy percent" in prompt for prompt in grounded_prompts)


async def test_one_trace_from_the_request_to_every_step(
    worker: ProbeProvider, admin_account: Account, db: AsyncSession, pipeline_settings
) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    setup_tracing(pipeline_settings, "momentum-tests", processor=SimpleSpanProcessor(exporter))
    # An app made with tracing on instruments its requests (without it, it adds no middleware).
    async with serve(create_app(pipeline_settings)) as api:
        queued = await queue(api, admin_account, "Chess openings")
        await wait_for_job(api, admin_account, queued["id"])
        listing = (await api.get("/admin/generation-jobs", headers=admin_account.headers)).json()
    assert [j["id"] for j in listing["items"]] == [queued["id"]]

    stored = await db.get(CourseGenerationJob, uuid.UUID(queued["id"]))
    assert stored is not None
    assert stored.trace_context["traceparent"]
    spans = exporter.get_finished_spans()
    request_span = next(s for s in spans if s.name.startswith("POST /admin/generation-jobs"))
    step_spans = [s for s in spans if s.name.startswith("generation.")]
    assert {s.name for s in step_spans} >= {
        "generation.outline",
        "generation.lesson",
        "generation.script",
        "generation.save",
    }
    assert {s.context.trace_id for s in step_spans} == {request_span.context.trace_id}
    llm_spans = [s for s in spans if s.name.startswith("llm.")]
    assert {s.context.trace_id for s in llm_spans} == {request_span.context.trace_id}
