"""Amazon Bedrock: text through the Converse API, images through Titan Image Generator v2.

boto3 is synchronous, so calls run in a worker thread. The client makes exactly one attempt
per call (``total_max_attempts=1``): retries, backoff and the breaker live in
:class:`~momentum_generator.llm.resilient.ResilientProvider`.

Structured output is asked for in the system prompt (with the schema) rather than through
forced tool use, which only some Bedrock models accept; the generation service validates the
JSON and sends one repair request when it does not follow the schema.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from momentum_domain.config import Settings
from momentum_generator.llm.base import (
    LlmError,
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    LlmThrottled,
    LlmUnavailable,
    json_instruction,
    strip_code_fences,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseRequestTypeDef,
        ConverseResponseTypeDef,
    )

T = TypeVar("T")

THROTTLED_CODES = frozenset({"ThrottlingException", "ServiceQuotaExceededException"})
UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelErrorException",
    }
)
REJECTED_CODES = frozenset(
    {"ValidationException", "AccessDeniedException", "ResourceNotFoundException"}
)
# Stop reasons meaning the model refused to answer: asking again gives the same refusal.
REFUSED_STOP_REASONS = frozenset({"content_filtered", "guardrail_intervened"})

# Titan Image Generator v2: a 16:9-ish size it supports, and its prompt limit.
IMAGE_WIDTH = 1280
IMAGE_HEIGHT = 768
IMAGE_PROMPT_MAX_CHARS = 512


def create_bedrock_client(settings: Settings) -> BedrockRuntimeClient:
    return boto3.client(
        "bedrock-runtime",
        region_name=settings.aws_region,
        config=Config(
            read_timeout=settings.llm_timeout_seconds,
            connect_timeout=5,
            # One attempt: botocore's own "max_attempts" counts retries, not attempts.
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


class BedrockProvider(LlmProvider):
    name = "bedrock"

    def __init__(self, settings: Settings, *, client: BedrockRuntimeClient | None = None) -> None:
        self.model = settings.llm_model_id
        self.image_model = settings.image_model_id
        self._client = client or create_bedrock_client(settings)

    async def complete(self, request: LlmRequest) -> LlmResponse:
        model = request.model or self.model
        system = request.system
        if request.json_schema is not None:
            system = f"{system}\n\n{json_instruction(request.json_schema, request.prompt)}".strip()
        params: ConverseRequestTypeDef = {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"text": request.prompt}]}],
            "inferenceConfig": {
                "maxTokens": request.max_tokens,
                "temperature": request.temperature,
            },
        }
        if system:
            params["system"] = [{"text": system}]
        started = time.perf_counter()
        response = await self._run(lambda: self._client.converse(**params))
        latency_ms = (time.perf_counter() - started) * 1000
        return _parse_converse(
            response, model, json_wanted=request.json_schema is not None, latency_ms=latency_ms
        )

    async def generate_image(self, prompt: str) -> bytes | None:
        """A PNG from Titan Image Generator v2 (TEXT_IMAGE, one image, 1280x768)."""
        text = " ".join(prompt.split())[:IMAGE_PROMPT_MAX_CHARS]
        body = {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": text},
            "imageGenerationConfig": {
                "numberOfImages": 1,
                "width": IMAGE_WIDTH,
                "height": IMAGE_HEIGHT,
                "quality": "standard",
                "cfgScale": 8.0,
                # The same prompt gives the same picture.
                "seed": int.from_bytes(hashlib.sha256(text.encode()).digest()[:4]) % 2147483647,
            },
        }

        def invoke() -> bytes:
            response = self._client.invoke_model(
                modelId=self.image_model,
                body=json.dumps(body).encode(),
                contentType="application/json",
                accept="application/json",
            )
            return response["body"].read()  # in the worker thread too: it reads the socket

        raw = await self._run(invoke)
        try:
            payload = json.loads(raw)
            if payload.get("error"):
                raise LlmRejected(f"The image model refused the prompt: {payload['error']}")
            return base64.b64decode(payload["images"][0], validate=True)
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
            raise LlmUnavailable(f"Malformed answer from {self.image_model}: {exc}") from exc

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except ClientError as exc:
            raise map_client_error(exc) from exc
        except (HTTPClientError, BotoConnectionError) as exc:  # timeouts, connection failures
            raise LlmUnavailable(f"Bedrock is unreachable: {exc}") from exc
        except BotoCoreError as exc:  # credentials, region, parameter validation
            raise LlmRejected(f"Bedrock request could not be made: {exc}") from exc


def map_client_error(exc: ClientError) -> LlmError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "") or str(exc)
    metadata = exc.response.get("ResponseMetadata", {})
    status = metadata.get("HTTPStatusCode", 0)
    detail = f"Bedrock {code or status}: {message}"
    if code in THROTTLED_CODES or (code not in UNAVAILABLE_CODES and status == 429):
        headers = metadata.get("HTTPHeaders", {})
        return LlmThrottled(detail, retry_after=_seconds(headers.get("retry-after")))
    if code in UNAVAILABLE_CODES or status >= 500:
        return LlmUnavailable(detail)
    return LlmRejected(detail, extra={"code": code})


def _parse_converse(
    response: ConverseResponseTypeDef, model: str, *, json_wanted: bool, latency_ms: float = 0.0
) -> LlmResponse:
    stop_reason = response.get("stopReason", "")
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in blocks)
    if stop_reason in REFUSED_STOP_REASONS:
        raise LlmRejected(f"Bedrock refused to answer ({stop_reason}).")
    if not text.strip():
        raise LlmUnavailable(f"Bedrock returned no text (stop reason {stop_reason!r}).")
    usage = response.get("usage", cast("Any", {}))
    return LlmResponse(
        text=strip_code_fences(text) if json_wanted else text,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        model=model,
        provider=BedrockProvider.name,
        latency_ms=latency_ms,
        truncated=stop_reason == "max_tokens",
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


__all__ = ["BedrockProvider", "create_bedrock_client", "map_client_error"]
