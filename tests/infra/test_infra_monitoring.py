"""Alarms, budget, dashboard and cost tags, for every stack."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import StackRun

from momentum_domain import metric_names
from momentum_domain.metric_names import MetricSpec

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The alarms the issue names, with the threshold it sets (None where it leaves it to us).
NAMED_ALARMS = {
    "alb-5xx-rate": ("GreaterThanThreshold", 1),
    "api-p95-latency": ("GreaterThanThreshold", 2),
    "api-unhealthy-targets": ("GreaterThanThreshold", 0),
    "aurora-cpu": ("GreaterThanThreshold", None),
    "generation-failure-rate": ("GreaterThanThreshold", 5),
    "oldest-pending-video": ("GreaterThanThreshold", None),
    "generator-heartbeat-missing": ("LessThanThreshold", 1),
    "video-worker-heartbeat-missing": ("LessThanThreshold", 1),
    "generation-dead-letters": ("GreaterThanThreshold", 0),
    "ses-bounce-rate": ("GreaterThanThreshold", None),
    "ses-complaint-rate": ("GreaterThanThreshold", None),
    "ai-daily-spend": ("GreaterThanThreshold", None),
    "aurora-at-max-capacity-1": ("GreaterThanOrEqualToThreshold", None),
    "aurora-connections-1": ("GreaterThanThreshold", None),
    "cache-memory-1": ("GreaterThanThreshold", None),
    "cache-evictions-1": ("GreaterThanThreshold", 0),
    "cache-throttled-1": ("GreaterThanThreshold", 0),
}
SERVICES = ("api", "generator", "video-worker")
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


def _reads(alarm: dict, spec: MetricSpec, stack: StackRun) -> None:
    """The alarm reads ``spec`` as its producer emits it (the table's name, no dimensions
    beyond the table's, the namespace the collectors publish in)."""
    assert alarm["namespace"] == f"Momentum/{stack.stack}"
    assert alarm["metricName"] == spec.name
    assert set(alarm.get("dimensions") or {}) == set(spec.attributes)


@pytest.mark.parametrize(
    ("alarm", "spec"),
    [
        ("generator-heartbeat-missing", metric_names.GENERATOR_HEARTBEAT),
        ("video-worker-heartbeat-missing", metric_names.VIDEO_WORKER_HEARTBEAT),
    ],
)
def test_a_worker_kind_without_heartbeats_alarms(
    stack: StackRun, alarm: str, spec: MetricSpec
) -> None:
    found = alarms(stack)[alarm]
    _reads(found, spec, stack)
    # The gauge is 1 while a worker ticks and absent otherwise: silence is the failure.
    assert found["treatMissingData"] == "breaching"
    assert found["statistic"] == "Maximum"


def test_dead_letters_alarm_on_the_first_one(stack: StackRun) -> None:
    found = alarms(stack)["generation-dead-letters"]
    _reads(found, metric_names.GENERATION_BROKER_DEAD_LETTERS, stack)
    assert found["statistic"] == "Maximum"


def test_ai_spend_alarm_sums_a_day_of_model_cost_against_the_stack_limit(
    stack: StackRun,
) -> None:
    found = alarms(stack)["ai-daily-spend"]
    _reads(found, metric_names.GENERATION_COST, stack)
    assert (found["statistic"], found["period"], found["evaluationPeriods"]) == ("Sum", 86400, 1)
    assert found["threshold"] == float(stack.setting("aiDailySpendLimitUsd"))


def test_each_service_short_of_its_desired_tasks_alarms_where_container_insights_counts_them(
    stack: StackRun,
) -> None:
    found = {k: v for k, v in alarms(stack).items() if k.endswith("-tasks-below-desired")}
    # Container Insights is on unless a stack turns it off.
    if stack.config.get("momentum:containerInsights", "true") != "true":
        assert found == {}  # no task counts are published
        return
    assert set(found) == {f"{service}-tasks-below-desired" for service in SERVICES}
    for alarm in found.values():
        queries = {q["id"]: q for q in alarm["metricQueries"]}
        assert {
            (q["metric"]["namespace"], q["metric"]["metricName"], q["metric"]["stat"])
            for q in queries.values()
            if "metric" in q
        } == {
            ("ECS/ContainerInsights", "DesiredTaskCount", "Maximum"),
            ("ECS/ContainerInsights", "RunningTaskCount", "Minimum"),
        }
        for query in queries.values():
            if "metric" in query:
                assert set(query["metric"]["dimensions"]) == {"ClusterName", "ServiceName"}
        assert queries["short"]["expression"] == "desired - FILL(running, 0)"
        assert alarm["threshold"] == 0


def test_aurora_alarms_at_max_capacity_and_near_the_connection_limit_per_instance(
    stack: StackRun,
) -> None:
    instances = {
        i.inputs["identifier"] for i in stack.of_type("aws:rds/clusterInstance:ClusterInstance")
    }
    max_acu = float(stack.setting("dbMaxAcu"))
    capacity = {k: v for k, v in alarms(stack).items() if k.startswith("aurora-at-max-capacity")}
    connections = {k: v for k, v in alarms(stack).items() if k.startswith("aurora-connections")}
    assert len(capacity) == len(connections) == len(instances)
    for alarm in capacity.values():
        assert alarm["metricName"] == "ServerlessDatabaseCapacity"
        assert alarm["threshold"] == max_acu
    # max_connections is LEAST(memory / 9531392, 5000) at the largest size (2 GiB an ACU).
    limit = min(int(max_acu * 2 * 1024**3 / 9531392), 5000)
    for alarm in connections.values():
        assert alarm["metricName"] == "DatabaseConnections"
        assert 0.5 * limit < alarm["threshold"] < limit
    for alarm in [*capacity.values(), *connections.values()]:
        assert alarm["namespace"] == "AWS/RDS"
        assert set(alarm["dimensions"]) == {"DBInstanceIdentifier"}
    assert {a["dimensions"]["DBInstanceIdentifier"] for a in capacity.values()} == instances


def test_cache_alarms_per_node_on_memory_evictions_cpu_and_throttling(stack: StackRun) -> None:
    (group,) = stack.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    nodes = {
        f"{group.inputs['replicationGroupId']}-{n:03d}"
        for n in range(1, int(group.inputs["numCacheClusters"]) + 1)
    }
    found = alarms(stack)
    for kind, metric in (
        ("memory", "DatabaseMemoryUsagePercentage"),
        ("evictions", "Evictions"),
        ("engine-cpu", "EngineCPUUtilization"),
    ):
        per_node = [v for k, v in found.items() if k.startswith(f"cache-{kind}-")]
        assert {a["metricName"] for a in per_node} == {metric}
        assert {a["namespace"] for a in per_node} == {"AWS/ElastiCache"}
        assert {a["dimensions"]["CacheClusterId"] for a in per_node} == nodes
    throttled = [v for k, v in found.items() if k.startswith("cache-throttled-")]
    assert len(throttled) == len(nodes)
    for alarm in throttled:
        metrics = {q["metric"]["metricName"] for q in alarm["metricQueries"] if "metric" in q}
        assert metrics == {
            "NetworkBandwidthInAllowanceExceeded",
            "NetworkBandwidthOutAllowanceExceeded",
            "NetworkPacketsPerSecondAllowanceExceeded",
        }


def test_ses_reputation_alarms_before_ses_reviews_the_account(stack: StackRun) -> None:
    found = alarms(stack)
    for alarm, metric, review_at in (
        ("ses-bounce-rate", "Reputation.BounceRate", 0.05),
        ("ses-complaint-rate", "Reputation.ComplaintRate", 0.001),
    ):
        assert (found[alarm]["namespace"], found[alarm]["metricName"]) == ("AWS/SES", metric)
        assert 0 < found[alarm]["threshold"] < review_at


def test_cost_anomalies_of_this_stack_notify_the_alert_topic(stack: StackRun) -> None:
    (monitor,) = stack.of_type("aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    assert monitor.inputs["monitorType"] == "CUSTOM"
    assert json.loads(monitor.inputs["monitorSpecification"]) == {
        "Tags": {"Key": "Environment", "Values": [stack.stack], "MatchOptions": ["EQUALS"]}
    }
    (subscription,) = stack.of_type("aws:costexplorer/anomalySubscription:AnomalySubscription")
    inputs = subscription.inputs
    assert inputs["frequency"] == "IMMEDIATE"
    assert inputs["monitorArnLists"] == [
        stack.arn_of("aws:costexplorer/anomalyMonitor:AnomalyMonitor", "cost-anomalies")
    ]
    assert inputs["subscribers"] == [{"type": "SNS", "address": alert_topic(stack)}]
    assert inputs["thresholdExpression"]["dimension"]["key"] == "ANOMALY_TOTAL_IMPACT_ABSOLUTE"


def test_monthly_budget_alerts_at_80_100_and_120_percent_and_on_a_forecast_over_it(
    stack: StackRun,
) -> None:
    (budget,) = [b.inputs for b in stack.of_type("aws:budgets/budget:Budget")]
    assert budget["limitAmount"] == stack.setting("monthlyBudgetUsd")
    assert budget["timeUnit"] == "MONTHLY"
    assert sorted((n["notificationType"], n["threshold"]) for n in budget["notifications"]) == [
        ("ACTUAL", 80),
        ("ACTUAL", 100),
        ("ACTUAL", 120),
        ("FORECASTED", 100),
    ]
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
    # The other statement lets the backup-failure rule in (test_infra_backup_alarm.py).
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "AlarmsAndBudgetsPublish"]
    assert set(statement["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
        "costalerts.amazonaws.com",
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
