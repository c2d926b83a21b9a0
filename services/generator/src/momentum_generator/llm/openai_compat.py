"""Any OpenAI-compatible chat completions endpoint: OpenAI itself, Ollama, vLLM, LiteLLM...

``POST {base_url}/chat/completions`` with a bearer key (omitted when no key is configured, as
for a local Ollama). One attempt per call; retries live in the resilient layer.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import httpx

from momentum_domain.config import Settings
from momentum_domain.kit.resilience import retry_after_seconds
from momentum_generator.llm.base import (
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    LlmThrottled,
    LlmUnavailable,
    estimate_tokens,
    json_instruction,
    strip_code_fences,
)

CONNECT_TIMEOUT_SECONDS = 5.0


class OpenAICompatibleProvider(LlmProvider):
    name = "openai"

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Everything defaults to the ``llm_openai_*``, ``llm_model_id`` and
        ``llm_timeout_seconds`` settings."""
        self.base_url = (base_url or settings.llm_openai_base_url).rstrip("/")
        self.model = model or settings.llm_model_id
        self._api_key = settings.llm_openai_api_key if api_key is None else api_key
        total = settings.llm_timeout_seconds if timeout is None else timeout
        self._timeout = httpx.Timeout(total, connect=min(CONNECT_TIMEOUT_SECONDS, total))
        self._transport = transport
        # One connection pool per event loop: a worker that runs each message in a fresh loop
        # must not reuse connections bound to a closed one.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=self._timeout,
                transport=self._transport,
            )
            self._clients[loop] = client
        return client

    async def complete(self, request: LlmRequest) -> LlmResponse:
        model = request.model or self.model
        system = request.system
        if request.json_schema is not None:
            system = f"{system}\n\n{json_instruction(request.json_schema, request.prompt)}".strip()
        messages = [{"role": "user", "content": request.prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_object"}
        started = time.perf_counter()
        try:
            response = await self._http().post("/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            raise LlmUnavailable(f"{self.base_url} timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise LlmUnavailable(f"{self.base_url} is unreachable: {exc!r}") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        _raise_for_status(response)
        return _parse(
            response,
            model,
            json_wanted=request.json_schema is not None,
            latency_ms=latency_ms,
            input_estimate=estimate_tokens(system + request.prompt),
        )

    async def aclose(self) -> None:
        """Close the running loop's connections (call it before that loop ends)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = f"{response.request.url} answered {status}: {_error_message(response)}"
    if status == 429:
        raise LlmThrottled(detail, retry_after=retry_after_seconds(response.headers))
    if status == 408 or status >= 500:
        raise LlmUnavailable(detail)
    raise LlmRejected(detail, extra={"status": status})


def _parse(
    response: httpx.Response,
    model: str,
    *,
    json_wanted: bool,
    latency_ms: float,
    input_estimate: int,
) -> LlmResponse:
    try:
        payload = response.json()
        choice = payload["choices"][0]
        content = choice["message"]["content"]
        if not isinstance(content, str) or not content.strip():
            raise ValueError("the answer has no content")
        usage = payload.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens", input_estimate))
        output_tokens = int(usage.get("completion_tokens", estimate_tokens(content)))
        answered_by = str(payload.get("model") or model)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmUnavailable(f"Malformed answer from {response.request.url}: {exc}") from exc
    return LlmResponse(
        text=strip_code_fences(content) if json_wanted else content,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=answered_by,
        provider=OpenAICompatibleProvider.name,
        latency_ms=latency_ms,
        truncated=choice.get("finish_reason") == "length",
    )


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]


__all__ = ["OpenAICompatibleProvider"]
