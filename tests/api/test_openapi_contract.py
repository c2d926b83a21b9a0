"""The OpenAPI document is the truth. Schemathesis reads it from ``python -m momentum_api``
serving over real HTTP, generates requests for every operation (valid ones and ones the document
forbids) and checks each answer against the document: a documented status, content type,
headers and body, and never a 5xx. Once anonymously, once as an administrator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from momentum_dev.fakes.stripe import FakeStripe
from momentum_dev.fakes.stripe_wire import API_KEY
from momentum_domain.config import Settings
from momentum_domain.users.models import Role
from tests.fixtures.app import MakeAccount
from tests.fixtures.redis_servers import free_port

EXAMPLES_PER_OPERATION = 10
# NUL is refused everywhere (the decoding layer), as the API description says; unknown query
# parameters are ignored, as HTTP APIs do; a well-formed request may still break a rule that no
# schema states (422).
CONFIG = SchemathesisConfig.from_str("""
[generation]
allow-x00 = false
allow-extra-parameters = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
""")
EXAMPLES = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    # A finding is reported as found: shrinking a request can take minutes.
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def served_api(
    settings: Settings, stripe_server: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API as the container runs it, on a port of its own; its log goes to a file (a pipe
    nobody reads would fill and stop the server)."""
    port = free_port()
    log = tmp_path_factory.mktemp("served-api") / "api.log"
    env = {
        **os.environ,
        "MOMENTUM_ENV": "test",
        "MOMENTUM_DATABASE_URL": settings.database_url,
        "MOMENTUM_REDIS_URL": settings.redis_url,
        "MOMENTUM_DATA_DIR": str(settings.data_dir),
        "MOMENTUM_RATE_LIMIT_DEFAULT": settings.rate_limit_default,
        "MOMENTUM_RATE_LIMIT_ADMIN": settings.rate_limit_admin,
        "MOMENTUM_RATE_LIMIT_SIGNIN": settings.rate_limit_signin,
        "MOMENTUM_STRIPE_API_BASE": stripe_server.base_url,
        "MOMENTUM_STRIPE_API_KEY": API_KEY,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "momentum_api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
    while True:
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the API did not start: {log.read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def admin_headers(make_account: MakeAccount, reference_rows: object) -> dict[str, str]:
    return (await make_account(Role.ADMIN)).headers


def test_every_answer_is_the_one_the_document_promises(
    served_api: str, admin_headers: dict[str, str]
) -> None:
    """Every operation, valid and invalid requests, anonymous and admin: each response has a
    documented status, content type, headers and body, and none is a 5xx."""
    schema = schemathesis.openapi.from_url(f"{served_api}/schema/openapi.json", config=CONFIG)
    session = requests.Session()
    findings: list[str] = []
    operations = cases = 0

    def explore(operation: Any, mode: GenerationMode, caller: str, headers: dict[str, str]) -> None:
        nonlocal cases
        excluded = []
        if caller == "admin":
            # The admin's token is added to every request, also to one generated without it.
            excluded.append(negative_data_rejection)
        if operation.path.startswith("/webhooks/"):
            # Only the provider can sign a body; a generated one is refused, as it must be.
            excluded.append(positive_data_acceptance)

        @given(case=operation.as_strategy(generation_mode=mode))
        @EXAMPLES
        def check(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(
                base_url=served_api,
                session=session,
                headers=headers,
                excluded_checks=excluded,
                timeout=30,
            )

        try:
            check()
        except Unsatisfiable:
            pass  # nothing to make invalid: an operation without parameters has no negative case
        except (Exception, BaseExceptionGroup) as error:  # report all, not only the first
            findings.append(f"{operation.label} ({caller}, {mode.value}):\n{error}")

    for result in schema.get_all_operations():
        operations += 1
        for caller, headers in (("anonymous", {}), ("admin", admin_headers)):
            for mode in GenerationMode:
                explore(result.ok(), mode, caller, headers)
    print(f"schemathesis: {operations} operations, {cases} cases, {len(findings)} findings")
    assert not findings, "\n\n".join(findings)


def test_the_document_is_served(served_api: str, tmp_path: Path) -> None:
    document = httpx.get(f"{served_api}/schema/openapi.json").json()
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
