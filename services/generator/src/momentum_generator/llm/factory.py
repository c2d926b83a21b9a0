"""The configured LLM provider, ready for the pipeline: wrapped in the resilient layer."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from redis.asyncio import Redis

from momentum_domain import metric_names
from momentum_domain.config import Settings
from momentum_domain.kit.resilience import CircuitBreaker
from momentum_generator.llm.base import LlmProvider
from momentum_generator.llm.bedrock import BedrockProvider
from momentum_generator.llm.budget import TokenBudget
from momentum_generator.llm.offline import OfflineProvider
from momentum_generator.llm.openai_compat import OpenAICompatibleProvider
from momentum_generator.llm.resilient import ResilientProvider

BREAKER_FAILURE_THRESHOLD = 5
BREAKER_RESET_SECONDS = 30.0

# One breaker per provider and process, shared by every provider object the process creates.
_breakers: dict[str, CircuitBreaker] = {}


def _breaker_states(_: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(1 if breaker.opened else 0, {"provider": name})
        for name, breaker in list(_breakers.items())
    ]


_BREAKER_OPEN = metric_names.GENERATION_PROVIDER_BREAKER_OPEN
metrics.get_meter("momentum.generation.llm").create_observable_gauge(
    _BREAKER_OPEN.name,
    callbacks=[_breaker_states],
    unit=_BREAKER_OPEN.unit,
    description=_BREAKER_OPEN.description,
)


def provider_breaker(name: str) -> CircuitBreaker:
    if name not in _breakers:
        _breakers[name] = CircuitBreaker(
            f"llm:{name}",
            failure_threshold=BREAKER_FAILURE_THRESHOLD,
            reset_after=BREAKER_RESET_SECONDS,
        )
    return _breakers[name]


def create_llm_provider(settings: Settings, redis: Redis | None = None) -> ResilientProvider:
    """The provider named by ``MOMENTUM_LLM_PROVIDER``.

    Bedrock and OpenAI-compatible providers get the shared tokens-per-minute budget (needs
    ``redis``). The offline provider is wrapped too, for the same spans, errors and breaker,
    but without a budget: it has no quota, and a budget would only slow it down.
    """
    inner: LlmProvider
    if settings.llm_provider == "offline":
        inner = OfflineProvider(latency=settings.llm_offline_latency)
    elif settings.llm_provider == "bedrock":
        inner = BedrockProvider(settings)
    else:
        inner = OpenAICompatibleProvider(settings)
    budget: TokenBudget | None = None
    if settings.llm_provider != "offline":
        if redis is None:
            raise ValueError(f"the {settings.llm_provider} provider needs Redis for its budget")
        budget = TokenBudget(
            redis,
            key_prefix=f"momentum:llm:{settings.llm_provider}",
            tokens_per_minute=settings.llm_tokens_per_minute,
        )
    return ResilientProvider(
        inner,
        breaker=provider_breaker(inner.name),
        budget=budget,
        max_attempts=settings.llm_max_attempts,
        prices=settings.llm_prices,
    )


__all__ = ["create_llm_provider", "provider_breaker"]
