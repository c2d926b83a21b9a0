"""Alarms, budget, dashboard and cost tags, for every stack."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import StackRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The alarms the issue names, with the threshold it sets (None where it leaves it to us).
NAMED_ALARMS = {
    "alb-5xx-rate": ("GreaterThanThreshold", 1),
    "api-p95-latency": ("GreaterThanThreshold", 2),
    "api-unhealthy-targets": ("GreaterThanThreshold", 0),
    "aurora-cpu": ("GreaterThanThreshold", None),
    "generation-failure-rate": ("GreaterThanThreshold", 5),
    "oldest-pending-video": ("GreaterThanThreshold", None),
}
COST_TAG_KEYS = {"Project", "Environment", "CostCenter", "ManagedBy"}


def alarms(stack: StackRun) -> dict[str, dict]:
    prefix = f"momentum-{stack.stack}-"
    return {r.inputs["name"].removeprefix(prefix): r.inputs for r in stack.of_type(ALARM)}


def alert_topic(stack: StackRun) -> str:
    return stack.arn_of("aws:sns/topic:Topic", "alerts")


@pytest.mark.parametrize(("alarm", "expected"), NAMED_ALARMS.items())
def test_named_alarm_exists_with_its_threshold_and_notifies_the_alert_topic(
    stack: StackRun, alarm: str, expected: tuple[str, float | None]
) -> None:
    found = alarms(stack)[alarm]
    operator, threshold = expected
    assert found["comparisonOperator"] == operator
    if threshold is not None:
        assert found["threshold"] == threshold
    assert found["alarmActions"] == [alert_topic(stack)]
    assert found["okActions"] == [alert_topic(stack)]


def test_aurora_free_storage_alarm_per_instance(stack: StackRun) -> None:
    storage = {k: v for k, v in alarms(stack).items() if k.startswith("aurora-free-local-storage")}
    instances = stack.of_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(storage) == len(instances) == int(stack.setting("dbInstanceCount"))
    assert {a["dimensions"]["DBInstanceIdentifier"] for a in storage.values()} == {
        i.inputs["identifier"] for i in instances
    }
    for alarm in storage.values():
        assert alarm["metricName"] == "FreeLocalStorage"
        assert alarm["comparisonOperator"] == "LessThanThreshold"
        assert alarm["alarmActions"] == [alert_topic(stack)]


def test_every_alarm_notifies_the_alert_topic(stack: StackRun) -> None:
    for name, alarm in alarms(stack).items():
        assert alarm["alarmActions"] == [alert_topic(stack)], name


def test_5xx_alarm_is_a_rate_of_all_requests(stack: StackRun) -> None:
    queries = {q["id"]: q for q in alarms(stack)["alb-5xx-rate"]["metricQueries"]}
    metrics = {q["metric"]["metricName"] for q in queries.values() if "metric" in q}
    assert metrics == {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"}
    (result,) = [q for q in queries.values() if q.get("returnData")]
    assert result["expression"].startswith("100 *")
    assert result["expression"].endswith("/ requests")


def test_latency_alarm_watches_the_api_p95(stack: StackRun) -> None:
    latency = alarms(stack)["api-p95-latency"]
    assert latency["metricName"] == "TargetResponseTime"
    assert latency["extendedStatistic"] == "p95"


def test_generation_failure_alarm_divides_failed_by_finished_jobs(stack: StackRun) -> None:
    queries = alarms(stack)["generation-failure-rate"]["metricQueries"]
    namespaces = {q["metric"]["namespace"] for q in queries if "metric" in q}
    assert namespaces == {f"Momentum/{stack.stack}"}
    (result,) = [q for q in queries if q.get("returnData")]
    assert "100 * FILL(failed, 0) / finished" in result["expression"]


def test_monthly_budget_alerts_at_80_100_and_120_percent(stack: StackRun) -> None:
    (budget,) = [b.inputs for b in stack.of_type("aws:budgets/budget:Budget")]
    assert budget["limitAmount"] == stack.setting("monthlyBudgetUsd")
    assert budget["timeUnit"] == "MONTHLY"
    assert sorted(n["threshold"] for n in budget["notifications"]) == [80, 100, 120]
    for notification in budget["notifications"]:
        assert notification["thresholdType"] == "PERCENTAGE"
        assert notification["subscriberSnsTopicArns"] == [alert_topic(stack)]
    assert budget["costFilters"] == [
        {"name": "TagKeyValue", "values": [f"user:Environment${stack.stack}"]}
    ]


def test_alert_topic_accepts_alarms_and_budgets_and_mails_the_operators(stack: StackRun) -> None:
    policy = json.loads(
        stack.named("aws:sns/topicPolicy:TopicPolicy", "alerts-policy").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert set(statement["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
    }
    subscription = stack.named("aws:sns/topicSubscription:TopicSubscription", "alerts-email").inputs
    assert subscription["endpoint"] == stack.setting("alertEmail")
    assert subscription["topic"] == alert_topic(stack)


def test_dashboard_covers_api_workers_database_and_generation_cost(stack: StackRun) -> None:
    dashboard = stack.named("aws:cloudwatch/dashboard:Dashboard", "dashboard").inputs
    body = json.loads(dashboard["dashboardBody"])
    titles = " ".join(w["properties"]["title"] for w in body["widgets"]).lower()
    for topic in ("api", "workers", "database", "cost"):
        assert topic in titles


def test_every_resource_carries_the_cost_tags(stack: StackRun) -> None:
    (provider,) = stack.of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert set(tags) == COST_TAG_KEYS
    assert tags["Environment"] == stack.stack
    assert tags["Project"] == "momentum"
    assert tags["CostCenter"] == stack.setting("costCenter")
    # The provider's default tags reach a resource only if it is created through that provider.
    (provider_urn,) = [u for u in stack.urns if u.endswith("pulumi:providers:aws::aws")]
    provider_ref = f"{provider_urn}::{provider.id}"
    aws_resources = [r for r in stack.resources if r.type.startswith("aws:")]
    assert aws_resources
    for resource in aws_resources:
        assert resource.provider == provider_ref, resource.name
    for token, provider_used in stack.calls:
        assert provider_used == provider_ref, token


def test_provider_refuses_other_accounts(stack: StackRun) -> None:
    (provider,) = stack.of_type("pulumi:providers:aws")
    assert json.loads(provider.inputs["allowedAccountIds"]) == [stack.setting("accountId")]
    assert provider.inputs["region"] == stack.config["aws:region"]
