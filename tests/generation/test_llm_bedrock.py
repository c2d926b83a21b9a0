"""The Bedrock provider against botocore's Stubber, which checks every request against the
real bedrock-runtime service model, and against a local endpoint that never answers."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

from momentum_domain.config import Settings
from momentum_domain.kit.resilience import CircuitBreaker
from momentum_generator.llm import (
    BedrockProvider,
    LlmRejected,
    LlmRequest,
    LlmThrottled,
    LlmUnavailable,
    ResilientProvider,
    outline_schema,
)
from momentum_generator.llm.bedrock import create_bedrock_client

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
IMAGE_MODEL = "amazon.titan-image-generator-v2:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def settings() -> Settings:
    return Settings(
        env="test",
        llm_provider="bedrock",
        llm_model_id=MODEL,
        image_model_id=IMAGE_MODEL,
        aws_region="eu-west-1",
        llm_timeout_seconds=42.0,
    )


@pytest.fixture
def client() -> BedrockRuntimeClient:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: BedrockRuntimeClient) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def captured_params(client: BedrockRuntimeClient, operation: str) -> list[dict[str, Any]]:
    """The parameters of every call of ``operation``, as the client received them."""
    calls: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append(dict(params))

    client.meta.events.register(f"provide-client-params.bedrock-runtime.{operation}", capture)
    return calls


def converse_response(text: str, *, stop: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 120, "outputTokens": 45, "totalTokens": 165},
        "metrics": {"latencyMs": 800},
    }


def resilient(provider: BedrockProvider, **kwargs: Any) -> ResilientProvider:
    return ResilientProvider(
        provider,
        breaker=CircuitBreaker("bedrock-test", failure_threshold=10),
        backoff_base=0.001,
        backoff_max=0.01,
        **kwargs,
    )


REQUEST = LlmRequest(
    purpose="lesson",
    system="You write lessons.",
    prompt="DAY: 1\nTITLE: Joins",
    max_tokens=2000,
    temperature=0.3,
)
EXPECTED_CONVERSE = {
    "modelId": MODEL,
    "system": [{"text": "You write lessons."}],
    "messages": [{"role": "user", "content": [{"text": "DAY: 1\nTITLE: Joins"}]}],
    "inferenceConfig": {"maxTokens": 2000, "temperature": 0.3},
}


async def test_converse_request_and_response(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    stubber.add_response("converse", converse_response("Hello"), EXPECTED_CONVERSE)

    response = await BedrockProvider(settings, client=client).complete(REQUEST)

    assert response.text == "Hello"
    assert (response.input_tokens, response.output_tokens) == (120, 45)
    assert (response.model, response.provider) == (MODEL, "bedrock")
    assert response.truncated is False


async def test_model_override_and_truncation(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    stubber.add_response(
        "converse",
        converse_response("Cut sho", stop="max_tokens"),
        {**EXPECTED_CONVERSE, "modelId": haiku},
    )
    response = await BedrockProvider(settings, client=client).complete(
        dataclasses.replace(REQUEST, model=haiku)
    )
    assert response.model == haiku
    assert response.truncated is True


async def test_json_answers_are_asked_for_in_the_system_prompt(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    calls = captured_params(client, "Converse")
    answer = {"title": "SQL", "description": "d", "learning_outcomes": ["x"], "days": []}
    stubber.add_response(
        "converse",
        converse_response("```json\n" + json.dumps(answer) + "\n```"),
        {**EXPECTED_CONVERSE, "system": ANY},
    )
    schema = outline_schema(7)

    response = await BedrockProvider(settings, client=client).complete(
        dataclasses.replace(REQUEST, json_schema=schema)
    )

    system = calls[0]["system"][0]["text"]
    assert system.startswith("You write lessons.\n\n")
    assert "JSON" in system
    assert json.dumps(schema, separators=(",", ":")) in system
    # The fence the model added anyway is gone.
    assert json.loads(response.text) == answer


async def test_throttling_is_retried_with_backoff(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="ThrottlingException",
        service_message="Too many tokens, please wait before trying again.",
        http_status_code=429,
        expected_params=EXPECTED_CONVERSE,
    )
    stubber.add_client_error(
        "converse",
        service_error_code="ServiceUnavailableException",
        http_status_code=503,
        expected_params=EXPECTED_CONVERSE,
    )
    stubber.add_response("converse", converse_response("Finally"), EXPECTED_CONVERSE)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    provider = resilient(BedrockProvider(settings, client=client), sleep=record)
    response = await provider.complete(REQUEST)

    assert response.text == "Finally"
    assert response.attempts == 3
    assert len(waits) == 2
    assert all(0 <= w <= 0.01 for w in waits)


async def test_validation_error_is_rejected_without_retry(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    calls = captured_params(client, "Converse")
    stubber.add_client_error(
        "converse",
        service_error_code="ValidationException",
        service_message="The provided model identifier is invalid.",
        http_status_code=400,
        expected_params=EXPECTED_CONVERSE,
    )

    with pytest.raises(LlmRejected, match="model identifier is invalid"):
        await resilient(BedrockProvider(settings, client=client)).complete(REQUEST)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 429, LlmThrottled),
        ("ServiceUnavailableException", 503, LlmUnavailable),
        ("InternalServerException", 500, LlmUnavailable),
        ("ModelTimeoutException", 408, LlmUnavailable),
        ("ModelNotReadyException", 429, LlmUnavailable),
        ("ValidationException", 400, LlmRejected),
        ("AccessDeniedException", 403, LlmRejected),
        ("ResourceNotFoundException", 404, LlmRejected),
    ],
)
async def test_service_errors_are_mapped(
    settings: Settings,
    client: BedrockRuntimeClient,
    stubber: Stubber,
    code: str,
    status: int,
    error: type[Exception],
) -> None:
    stubber.add_client_error(
        "converse", service_error_code=code, http_status_code=status, expected_params=None
    )
    with pytest.raises(error) as raised:
        await BedrockProvider(settings, client=client).complete(REQUEST)
    assert type(raised.value) is error


async def test_refusals_and_empty_answers(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    provider = BedrockProvider(settings, client=client)
    stubber.add_response("converse", converse_response("", stop="content_filtered"))
    with pytest.raises(LlmRejected, match="content_filtered"):
        await provider.complete(REQUEST)
    stubber.add_response("converse", converse_response(" "))
    with pytest.raises(LlmUnavailable, match="no text"):
        await provider.complete(REQUEST)


async def test_image_generation_request_and_response(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    calls = captured_params(client, "InvokeModel")
    payload = json.dumps({"images": [base64.b64encode(PNG).decode()], "error": None}).encode()
    stubber.add_response(
        "invoke_model",
        {
            "body": StreamingBody(io.BytesIO(payload), len(payload)),
            "contentType": "application/json",
        },
        {
            "modelId": IMAGE_MODEL,
            "body": ANY,
            "contentType": "application/json",
            "accept": "application/json",
        },
    )

    image = await BedrockProvider(settings, client=client).generate_image(
        "A friendly   course thumbnail about SQL " + "x" * 1000
    )

    assert image == PNG
    body = json.loads(calls[0]["body"])
    assert body["taskType"] == "TEXT_IMAGE"
    assert body["textToImageParams"]["text"].startswith("A friendly course thumbnail about SQL")
    assert len(body["textToImageParams"]["text"]) == 512
    config = body["imageGenerationConfig"]
    assert (config["numberOfImages"], config["width"], config["height"]) == (1, 1280, 768)
    assert 0 <= config["seed"] <= 2147483646


async def test_image_refused_by_the_content_filter(
    settings: Settings, client: BedrockRuntimeClient, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "invoke_model",
        service_error_code="ValidationException",
        service_message="This request has been blocked by our content filters.",
        http_status_code=400,
    )
    with pytest.raises(LlmRejected, match="content filters"):
        await BedrockProvider(settings, client=client).generate_image("something")


def test_client_makes_one_attempt_with_the_configured_timeouts(settings: Settings) -> None:
    client = create_bedrock_client(settings)
    config: Any = client.meta.config  # botocore sets its attributes dynamically
    assert client.meta.region_name == "eu-west-1"
    assert config.read_timeout == 42.0
    assert config.connect_timeout == 5
    assert config.retries is not None
    assert config.retries["total_max_attempts"] == 1


class _Silent(http.server.BaseHTTPRequestHandler):
    """An endpoint that accepts the request and answers too late."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(1.0)
        self.send_response(500)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


async def test_a_read_timeout_is_unavailable(settings: Settings) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=0.2, retries={"total_max_attempts": 1}),
        )
        with pytest.raises(LlmUnavailable, match="unreachable"):
            await BedrockProvider(settings, client=client).complete(REQUEST)
    finally:
        server.shutdown()
        server.server_close()
