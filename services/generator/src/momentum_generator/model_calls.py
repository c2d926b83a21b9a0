"""One model call of a generation step: the job's budget checked first, the call's cost
recorded, and the JSON answer validated, with one repair attempt when it does not match."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from momentum_domain.config import Settings
from momentum_domain.generation.costs import CallRecord
from momentum_domain.generation.pricing import cost_usd
from momentum_domain.generation.schemas import JobParameters
from momentum_generator import prompts
from momentum_generator.llm import LlmProvider, LlmRequest

Model = TypeVar("Model", bound=BaseModel)


class StepFailed(Exception):
    """The step cannot succeed; the message says why, for the admin."""


class BudgetExceeded(StepFailed):
    pass


@dataclass
class CallLog:
    """The model calls of one step, with the job's budget checked before each."""

    settings: Settings
    spent_before: Decimal
    budget: Decimal | None
    calls: list[CallRecord] = field(default_factory=list)

    def spent(self) -> Decimal:
        return self.spent_before + sum((c.cost_usd for c in self.calls), Decimal("0"))

    def check_budget(self) -> None:
        if self.budget is not None and self.spent() >= self.budget:
            raise BudgetExceeded(
                f"the job's budget of ${self.budget} is spent (${self.spent():.4f})"
            )


async def ask(
    llm: LlmProvider,
    log: CallLog,
    purpose: str,
    prompt: str,
    model: type[Model],
    params: JobParameters,
    max_tokens: int,
    check: Callable[[Model], None] | None = None,
) -> Model:
    """One model call whose JSON answer must validate; one repair attempt if it does not."""
    request_prompt = prompt
    for attempt in (1, 2):
        log.check_budget()
        request = LlmRequest(
            purpose=purpose,
            system=prompts.SYSTEM,
            prompt=request_prompt,
            max_tokens=max_tokens,
            json_schema=prompts.schema_of(model),
            model=params.model,
        )
        started = time.monotonic()
        response = await llm.complete(request)
        cost = cost_usd(
            response.model,
            response.input_tokens,
            response.output_tokens,
            log.settings.llm_prices,
        )
        log.calls.append(
            CallRecord(
                provider=response.provider,
                model=response.model,
                purpose=purpose if attempt == 1 else f"{purpose}-repair",
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cost_usd=cost,
                latency_ms=round((time.monotonic() - started) * 1000),
            )
        )
        trace.get_current_span().add_event(
            "llm.call", {"llm.model": response.model, "llm.cost_usd": float(cost)}
        )
        try:
            parsed = model.model_validate(parse_json_object(response.text))
            if check is not None:
                check(parsed)
            return parsed
        except (ValueError, ValidationError) as exc:
            error = str(exc)
            if attempt == 2:
                raise StepFailed(
                    f"the model's {purpose} did not match the expected structure after a "
                    f"repair attempt: {error[:500]}"
                ) from exc
            request_prompt = prompts.repair_prompt(prompt, response.text, error)
    raise AssertionError("unreachable")


def parse_json_object(text: str) -> Any:
    """The JSON object in a model's answer, tolerating a fenced block or prose around it."""
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    candidate = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    if not candidate:
        raise ValueError("the answer contains no JSON object")
    return json.loads(candidate)
