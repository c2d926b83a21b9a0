"""The OpenAI-compatible provider against a real local HTTP server that speaks the chat
completions contract and misbehaves on demand: 429 with Retry-After, 500, slow answers."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from momentum_domain.config import Settings
from momentum_domain.kit.resilience import CircuitBreaker, retry_after_seconds
from momentum_generator.llm import (
    CircuitOpenError,
    LlmRejected,
    LlmRequest,
    LlmThrottled,
    LlmUnavailable,
    OpenAICompatibleProvider,
    ResilientProvider,
    outline_schema,
)

MODEL = "llama3.1:8b"
REQUEST = LlmRequest("lesson", "You write lessons.", "DAY: 1\nTITLE: Joins", 1500, 0.2)


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0


def completion(text: str, *, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 57, "completion_tokens": 12, "total_tokens": 69},
    }


def error(status: int, message: str, kind: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


class FakeOpenAI:
    """Answers POST /v1/chat/completions with the queued replies (then ``default``), and
    records every request it received."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(200, completion("Hello from the server"))
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
                )
                reply = fake.replies.popleft() if fake.replies else fake.default
                if self.path != "/v1/chat/completions":
                    reply = error(404, "Unknown path", "invalid_request_error")
                if reply.delay:
                    time.sleep(reply.delay)
                body = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    thread = threading.Thread(
        target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def settings(server: FakeOpenAI) -> Settings:
    return Settings(
        env="test",
        llm_provider="openai",
        llm_model_id=MODEL,
        llm_openai_base_url=server.url + "/",
        llm_openai_api_key="sk-test-key",
        llm_timeout_seconds=5.0,
    )


class Waits(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


def resilient(
    inner: OpenAICompatibleProvider,
    *,
    waits: Waits | None = None,
    breaker: CircuitBreaker | None = None,
    max_attempts: int = 3,
) -> ResilientProvider:
    return ResilientProvider(
        inner,
        breaker=breaker or CircuitBreaker("openai-test", failure_threshold=100),
        max_attempts=max_attempts,
        backoff_base=0.01,
        backoff_max=0.05,
        max_retry_after=2.0,
        sleep=waits if waits is not None else Waits(),
    )


async def test_request_and_response_follow_the_chat_completions_contract(
    server: FakeOpenAI, settings: Settings
) -> None:
    provider = OpenAICompatibleProvider(settings)
    try:
        response = await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    (received,) = server.requests
    assert received["path"] == "/v1/chat/completions"
    assert received["headers"]["Authorization"] == "Bearer sk-test-key"
    assert received["json"] == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You write lessons."},
            {"role": "user", "content": "DAY: 1\nTITLE: Joins"},
        ],
        "max_tokens": 1500,
        "temperature": 0.2,
    }
    assert response.text == "Hello from the server"
    assert (response.input_tokens, response.output_tokens) == (57, 12)
    assert (response.model, response.provider) == (MODEL, "openai")
    assert response.truncated is False


async def test_json_mode_and_no_key(server: FakeOpenAI, settings: Settings) -> None:
    server.queue(Reply(200, completion('```json\n{"script": "Hi"}\n```', finish="length")))
    provider = OpenAICompatibleProvider(settings, api_key="", model="qwen2.5")
    try:
        response = await provider.complete(
            dataclasses.replace(REQUEST, json_schema=outline_schema(7))
        )
    finally:
        await provider.aclose()

    (received,) = server.requests
    assert "Authorization" not in received["headers"]
    assert received["json"]["model"] == "qwen2.5"
    assert received["json"]["response_format"] == {"type": "json_object"}
    assert "JSON" in received["json"]["messages"][0]["content"]
    assert response.text == '{"script": "Hi"}'
    assert response.truncated is True


async def test_429_with_retry_after_is_retried_after_that_delay(
    server: FakeOpenAI, settings: Settings
) -> None:
    server.queue(
        Reply(429, error(429, "Rate limit reached", "requests").body, {"Retry-After": "1.5"})
    )
    waits = Waits()
    provider = resilient(OpenAICompatibleProvider(settings), waits=waits)
    try:
        response = await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    assert response.text == "Hello from the server"
    assert response.attempts == 2
    assert len(server.requests) == 2
    (wait,) = waits
    assert 1.5 <= wait <= 1.5 + 0.01


async def test_500s_are_retried_with_bounded_jittered_backoff(
    server: FakeOpenAI, settings: Settings
) -> None:
    server.queue(error(500, "boom", "server_error"), error(503, "overloaded", "server_error"))
    waits = Waits()
    provider = resilient(OpenAICompatibleProvider(settings), waits=waits)
    try:
        response = await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    assert response.attempts == 3
    assert len(server.requests) == 3
    assert len(waits) == 2
    assert all(0 <= w <= 0.05 for w in waits)


async def test_retries_are_bounded(server: FakeOpenAI, settings: Settings) -> None:
    server.default = error(500, "down", "server_error")
    provider = resilient(OpenAICompatibleProvider(settings), max_attempts=3)
    try:
        with pytest.raises(LlmUnavailable, match="500"):
            await provider.complete(REQUEST)
    finally:
        await provider.aclose()
    assert len(server.requests) == 3


