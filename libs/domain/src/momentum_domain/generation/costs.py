"""What a step's model calls cost: one row per call, summed on the step and its job, and
counted (cost, tokens) once the transaction that records them commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain import metric_names
from momentum_domain.generation.models import CourseGenerationJob, GenerationStep, LlmCall
from momentum_domain.kit.telemetry import add_after_commit, create_counter

_meter = metrics.get_meter("momentum.generation")
_cost = create_counter(_meter, metric_names.GENERATION_COST)
_tokens = create_counter(_meter, metric_names.GENERATION_TOKENS)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One model invocation, as the pipeline reports it."""

    provider: str
    model: str
    purpose: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int
    succeeded: bool = True


def record_calls(session: AsyncSession, step: GenerationStep, calls: Sequence[CallRecord]) -> None:
    """Store ``calls`` made for ``step`` and add them to the step's totals (before its job is
    locked: see ``add_to_job``)."""
    session.add_all(
        LlmCall(
            job_id=step.job_id,
            step_id=step.id,
            provider=call.provider,
            model=call.model,
            purpose=call.purpose,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cost_usd=call.cost_usd,
            latency_ms=call.latency_ms,
            succeeded=call.succeeded,
        )
        for call in calls
    )
    _add(step, calls)
    if calls:
        add_after_commit(session, _cost, float(sum((c.cost_usd for c in calls), Decimal("0"))))
        for direction, tokens in (
            ("input", sum(c.input_tokens for c in calls)),
            ("output", sum(c.output_tokens for c in calls)),
        ):
            add_after_commit(session, _tokens, tokens, {"direction": direction})


def add_to_job(job: CourseGenerationJob, calls: Sequence[CallRecord]) -> None:
    """Add ``calls`` to the job's totals, under its row lock."""
    _add(job, calls)


def _add(totals: GenerationStep | CourseGenerationJob, calls: Sequence[CallRecord]) -> None:
    totals.input_tokens += sum(c.input_tokens for c in calls)
    totals.output_tokens += sum(c.output_tokens for c in calls)
    totals.cost_usd += sum((c.cost_usd for c in calls), Decimal("0"))
