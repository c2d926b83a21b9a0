"""LLM providers for course generation: Bedrock (Converse), any OpenAI-compatible endpoint and
an offline composer, behind one interface, with retries, a circuit breaker, a shared token
budget and cost tracking. The prompt-line convention is documented in :mod:`.base`."""

from momentum_generator.llm.base import (
    LESSON_SCHEMA,
    SCRIPT_SCHEMA,
    CircuitOpenError,
    LlmError,
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    LlmThrottled,
    LlmUnavailable,
    estimate_tokens,
    outline_schema,
    prompt_lines,
)
from momentum_generator.llm.bedrock import BedrockProvider
from momentum_generator.llm.budget import Reservation, TokenBudget
from momentum_generator.llm.factory import create_llm_provider
from momentum_generator.llm.offline import OFFLINE_MODEL, OfflineProvider
from momentum_generator.llm.openai_compat import OpenAICompatibleProvider
from momentum_generator.llm.resilient import ResilientProvider

__all__ = [
    "LESSON_SCHEMA",
    "OFFLINE_MODEL",
    "SCRIPT_SCHEMA",
    "BedrockProvider",
    "CircuitOpenError",
    "LlmError",
    "LlmProvider",
    "LlmRejected",
    "LlmRequest",
    "LlmResponse",
    "LlmThrottled",
    "LlmUnavailable",
    "OfflineProvider",
    "OpenAICompatibleProvider",
    "Reservation",
    "ResilientProvider",
    "TokenBudget",
    "create_llm_provider",
    "estimate_tokens",
    "outline_schema",
    "prompt_lines",
]
