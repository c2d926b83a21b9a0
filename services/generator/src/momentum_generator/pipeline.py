"""What each generation step does. The runner claims a step (a lease its worker renews while
the step runs), does its work outside any transaction (model calls take seconds), then persists
the result and advances the job in one transaction. Steps that only write rows (save, notify)
do so inside that same transaction."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.authoring import insert_course, insert_lessons
from momentum_domain.catalog.inputs import NewCourse, NewLesson
from momentum_domain.catalog.models import VideoStatus
from momentum_domain.config import Settings
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationJobDocument,
    GenerationStep,
    StepKind,
    StepStatus,
)
from momentum_domain.generation.references import references
from momentum_domain.generation.schemas import (
    CourseOutline,
    JobParameters,
    LessonDraft,
    ScriptDraft,
)
from momentum_domain.generation.service import generation
from momentum_domain.kit.storage import ObjectStorage, media_path
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.notifications.service import Recipient, notifications
from momentum_domain.users.models import User
from momentum_domain.videos.service import videos
from momentum_generator import prompts
from momentum_generator.concurrency import RedisSemaphore
from momentum_generator.llm import LlmError, LlmProvider
from momentum_generator.model_calls import CallLog, StepFailed, ask
from momentum_generator.thumbnail import placeholder_png, render_title_card

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("momentum.generation")
Apply = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


COMPLETION_ATTEMPTS = 3


@dataclass
class StepOutcome:
    result: dict[str, Any]
    # Row writes that belong in the completing transaction (save, notify).
    apply: Apply | None = None


@dataclass(frozen=True)
class PipelineContext:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    llm: LlmProvider
    storage: ObjectStorage
    lesson_slots: RedisSemaphore
    # This worker, as named on the leases of the steps it runs.
    owner: str


class StepRunner:
    def __init__(self, ctx: PipelineContext) -> None:
        self.ctx = ctx
        self.lease = timedelta(seconds=ctx.settings.generation_step_lease_seconds)
        # The steps this worker runs now, whose leases ``renew_leases`` keeps pushing back.
        self.held: set[uuid.UUID] = set()

    async def renew_leases(self) -> None:
        """Renew the leases of every step this worker runs, in one statement."""
        if held := list(self.held):
            async with transaction(self.ctx.sessions) as session:
                await generation.renew(session, held, owner=self.ctx.owner, lease=self.lease)

    async def hand_back(self) -> list[uuid.UUID]:
        """Give back every step this worker holds (it is stopping): the ids to enqueue."""
        self.held.clear()
        async with transaction(self.ctx.sessions) as session:
            return await generation.release(session, owner=self.ctx.owner)

    async def run(self, step_id: uuid.UUID) -> list[uuid.UUID]:
        """Run one step; return the ids of the steps to enqueue next."""
        try:
            return await self._run(step_id)
        finally:
            # Renewals stop with the step, however it ends: a step cancelled midway (a hung
            # step's time limit) is taken over once its lease runs out.
            self.held.discard(step_id)

    async def _run(self, step_id: uuid.UUID) -> list[uuid.UUID]:
        settings = self.ctx.settings
        async with transaction(self.ctx.sessions) as session:
            step = await generation.claim(session, step_id, owner=self.ctx.owner, lease=self.lease)
            if step is None:
                # Already done (a redelivered message), cancelled, or another worker's: make sure
                # the job did not stall after it, then stop.
                done = await session.scalar(
                    select(GenerationStep.job_id).where(
                        GenerationStep.id == step_id, GenerationStep.status == StepStatus.SUCCEEDED
                    )
                )
                return await generation.advance(session, settings, done) if done else []
            self.held.add(step.id)
            job = await session.get(CourseGenerationJob, step.job_id)
            assert job is not None
            inputs = await self._inputs(session, job, step)

        carrier = job.trace_context or {}
        parent = propagate.extract(carrier)
        token = otel_context.attach(parent)
        log = CallLog(settings, job.cost_usd, job.budget_usd)
        try:
            with tracer.start_as_current_span(
                f"generation.{step.kind.value.lower()}",
                attributes={
                    "generation.job_id": str(job.id),
                    "generation.day": step.day_number,
                    "generation.attempt": step.attempts,
                },
            ):
                outcome = await self._execute(step, job, inputs, log)
        except (StepFailed, LlmError) as exc:
            await self._fail(step, str(exc), log)
            return []
        except RedisError as exc:
            # Redis (the lesson slots) unreachable: weather, not the step's fault. Run it again.
            logger.warning("generation step %s interrupted, requeued: %s", step.id, exc)
            async with transaction(self.ctx.sessions) as session:
                await generation.requeue(
                    session, step, error=f"requeued: {exc}"[:2000], calls=log.calls
                )
            return []
        except Exception as exc:
            logger.exception("generation step %s failed unexpectedly", step.id)
            await self._fail(step, f"unexpected error: {exc.__class__.__name__}: {exc}", log)
            return []
        finally:
            otel_context.detach(token)

        for attempt in range(1, COMPLETION_ATTEMPTS + 1):
            try:
                async with transaction(self.ctx.sessions) as session:
                    result = outcome.result
                    if outcome.apply is not None:
                        result = await outcome.apply(session)  # idempotent: safe to repeat
                    next_steps = await generation.complete(
                        session, settings, step, result=result, calls=log.calls
                    )
                return next_steps or []
            except DBAPIError as exc:
                # A deadlock or a dropped connection: the work is done, only its record failed.
                if attempt == COMPLETION_ATTEMPTS:
                    raise
                logger.warning("recording step %s failed (%s); retrying", step.id, exc.orig)
                await asyncio.sleep(0.1 * attempt)
        raise AssertionError("unreachable")

    async def _fail(self, step: GenerationStep, error: str, log: CallLog) -> None:
        async with transaction(self.ctx.sessions) as session:
            await generation.fail(session, step, error=error[:2000], calls=log.calls)

    async def _inputs(
        self, session: AsyncSession, job: CourseGenerationJob, step: GenerationStep
    ) -> dict[Any, Any]:
        """The results this step builds on, keyed by (kind, day): the outline and the day's
        lesson for most steps, everything for the save."""
        query = select(GenerationStep.kind, GenerationStep.day_number, GenerationStep.result).where(
            GenerationStep.job_id == job.id, GenerationStep.status == StepStatus.SUCCEEDED
        )
        if step.kind is not StepKind.SAVE:
            query = query.where(
                (GenerationStep.kind == StepKind.OUTLINE)
                | (
                    (GenerationStep.kind == StepKind.LESSON)
                    & (GenerationStep.day_number == step.day_number)
                )
            )
        rows = await session.execute(query)
        return {(kind, day): result for kind, day, result in rows.all()}

    async def _execute(
        self,
        step: GenerationStep,
        job: CourseGenerationJob,
        inputs: dict[Any, Any],
        log: CallLog,
    ) -> StepOutcome:
        params = JobParameters.model_validate(job.parameters)
        if step.kind is StepKind.OUTLINE:
            outline = await ask(
                self.ctx.llm, log, "outline", prompts.outline_prompt(params), CourseOutline,
                params, 4000, check=lambda o: o.check_days(params.duration_days),
            )  # fmt: skip
            return StepOutcome(outline.model_dump(mode="json"))

        outline = CourseOutline.model_validate(inputs[(StepKind.OUTLINE, 0)])
        if step.kind is StepKind.LESSON:
            plan = outline.days[step.day_number - 1]
            passages = await self._grounding(job, params, plan.title + " " + " ".join(plan.topics))
            prompt = prompts.lesson_prompt(params, outline, plan, [text for _, text in passages])
            async with self.ctx.lesson_slots.slot():
                lesson = await ask(self.ctx.llm, log, "lesson", prompt, LessonDraft, params, 4000)
            grounded_by = sorted({str(doc_id) for doc_id, _ in passages})
            return StepOutcome({**lesson.model_dump(mode="json"), "grounded_by": grounded_by})
        if step.kind is StepKind.SCRIPT:
            plan = outline.days[step.day_number - 1]
            lesson = LessonDraft.model_validate(inputs[(StepKind.LESSON, step.day_number)])
            settings = self.ctx.settings
            words = round(
                settings.generation_script_words_per_minute
                * settings.generation_script_target_minutes
            )
            prompt = prompts.script_prompt(params, plan, lesson, words)
            async with self.ctx.lesson_slots.slot():
                script = await ask(
                    self.ctx.llm, log, "script", prompt, ScriptDraft, params, max(800, words * 3)
                )
            return StepOutcome(script.model_dump(mode="json"))
        if step.kind is StepKind.THUMBNAIL:
            return StepOutcome(await self._thumbnail(job, outline))
        if step.kind is StepKind.SAVE:
            return StepOutcome({}, apply=lambda session: self._save(session, job, params, inputs))
        return StepOutcome({}, apply=lambda session: self._notify(session, job))

    async def _grounding(
        self, job: CourseGenerationJob, params: JobParameters, about: str
    ) -> list[tuple[uuid.UUID, str]]:
        if not params.reference_document_ids:
            return []
        async with self.ctx.sessions() as session:
            return await references.relevant_passages(
                session, list(params.reference_document_ids), about
            )

    async def _thumbnail(self, job: CourseGenerationJob, outline: CourseOutline) -> dict[str, Any]:
        """A generated image if the provider makes them, else a title card; never fails."""
        key = f"thumbnails/{job.id}.png"
        kind = "generated"
        try:
            image = await self.ctx.llm.generate_image(
                f"A clean, friendly course thumbnail illustration for: {outline.title}"
            )
            if image is None:
                kind = "title_card"
                # Rendering is CPU work: keep it off the event loop the other steps share.
                image = await asyncio.to_thread(
                    render_title_card, outline.title, f"A {len(outline.days)}-day course"
                )
        except Exception as exc:
            logger.warning("thumbnail for job %s fell back to a placeholder: %s", job.id, exc)
            kind, image = "placeholder", placeholder_png()
        try:
            await self.ctx.storage.put_bytes(key, image, "image/png")
        except Exception as exc:
            logger.warning("thumbnail for job %s could not be stored: %s", job.id, exc)
            return {"kind": "none", "url": None}
        return {"kind": kind, "url": media_path(key)}

    async def _save(
        self,
        session: AsyncSession,
        job: CourseGenerationJob,
        params: JobParameters,
        inputs: dict[Any, Any],
    ) -> dict[str, Any]:
        """The course, all its lessons and one video request per lesson, in one transaction."""
        locked = await session.get(CourseGenerationJob, job.id, with_for_update=True)
        assert locked is not None
        if locked.course_id is not None:  # saved by an earlier attempt that committed
            return {"course_id": str(locked.course_id)}
        outline = CourseOutline.model_validate(inputs[(StepKind.OUTLINE, 0)])
        thumbnail = inputs.get((StepKind.THUMBNAIL, 0)) or {}
        course = await insert_course(
            session,
            NewCourse(
                title=outline.title,
                description=outline.description,
                learning_outcomes=outline.learning_outcomes,
                duration_days=params.duration_days,
                category_id=params.category_id,
                thumbnail_url=thumbnail.get("url"),
            ),
            created_by=job.requested_by,
        )
        drafts = {plan.day: inputs[(StepKind.LESSON, plan.day)] for plan in outline.days}
        lessons = await insert_lessons(
            session,
            course,
            [
                NewLesson(
                    day_number=plan.day,
                    title=plan.title,
                    content_markdown=drafts[plan.day]["markdown"],
                    action_items=drafts[plan.day]["action_items"],
                    resources=drafts[plan.day]["resources"],
                    video_status=VideoStatus.PENDING,
                )
                for plan in outline.days
            ],
        )
        videos.queue_scripts(
            session,
            {
                lesson.id: inputs[(StepKind.SCRIPT, lesson.day_number)]["script"]
                for lesson in lessons
            },
            job_id=job.id,
            provider=self.ctx.settings.video_provider,
            trace_context=job.trace_context,
        )
        grounded: dict[str, set[int]] = {}
        for day, draft in drafts.items():
            for doc_id in draft.get("grounded_by", []):
                grounded.setdefault(doc_id, set()).add(day)
        for doc_id, days in grounded.items():
            await session.execute(
                update(GenerationJobDocument)
                .where(
                    GenerationJobDocument.job_id == job.id,
                    GenerationJobDocument.document_id == uuid.UUID(doc_id),
                )
                .values(used_in_days=sorted(days))
            )
        locked.course_id = course.id
        await session.flush()
        return {"course_id": str(course.id)}

    async def _notify(self, session: AsyncSession, job: CourseGenerationJob) -> dict[str, Any]:
        locked = await session.get(CourseGenerationJob, job.id)
        assert locked is not None
        assert locked.course_id is not None
        review_url = f"{self.ctx.settings.public_url}/admin/courses/{locked.course_id}"
        admin = await session.get(User, job.requested_by) if job.requested_by else None
        message_id = await notifications.notify_admin(
            session,
            recipient=Recipient(admin.id, admin.email) if admin else None,
            subject="Your course draft is ready for review",
            body=(
                f'The course generated for "{job.parameters["topic"]}" is saved as a DRAFT.\n'
                f"Review it: {review_url}\n"
                f"Generation cost: ${locked.cost_usd:.4f} "
                f"({locked.input_tokens} input and {locked.output_tokens} output tokens)."
            ),
            payload={
                "job_id": str(job.id),
                "course_id": str(locked.course_id),
                "review_url": review_url,
            },
            dedupe_key=f"generation-job:{job.id}",
        )
        return {"message_id": str(message_id), "review_url": review_url}
