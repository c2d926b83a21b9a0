"""infra/scripts/wait_for_rollout.py, which the deploy runs after rolling the services: it passes
only once every service's PRIMARY deployment is COMPLETED on the image just deployed.

ECS is emulated by moto's server mode (real API calls over HTTP); the states moto cannot reach
(a rollout IN_PROGRESS that then completes, a FAILED one) come from botocore's Stubber, which
checks each response against ECS's own API model.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "wait_for_rollout.py"
SERVICES = ("api", "generator", "video-worker")
REPOSITORY = "111111111111.dkr.ecr.us-east-1.amazonaws.com/momentum-staging"
CLUSTER = "momentum-staging"
NEW, OLD = "9c4e2b7", "3f2c1a9"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wait_for_rollout", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rollout = _load_script()


@pytest.fixture(scope="module")
def ecs_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def ecs(ecs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ecs", endpoint_url=ecs_endpoint, region_name="us-east-1")
    client.create_cluster(clusterName=CLUSTER)
    yield client
    for service in client.list_services(cluster=CLUSTER)["serviceArns"]:
        client.delete_service(cluster=CLUSTER, service=service, force=True)
    client.delete_cluster(cluster=CLUSTER)


def _register(ecs: Any, service: str, tag: str) -> str:
    """A task definition like the stack's: the app container named after the service, and
    the collector sidecar."""
    definition = ecs.register_task_definition(
        family=f"{CLUSTER}-{service}",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": service, "image": f"{REPOSITORY}-{service}:{tag}", "essential": True},
            {"name": "otel-collector", "image": "aws-otel-collector:v0.43.3", "essential": False},
        ],
    )
    return str(definition["taskDefinition"]["taskDefinitionArn"])


def _deploy(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, tags: dict[str, str], *, running: int = 1
) -> None:
    # moto reports a deployment COMPLETED once its running count (this variable) reaches the
    # desired count, IN_PROGRESS before.
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))
    for service in SERVICES:
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=service,
            taskDefinition=_register(ecs, service, tags.get(service, NEW)),
            desiredCount=1,
        )


def _run(ecs: Any, *extra: str) -> int:
    argv = ["--cluster", CLUSTER, "--image-tag", NEW, "--poll", "0", *extra, *SERVICES]
    return int(rollout.main(argv, ecs=ecs))


def test_passes_when_every_service_completed_on_the_new_image(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy(ecs, monkeypatch, {})

    assert _run(ecs) == 0
    out = capsys.readouterr().out
    assert f"every service runs {NEW}" in out
    assert f"video-worker: COMPLETED on {CLUSTER}-video-worker:" in out


def test_fails_when_ecs_rolled_a_service_back(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The circuit breaker put the generator back on the previous task definition: the service
    # is steady (so `pulumi up` succeeded), on the old image.
    _deploy(ecs, monkeypatch, {"generator": OLD})

    assert _run(ecs) == 1
    out = capsys.readouterr().out
    assert "::error::generator: ECS rolled back: the PRIMARY deployment runs " in out
    assert f"momentum-staging-generator:{OLD}" in out


def test_times_out_while_a_rollout_is_still_in_progress(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy(ecs, monkeypatch, {}, running=0)

    assert _run(ecs, "--timeout", "0") == 2
    out = capsys.readouterr().out
    assert "api: IN_PROGRESS" in out
    assert "timed out after 0 s waiting for: api, generator, video-worker" in out


# Responses in ECS's wire shape, checked by the Stubber against the service model.
TASK_DEFINITION = f"arn:aws:ecs:us-east-1:111111111111:task-definition/{CLUSTER}-api:7"
PREVIOUS = f"arn:aws:ecs:us-east-1:111111111111:task-definition/{CLUSTER}-api:6"


def _deployment(status: str, state: str, task_definition: str, running: int) -> dict[str, Any]:
    return {
        "id": f"ecs-svc/{abs(hash((status, task_definition))) % 10**18}",
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": 2,
        "pendingCount": 2 - running,
        "runningCount": running,
        "failedTasks": 3 if state == "FAILED" else 0,
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "updatedAt": datetime(2026, 1, 1, tzinfo=UTC),
        "launchType": "FARGATE",
        "rolloutState": state,
        "rolloutStateReason": (
            "ECS deployment circuit breaker: tasks failed to start."
            if state == "FAILED"
            else f"ECS deployment {state.lower()}."
        ),
    }


def _services(*deployments: dict[str, Any]) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceName": "api",
                "clusterArn": f"arn:aws:ecs:us-east-1:111111111111:cluster/{CLUSTER}",
                "status": "ACTIVE",
                "taskDefinition": deployments[0]["taskDefinition"],
                "deployments": list(deployments),
                "events": [
                    {
                        "id": "e1",
                        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
                        "message": "(service api) has started 2 tasks.",
                    }
                ],
            }
        ],
        "failures": [],
    }


def _task_definition(arn: str, tag: str) -> dict[str, Any]:
    return {
        "taskDefinition": {
            "taskDefinitionArn": arn,
            "containerDefinitions": [{"name": "api", "image": f"{REPOSITORY}-api:{tag}"}],
        }
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_waits_while_old_tasks_drain_then_passes(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    describe = {"cluster": CLUSTER, "services": ["api"]}
    stubber.add_response(
        "describe_services",
        _services(
            _deployment("PRIMARY", "IN_PROGRESS", TASK_DEFINITION, 1),
            _deployment("ACTIVE", "COMPLETED", PREVIOUS, 2),
        ),
        describe,
    )
    stubber.add_response(
        "describe_task_definition",
        _task_definition(TASK_DEFINITION, NEW),
        {"taskDefinition": TASK_DEFINITION},
    )
    stubber.add_response(
        "describe_services",
        _services(_deployment("PRIMARY", "COMPLETED", TASK_DEFINITION, 2)),
        describe,
    )
    lines: list[str] = []
    sleeps: list[float] = []

    done = rollout.wait(
        rollout.Rollout(client, CLUSTER, NEW),
        ["api"],
        timeout=600,
        poll=15,
        report=lines.append,
        sleep=sleeps.append,
    )

    assert done
    assert sleeps == [15]
    assert lines == [
        f"api: IN_PROGRESS on {CLUSTER}-api:7: 1/2 running, 1 older deployment(s) draining",
        f"api: COMPLETED on {CLUSTER}-api:7: 2/2 running",
    ]


def test_fails_when_the_rollout_failed(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "describe_services",
        _services(
            _deployment("PRIMARY", "FAILED", TASK_DEFINITION, 0),
            _deployment("ACTIVE", "COMPLETED", PREVIOUS, 2),
        ),
    )
    stubber.add_response("describe_task_definition", _task_definition(TASK_DEFINITION, NEW))

    with pytest.raises(rollout.RolloutFailed) as failure:
        rollout.Rollout(client, CLUSTER, NEW).check(["api"])

    assert str(failure.value) == (
        "api: rollout FAILED: ECS deployment circuit breaker: tasks failed to start. "
        "(last event: (service api) has started 2 tasks.)"
    )
