"""The application metrics the program reads exist: every metric its alarms, scaling policies
and dashboard query in ``Momentum/<env>`` is in the shared table (momentum_domain.metric_names),
queried with exactly the table's dimensions, and published that way by every collector.

The table is the contract with the code: tests/pipeline/test_metrics_export.py receives each
of its metrics over OTLP from the running service the table names. The metrics are collected
here from the recorded resources, not from the program's own constants, so a name typed into
an alarm by hand is checked too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi_harness import StackRun

from momentum_domain.metric_names import BY_NAME, METRICS

SERVICES = ("api", "generator", "video-worker")
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
POLICY = "aws:appautoscaling/policy:Policy"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


# A reference: (where, namespace, metric name, dimension names, unit or None).
Reference = tuple[str, str, str, frozenset[str], str | None]


def _alarm_references(stack: StackRun) -> Iterator[Reference]:
    for alarm in stack.of_type(ALARM):
        inputs = alarm.inputs
        if "metricName" in inputs:
            yield (
                f"alarm {alarm.name}",
                inputs["namespace"],
                inputs["metricName"],
                frozenset(inputs.get("dimensions") or {}),
                inputs.get("unit"),
            )
        for query in inputs.get("metricQueries") or []:
            if "metric" in query:
                metric = query["metric"]
                yield (
                    f"alarm {alarm.name}",
                    metric["namespace"],
                    metric["metricName"],
                    frozenset(metric.get("dimensions") or {}),
                    metric.get("unit"),
                )


def _policy_references(stack: StackRun) -> Iterator[Reference]:
    for policy in stack.of_type(POLICY):
        configuration = policy.inputs.get("targetTrackingScalingPolicyConfiguration") or {}
        customized = configuration.get("customizedMetricSpecification")
        if not customized:
            continue
        queries = customized.get("metrics") or [{"metricStat": {"metric": customized}}]
        for query in queries:
            if "metricStat" not in query:
                continue  # an expression over the others
            metric = query["metricStat"]["metric"]
            yield (
                f"scaling policy {policy.name}",
                metric["namespace"],
                metric["metricName"],
                frozenset(d["name"] for d in metric.get("dimensions") or []),
                query["metricStat"].get("unit"),
            )


def _dashboard_references(stack: StackRun) -> Iterator[Reference]:
    for dashboard in stack.of_type(DASHBOARD):
        for widget in json.loads(dashboard.inputs["dashboardBody"])["widgets"]:
            for row in widget.get("properties", {}).get("metrics", []):
                # [namespace, name, dimension, value, ..., {rendering options}?]
                fields = [f for f in row if not isinstance(f, dict)]
                assert fields[0] not in (".", "..."), "expand the dashboard's shorthand rows"
                yield (
                    f"dashboard widget {widget['properties']['title']!r}",
                    fields[0],
                    fields[1],
                    frozenset(fields[2::2]),
                    None,
                )


def app_references(stack: StackRun) -> list[Reference]:
    """What the program reads in the application's namespace (or any ``Momentum/`` one)."""
    every = [
        *_alarm_references(stack),
        *_policy_references(stack),
        *_dashboard_references(stack),
    ]
    return [r for r in every if r[1].startswith("Momentum/")]


def test_the_program_reads_application_metrics_from_alarms_policies_and_the_dashboard(
    stack: StackRun,
) -> None:
    # The walk above must see each kind of consumer, or the next tests check nothing.
    sources = {where.split(" ")[0] for where, *_ in app_references(stack)}
    assert sources == {"alarm", "scaling", "dashboard"}


def test_every_metric_the_program_reads_is_in_the_table_with_its_dimensions(
    stack: StackRun,
) -> None:
    for where, namespace, name, dimensions, unit in app_references(stack):
        assert namespace == f"Momentum/{stack.stack}", f"{where}: {namespace}"
        assert name in BY_NAME, f"{where} reads {name!r}, which nothing emits"
        spec = BY_NAME[name]
        assert dimensions == set(spec.cloudwatch_dimensions), (
            f"{where}: {name} by {sorted(dimensions)}"
        )
        assert unit in (None, spec.cloudwatch_unit), f"{where}: {name} in {unit}"


def collector_emf(stack: StackRun, service: str) -> dict[str, Any]:
    collector = stack.containers(service)["otel-collector"]
    config = json.loads(
        next(v["value"] for v in collector["environment"] if v["name"] == "AOT_CONFIG_CONTENT")
    )
    emf: dict[str, Any] = config["exporters"]["awsemf"]
    return emf


@pytest.mark.parametrize("service", SERVICES)
def test_each_collector_publishes_the_table_with_exactly_its_dimensions(
    stack: StackRun, service: str
) -> None:
    emf = collector_emf(stack, service)
    assert emf["namespace"] == f"Momentum/{stack.stack}"
    # No roll-ups: with them the exporter adds dimension sets holding "OTelLib" (the meter's
    # name), which no alarm or policy queries.
    assert emf["dimension_rollup_option"] == "NoDimensionRollup"
    assert not emf.get("resource_to_telemetry_conversion", {}).get("enabled", False)
    declarations = emf["metric_declarations"]
    units = {d["metric_name"]: d for d in emf["metric_descriptors"]}
    for spec in METRICS:
        # The exporter matches selectors with Go's regexp; these anchored literals mean the
        # same in Python's.
        matching = [
            d
            for d in declarations
            if any(re.search(selector, spec.name) for selector in d["metric_name_selectors"])
        ]
        assert len(matching) == 1, spec.name
        assert matching[0]["dimensions"] == [list(spec.cloudwatch_dimensions)], spec.name
        assert units[spec.name] == {
            "metric_name": spec.name,
            "unit": spec.cloudwatch_unit,
            "overwrite": True,
        }
    # Nothing else becomes a CloudWatch metric (metrics not declared stay in the log group).
    assert all(
        any(re.search(s, spec.name) for spec in METRICS)
        for d in declarations
        for s in d["metric_name_selectors"]
    )
