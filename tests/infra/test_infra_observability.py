"""What each task's telemetry looks like in AWS: JSON logs, every span sent to the collector
sidecar, which samples traces (keeping errors and slow ones) and tags spans and metrics with
the task's ECS resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_harness import StackRun

from momentum_domain.config import Settings

SERVICES = ("api", "generator", "video-worker")


def environment(stack: StackRun, workload: str) -> dict[str, str]:
    container = stack.containers(workload)[workload]
    return {variable["name"]: variable["value"] for variable in container["environment"]}


def collector_config(stack: StackRun, service: str) -> dict[str, Any]:
    collector = stack.containers(service)["otel-collector"]
    content = next(
        v["value"] for v in collector["environment"] if v["name"] == "AOT_CONFIG_CONTENT"
    )
    config: dict[str, Any] = json.loads(content)
    return config


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_logs_json_and_sends_every_span_to_its_collector(
    stack: StackRun, service: str
) -> None:
    env = environment(stack, service)
    # Values the services accept: a bad one would stop every task at start-up.
    settings = Settings.model_validate(
        {
            "log_format": env["MOMENTUM_LOG_FORMAT"],
            "otel_trace_sample_ratio": env["MOMENTUM_OTEL_TRACE_SAMPLE_RATIO"],
        }
    )
    assert settings.log_format == "json"
    # The collector samples: a trace dropped in the service could not be kept for its error.
    assert settings.otel_trace_sample_ratio == 1


@pytest.mark.parametrize("service", SERVICES)
def test_the_collector_detects_the_tasks_ecs_resources(stack: StackRun, service: str) -> None:
    config = collector_config(stack, service)
    assert "ecs" in config["processors"]["resourcedetection"]["detectors"]
    for pipeline in ("traces", "metrics"):
        processors = config["service"]["pipelines"][pipeline]["processors"]
        assert processors[0] == "resourcedetection", (pipeline, processors)
        assert set(processors) <= set(config["processors"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_collector_keeps_errors_slow_traces_and_a_share(stack: StackRun, service: str) -> None:
    config = collector_config(stack, service)
    processors = config["service"]["pipelines"]["traces"]["processors"]
    # Batching before the tail sampler could split a trace between its decisions.
    assert processors.index("tail_sampling") < processors.index("batch")
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    assert "tail_sampling" not in config["service"]["pipelines"]["metrics"]["processors"]