async def test_a_slow_answer_times_out_and_is_retried(
    server: FakeOpenAI, settings: Settings
) -> None:
    server.queue(Reply(200, completion("too late"), delay=0.6))
    provider = resilient(OpenAICompatibleProvider(settings, timeout=0.2))
    try:
        response = await provider.complete(REQUEST)
    finally:
        await provider.aclose()
    assert response.text == "Hello from the server"
    assert response.attempts == 2


async def test_a_4xx_is_rejected_without_retry(server: FakeOpenAI, settings: Settings) -> None:
    server.queue(error(400, "max_tokens is too large", "invalid_request_error"))
    provider = resilient(OpenAICompatibleProvider(settings))
    try:
        with pytest.raises(LlmRejected, match="max_tokens is too large"):
            await provider.complete(REQUEST)
    finally:
        await provider.aclose()
    assert len(server.requests) == 1


async def test_malformed_answers_and_unreachable_servers_are_unavailable(
    server: FakeOpenAI, settings: Settings
) -> None:
    server.queue(Reply(200, "<html>gateway</html>"), Reply(200, {"choices": []}))
    provider = OpenAICompatibleProvider(settings)
    try:
        for _ in range(2):
            with pytest.raises(LlmUnavailable, match="Malformed"):
                await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = OpenAICompatibleProvider(settings, base_url=f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(LlmUnavailable, match="unreachable"):
            await closed.complete(REQUEST)
    finally:
        await closed.aclose()


async def test_the_breaker_opens_and_recovers(server: FakeOpenAI, settings: Settings) -> None:
    breaker = CircuitBreaker("openai-breaker-test", failure_threshold=3, reset_after=0.3)
    provider = resilient(OpenAICompatibleProvider(settings), breaker=breaker, max_attempts=2)
    server.default = error(500, "down", "server_error")
    try:
        with pytest.raises(LlmUnavailable):
            await provider.complete(REQUEST)  # two failures
        # The third failure opens the breaker: the retry is not attempted.
        with pytest.raises(CircuitOpenError):
            await provider.complete(REQUEST)
        assert len(server.requests) == 3

        # Open: calls fail at once without reaching the server.
        for _ in range(3):
            with pytest.raises(CircuitOpenError):
                await provider.complete(REQUEST)
        assert len(server.requests) == 3

        # After the reset period one trial call goes through; it fails, so it stays open.
        await asyncio.sleep(0.35)
        with pytest.raises(CircuitOpenError):
            await provider.complete(REQUEST)
        assert len(server.requests) == 4
        with pytest.raises(CircuitOpenError):
            await provider.complete(REQUEST)
        assert len(server.requests) == 4

        # The server is back: the next trial succeeds and closes the breaker.
        server.default = Reply(200, completion("Back again"))
        await asyncio.sleep(0.35)
        assert (await provider.complete(REQUEST)).text == "Back again"
        assert (await provider.complete(REQUEST)).text == "Back again"
        assert len(server.requests) == 6
        assert not breaker.is_open
    finally:
        await provider.aclose()


async def test_rejections_do_not_open_the_breaker(server: FakeOpenAI, settings: Settings) -> None:
    breaker = CircuitBreaker("openai-reject-test", failure_threshold=2, reset_after=60)
    provider = resilient(OpenAICompatibleProvider(settings), breaker=breaker)
    server.default = error(401, "Incorrect API key provided", "invalid_request_error")
    try:
        for _ in range(4):
            with pytest.raises(LlmRejected):
                await provider.complete(REQUEST)
    finally:
        await provider.aclose()
    assert len(server.requests) == 4
    assert not breaker.is_open


async def test_a_new_event_loop_gets_its_own_connections(
    server: FakeOpenAI, settings: Settings
) -> None:
    provider = OpenAICompatibleProvider(settings)

    async def one_message() -> str:
        try:
            return (await provider.complete(REQUEST)).text
        finally:
            await provider.aclose()

    assert (await provider.complete(REQUEST)).text == "Hello from the server"
    # As a worker that runs each message with asyncio.run would, while this loop lives on.
    for _ in range(2):
        assert await asyncio.to_thread(asyncio.run, one_message()) == "Hello from the server"
    assert (await provider.complete(REQUEST)).text == "Hello from the server"
    await provider.aclose()
    assert len(server.requests) == 4


def test_retry_after_forms() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(httpx.Headers({})) is None
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_seconds(httpx.Headers({"Retry-After": later}))
    assert seconds is not None
    assert 25 <= seconds <= 30


async def test_throttled_without_retry_after_uses_backoff(
    server: FakeOpenAI, settings: Settings
) -> None:
    server.queue(error(429, "slow down", "requests"))
    waits = Waits()
    provider = resilient(OpenAICompatibleProvider(settings), waits=waits)
    try:
        await provider.complete(REQUEST)
    finally:
        await provider.aclose()
    (wait,) = waits
    assert 0 <= wait <= 0.05

    server.queue(error(429, "slow down", "requests"))
    bare = OpenAICompatibleProvider(settings)
    try:
        with pytest.raises(LlmThrottled) as raised:
            await bare.complete(REQUEST)
    finally:
        await bare.aclose()
    assert raised.value.retry_after is None
