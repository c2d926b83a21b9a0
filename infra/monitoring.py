"""Monitoring: the alert topic, alarms, a dashboard and the stack's monthly budget.

Application metrics arrive through each task's OpenTelemetry collector in the namespace
``Momentum/<environment>`` under the names of the shared metric table
(momentum_domain.metric_names, which the emitting code uses too); log groups and their
retention are created with the services in compute.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from momentum_domain import metric_names

# The application metrics the program reads, by their role here.
APP_METRICS = {
    "queue_depth": metric_names.GENERATION_QUEUE_DEPTH.name,
    "pending_videos": metric_names.VIDEOS_PENDING.name,
    "oldest_pending_video_age": metric_names.VIDEOS_OLDEST_PENDING_AGE.name,
    "jobs_failed": metric_names.GENERATION_JOBS_FAILED.name,
    "jobs_finished": metric_names.GENERATION_JOBS_FINISHED.name,
    "cost": metric_names.GENERATION_COST.name,
    "dead_letters": metric_names.GENERATION_BROKER_DEAD_LETTERS.name,
    "broker_queue_depth": metric_names.GENERATION_BROKER_QUEUE_DEPTH.name,
    "outbox_pending": metric_names.NOTIFICATIONS_OUTBOX_PENDING.name,
}
# The worker kinds' heartbeat gauges, by the alarm that watches each.
HEARTBEATS = {
    "generator": metric_names.GENERATOR_HEARTBEAT.name,
    "video-worker": metric_names.VIDEO_WORKER_HEARTBEAT.name,
}
BUDGET_ALERT_PERCENTAGES = (80, 100, 120)
# Warned before the month is spent, from AWS's forecast.
BUDGET_FORECAST_PERCENTAGES = (100,)
# A cost anomaly worth a message: its total impact in US dollars.
COST_ANOMALY_IMPACT_USD = 20
ALB_5XX_RATE_PERCENT = 1
API_P95_LATENCY_SECONDS = 2
AURORA_CPU_PERCENT = 80
AURORA_MIN_FREE_LOCAL_STORAGE_BYTES = 1024**3
GENERATION_FAILURE_RATE_PERCENT = 5
OLDEST_PENDING_VIDEO_SECONDS = 30 * 60
# Aurora PostgreSQL's default max_connections, LEAST(DBInstanceClassMemory / 9531392, 5000),
# at the largest size an instance scales to (1 ACU is 2 GiB); the real limit is a little lower
# (DBInstanceClassMemory excludes what the OS keeps), hence a margin.
AURORA_CONNECTIONS_PERCENT_OF_LIMIT = 75
AURORA_BYTES_PER_CONNECTION = 9531392
AURORA_MAX_CONNECTIONS = 5000
CACHE_MEMORY_PERCENT = 80
CACHE_ENGINE_CPU_PERCENT = 80
# Node-based ElastiCache: packets or bandwidth over the node type's allowance are queued or
# dropped (the throttling a node shows).
CACHE_ALLOWANCE_METRICS = (
    "NetworkBandwidthInAllowanceExceeded",
    "NetworkBandwidthOutAllowanceExceeded",
    "NetworkPacketsPerSecondAllowanceExceeded",
)
# SES reviews an account at a 5% bounce rate and 0.1% complaint rate; warned well before.
SES_BOUNCE_RATE = 0.03
SES_COMPLAINT_RATE = 0.0008
# Deployments and scaling leave a service short for a few minutes; longer is an outage.
TASKS_SHORT_MINUTES = 10


@dataclass(frozen=True)
class MonitoringArgs:
    prefix: str
    environment: str
    region: str
    account_id: str
    alert_email: str
    monthly_budget_usd: int
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_names: Mapping[str, pulumi.Input[str]]
    db_cluster_identifier: pulumi.Input[str]
    db_instance_identifiers: Sequence[pulumi.Input[str]]
    metrics_namespace: str
    db_max_acu: float
    # The cache's nodes (ElastiCache publishes per node, by CacheClusterId).
    cache_node_ids: Sequence[str]
    ai_daily_spend_limit_usd: float
    # ECS/ContainerInsights task counts exist only where Container Insights is on.
    container_insights: bool = True


class Monitoring(pulumi.ComponentResource):
    alert_topic_arn: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Monitoring", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        # Left on SNS's default encryption: CloudWatch alarms cannot publish to a topic that
        # uses the AWS-managed SNS key, and alarm payloads hold no user data.
        topic = aws.sns.Topic("alerts", name=f"{args.prefix}-alerts", opts=child)
        # Backup failures are RDS events, not metrics: an EventBridge rule sends them on.
        backup_failures = aws.cloudwatch.EventRule(
            "aurora-backup-failures",
            name=f"{args.prefix}-aurora-backup-failures",
            description="Aurora backup events of this stack's cluster that report a failure",
            event_pattern=pulumi.Output.json_dumps(backup_failure_pattern(args)),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            "aurora-backup-failures-alert",
            rule=backup_failures.name,
            arn=topic.arn,
            opts=child,
        )
        aws.sns.TopicPolicy(
            "alerts-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, backup_failures.arn).apply(
                lambda arns: _topic_policy(arns[0], args.account_id, arns[1])
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            "alerts-email", topic=topic.arn, protocol="email", endpoint=args.alert_email, opts=child
        )
        self.alert_topic_arn = topic.arn
        self._alarms()

        dashboard_name = f"{args.prefix}-overview"
        aws.cloudwatch.Dashboard(
            "dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=pulumi.Output.json_dumps({"widgets": self._widgets()}),
            opts=child,
        )
        self.dashboard_url = pulumi.Output.from_input(
            f"https://{args.region}.console.aws.amazon.com/cloudwatch/home"
            f"?region={args.region}#dashboards/dashboard/{dashboard_name}"
        )

        aws.budgets.Budget(
            "budget",
            name=f"{args.prefix}-monthly",
            budget_type="COST",
            limit_amount=str(args.monthly_budget_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            # Counts what this stack's default tags mark; activate the tag for cost allocation.
            cost_filters=[
                {"name": "TagKeyValue", "values": [f"user:Environment${args.environment}"]}
            ],
            notifications=[
                {
                    "comparison_operator": "GREATER_THAN",
                    "threshold": percentage,
                    "threshold_type": "PERCENTAGE",
                    "notification_type": "ACTUAL",
                    "subscriber_sns_topic_arns": [topic.arn],
                }
                for percentage in BUDGET_ALERT_PERCENTAGES
            ]
            + [
                {
                    "comparison_operator": "GREATER_THAN",
                    "threshold": percentage,
                    "threshold_type": "PERCENTAGE",
                    "notification_type": "FORECASTED",
                    "subscriber_sns_topic_arns": [topic.arn],
                }
                for percentage in BUDGET_FORECAST_PERCENTAGES
            ],
            opts=child,
        )
        # Cost Anomaly Detection over what this stack's tag marks (a custom monitor: an
        # account has room for one AWS-services monitor only, and stacks may share one).
        anomalies = aws.costexplorer.AnomalyMonitor(
            "cost-anomalies",
            name=f"{args.prefix}-costs",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps(
                {
                    "Tags": {
                        "Key": "Environment",
                        "Values": [args.environment],
                        "MatchOptions": ["EQUALS"],
                    }
                }
            ),
            opts=child,
        )
        aws.costexplorer.AnomalySubscription(
            "cost-anomaly-alerts",
            name=f"{args.prefix}-cost-anomalies",
            frequency="IMMEDIATE",  # the only frequency that may notify an SNS topic
            monitor_arn_lists=[anomalies.arn],
            subscribers=[{"type": "SNS", "address": topic.arn}],
            threshold_expression={
                "dimension": {
                    "key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                    "values": [str(COST_ANOMALY_IMPACT_USD)],
                    "match_options": ["GREATER_THAN_OR_EQUAL"],
                }
            },
            opts=child,
        )
        self.register_outputs(
            {"alert_topic_arn": self.alert_topic_arn, "dashboard_url": self.dashboard_url}
        )

    def _alarm(self, suffix: str, description: str, **settings: object) -> None:
        aws.cloudwatch.MetricAlarm(
            suffix,
            name=f"{self._args.prefix}-{suffix}",
            alarm_description=description,
            alarm_actions=[self.alert_topic_arn],
            ok_actions=[self.alert_topic_arn],
            **settings,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _alarms(self) -> None:
        args = self._args
        alb = {"LoadBalancer": args.load_balancer_arn_suffix}
        target_group = {**alb, "TargetGroup": args.target_group_arn_suffix}
        namespace = args.metrics_namespace

        self._alarm(
            "alb-5xx-rate",
            f"More than {ALB_5XX_RATE_PERCENT}% of API requests answered 5xx",
            comparison_operator="GreaterThanThreshold",
            threshold=ALB_5XX_RATE_PERCENT,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data="notBreaching",
            metric_queries=[
                _metric_query("target", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb),
                _metric_query("elb", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", alb),
                _metric_query("requests", "AWS/ApplicationELB", "RequestCount", alb),
                {
                    "id": "rate",
                    "expression": "100 * (FILL(target, 0) + FILL(elb, 0)) / requests",
                    "label": "5xx rate (%)",
                    "return_data": True,
                },
            ],
        )
        self._alarm(
            "api-p95-latency",
            f"API p95 response time above {API_P95_LATENCY_SECONDS} s",
            namespace="AWS/ApplicationELB",
            metric_name="TargetResponseTime",
            dimensions=target_group,
            extended_statistic="p95",
            period=60,
            comparison_operator="GreaterThanThreshold",
            threshold=API_P95_LATENCY_SECONDS,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data="notBreaching",
        )
        self._alarm(
            "api-unhealthy-targets",
            "An API task fails the load balancer's readiness check",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions=target_group,
            statistic="Maximum",
            period=60,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            evaluation_periods=3,
            treat_missing_data="notBreaching",
        )
        self._alarm(
            "aurora-cpu",
            f"Aurora CPU above {AURORA_CPU_PERCENT}%",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            dimensions={"DBClusterIdentifier": args.db_cluster_identifier},
            statistic="Average",
            period=300,
            comparison_operator="GreaterThanThreshold",
            threshold=AURORA_CPU_PERCENT,
            evaluation_periods=3,
        )
        for index, instance in enumerate(args.db_instance_identifiers):
            self._alarm(
                f"aurora-free-local-storage-{index + 1}",
                "Aurora instance is running out of local storage (temporary files, logs)",
                namespace="AWS/RDS",
                metric_name="FreeLocalStorage",
                dimensions={"DBInstanceIdentifier": instance},
                statistic="Minimum",
                period=300,
                comparison_operator="LessThanThreshold",
                threshold=AURORA_MIN_FREE_LOCAL_STORAGE_BYTES,
                evaluation_periods=2,
            )
        self._alarm(
            "generation-failure-rate",
            f"More than {GENERATION_FAILURE_RATE_PERCENT}% of generation jobs failed",
            comparison_operator="GreaterThanThreshold",
            threshold=GENERATION_FAILURE_RATE_PERCENT,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
            metric_queries=[
                _metric_query("failed", namespace, APP_METRICS["jobs_failed"], {}, period=900),
                _metric_query("finished", namespace, APP_METRICS["jobs_finished"], {}, period=900),
                {
                    "id": "rate",
                    "expression": "IF(finished > 0, 100 * FILL(failed, 0) / finished, 0)",
                    "label": "generation failure rate (%)",
                    "return_data": True,
                },
            ],
        )
        self._alarm(
            "oldest-pending-video",
            f"A video has been pending for more than {OLDEST_PENDING_VIDEO_SECONDS} s",
            namespace=namespace,
            metric_name=APP_METRICS["oldest_pending_video_age"],
            statistic="Maximum",
            period=300,
            comparison_operator="GreaterThanThreshold",
            threshold=OLDEST_PENDING_VIDEO_SECONDS,
            evaluation_periods=2,
            treat_missing_data="notBreaching",
        )
        self._worker_alarms()
        self._service_alarms()
        self._database_alarms()
        self._cache_alarms()
        self._ses_alarms()
        self._alarm(
            "ai-daily-spend",
            f"Model calls cost more than {args.ai_daily_spend_limit_usd} USD in a day",
            namespace=namespace,
            metric_name=APP_METRICS["cost"],
            statistic="Sum",
            period=86400,
            comparison_operator="GreaterThanThreshold",
            threshold=args.ai_daily_spend_limit_usd,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
        )

    def _worker_alarms(self) -> None:
        namespace = self._args.metrics_namespace
        for kind, metric in HEARTBEATS.items():
            # Missing data is the failure: a worker that stopped, or never started, sends none.
            self._alarm(
                f"{kind}-heartbeat-missing",
                f"No {kind} has ticked for 3 minutes",
                namespace=namespace,
                metric_name=metric,
                statistic="Maximum",
                period=60,
                comparison_operator="LessThanThreshold",
                threshold=1,
                evaluation_periods=3,
                treat_missing_data="breaching",
            )
        self._alarm(
            "generation-dead-letters",
            "Generation messages died in the broker (kept a day; read them before they expire)",
            namespace=namespace,
            metric_name=APP_METRICS["dead_letters"],
            statistic="Maximum",
            period=60,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
        )

    def _service_alarms(self) -> None:
        args = self._args
        if not args.container_insights:
            # Without Container Insights ECS publishes no task counts; the heartbeat alarms
            # (workers) and the unhealthy-targets alarm (API) remain.
            return
        for service, name in args.service_names.items():
            dimensions = {"ClusterName": args.cluster_name, "ServiceName": name}
            self._alarm(
                f"{service}-tasks-below-desired",
                f"{service} has run fewer tasks than desired for {TASKS_SHORT_MINUTES} minutes",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=TASKS_SHORT_MINUTES,
                # FILL covers a service with no task running (no RunningTaskCount then).
                treat_missing_data="notBreaching",
                metric_queries=[
                    _metric_query(
                        "desired",
                        "ECS/ContainerInsights",
                        "DesiredTaskCount",
                        dimensions,
                        stat="Maximum",
                    ),
                    _metric_query(
                        "running",
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        dimensions,
                        stat="Minimum",
                    ),
                    {
                        "id": "short",
                        "expression": "desired - FILL(running, 0)",
                        "label": "tasks short of desired",
                        "return_data": True,
                    },
                ],
            )

    def _database_alarms(self) -> None:
        args = self._args
        connection_limit = min(
            int(args.db_max_acu * 2 * 1024**3 / AURORA_BYTES_PER_CONNECTION),
            AURORA_MAX_CONNECTIONS,
        )
        for index, instance in enumerate(args.db_instance_identifiers):
            dimensions = {"DBInstanceIdentifier": instance}
            self._alarm(
                f"aurora-at-max-capacity-{index + 1}",
                f"Aurora instance has run at its maximum {args.db_max_acu} ACU for 15 minutes",
                namespace="AWS/RDS",
                metric_name="ServerlessDatabaseCapacity",
                dimensions=dimensions,
                statistic="Minimum",
                period=300,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=args.db_max_acu,
                evaluation_periods=3,
                treat_missing_data="notBreaching",
            )
            self._alarm(
                f"aurora-connections-{index + 1}",
                f"Aurora instance holds over {AURORA_CONNECTIONS_PERCENT_OF_LIMIT}% of the "
                f"~{connection_limit} connections it allows",
                namespace="AWS/RDS",
                metric_name="DatabaseConnections",
                dimensions=dimensions,
                statistic="Maximum",
                period=60,
                comparison_operator="GreaterThanThreshold",
                threshold=connection_limit * AURORA_CONNECTIONS_PERCENT_OF_LIMIT // 100,
                evaluation_periods=5,
                treat_missing_data="notBreaching",
            )

    def _cache_alarms(self) -> None:
        for index, node in enumerate(self._args.cache_node_ids):
            number = index + 1
            dimensions = {"CacheClusterId": node}
            self._alarm(
                f"cache-memory-{number}",
                f"Cache node {node} uses over {CACHE_MEMORY_PERCENT}% of its memory",
                namespace="AWS/ElastiCache",
                metric_name="DatabaseMemoryUsagePercentage",
                dimensions=dimensions,
                statistic="Maximum",
                period=300,
                comparison_operator="GreaterThanThreshold",
                threshold=CACHE_MEMORY_PERCENT,
                evaluation_periods=2,
                treat_missing_data="notBreaching",
            )
            # Only keys with an expiry are evicted (volatile-lru), but broker messages and
            # heartbeats expire too: any eviction is data the application wanted.
            self._alarm(
                f"cache-evictions-{number}",
                f"Cache node {node} evicted keys",
                namespace="AWS/ElastiCache",
                metric_name="Evictions",
                dimensions=dimensions,
                statistic="Sum",
                period=300,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=1,
                treat_missing_data="notBreaching",
            )
            self._alarm(
                f"cache-engine-cpu-{number}",
                f"Cache node {node}'s engine thread above {CACHE_ENGINE_CPU_PERCENT}% CPU",
                namespace="AWS/ElastiCache",
                metric_name="EngineCPUUtilization",
                dimensions=dimensions,
                statistic="Average",
                period=300,
                comparison_operator="GreaterThanThreshold",
                threshold=CACHE_ENGINE_CPU_PERCENT,
                evaluation_periods=3,
                treat_missing_data="notBreaching",
            )
            queries = [
                _metric_query(f"m{i}", "AWS/ElastiCache", metric, dimensions, period=300)
                for i, metric in enumerate(CACHE_ALLOWANCE_METRICS)
            ]
            self._alarm(
                f"cache-throttled-{number}",
                f"Cache node {node} exceeded its network allowance (packets queued or dropped)",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=2,
                treat_missing_data="notBreaching",
                metric_queries=[
                    *queries,
                    {
                        "id": "exceeded",
                        "expression": " + ".join(f"FILL({q['id']}, 0)" for q in queries),
                        "label": "allowance exceeded (packets)",
                        "return_data": True,
                    },
                ],
            )

    def _ses_alarms(self) -> None:
        for suffix, metric, threshold in (
            ("ses-bounce-rate", "Reputation.BounceRate", SES_BOUNCE_RATE),
            ("ses-complaint-rate", "Reputation.ComplaintRate", SES_COMPLAINT_RATE),
        ):
            self._alarm(
                suffix,
                f"The account's SES {metric} is above {threshold:.2%} (SES reviews sending "
                "accounts above 5% bounces or 0.1% complaints)",
                namespace="AWS/SES",
                metric_name=metric,
                statistic="Maximum",
                period=3600,
                comparison_operator="GreaterThanThreshold",
                threshold=threshold,
                evaluation_periods=1,
                treat_missing_data="notBreaching",
            )

    def _widgets(self) -> list[dict[str, object]]:
        args = self._args
        lb, tg = args.load_balancer_arn_suffix, args.target_group_arn_suffix
        cluster = args.cluster_name
        namespace = args.metrics_namespace
        elb = "AWS/ApplicationELB"
        services = [
            ["ECS/ContainerInsights", metric, "ClusterName", cluster, "ServiceName", name]
            for name in args.service_names.values()
            for metric in ("CpuUtilized", "RunningTaskCount")
        ]
        panels: list[tuple[str, list[list[object]], str]] = [
            (
                "API requests and errors",
                [
                    [elb, "RequestCount", "LoadBalancer", lb],
                    [elb, "HTTPCode_Target_5XX_Count", "LoadBalancer", lb],
                    [elb, "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                ],
                "Sum",
            ),
            (
                "API p95 latency (s)",
                [[elb, "TargetResponseTime", "LoadBalancer", lb, "TargetGroup", tg]],
                "p95",
            ),
            ("Services: CPU and running tasks", services, "Average"),
            (
                "Workers: backlog",
                [
                    [namespace, APP_METRICS["queue_depth"]],
                    [namespace, APP_METRICS["pending_videos"]],
                    [namespace, APP_METRICS["oldest_pending_video_age"]],
                    [namespace, APP_METRICS["broker_queue_depth"]],
                    [namespace, APP_METRICS["dead_letters"]],
                    [namespace, APP_METRICS["outbox_pending"]],
                ],
                "Maximum",
            ),
            (
                "Database",
                [
                    ["AWS/RDS", metric, "DBClusterIdentifier", args.db_cluster_identifier]
                    for metric in (
                        "CPUUtilization",
                        "ServerlessDatabaseCapacity",
                        "DatabaseConnections",
                    )
                ],
                "Average",
            ),
            (
                "Generation: jobs and cost (USD)",
                [
                    [namespace, APP_METRICS["jobs_finished"]],
                    [namespace, APP_METRICS["jobs_failed"]],
                    [namespace, APP_METRICS["cost"]],
                ],
                "Sum",
            ),
        ]
        return [
            {
                "type": "metric",
                "x": (index % 2) * 12,
                "y": (index // 2) * 6,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": args.region,
                    "stat": stat,
                    "period": 300,
                    "metrics": metrics,
                },
            }
            for index, (title, metrics, stat) in enumerate(panels)
        ]


def _metric_query(
    query_id: str,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    period: int = 60,
    stat: str = "Sum",
) -> dict[str, object]:
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": namespace,
            "metric_name": metric_name,
            "dimensions": dict(dimensions),
            "period": period,
            "stat": stat,
        },
    }


def backup_failure_pattern(args: MonitoringArgs) -> dict[str, object]:
    """RDS's backup-category events for the cluster or its instances whose message reports a
    failure (the catalogue gives no single event id for it; its messages say "failed")."""
    return {
        "source": ["aws.rds"],
        "detail-type": ["RDS DB Cluster Event", "RDS DB Instance Event"],
        "detail": {
            "SourceIdentifier": [args.db_cluster_identifier, *args.db_instance_identifiers],
            "EventCategories": ["backup"],
            "Message": [{"wildcard": "*fail*"}, {"wildcard": "*Fail*"}],
        },
    }


def _topic_policy(topic_arn: str, account_id: str, backup_rule_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AlarmsAndBudgetsPublish",
                    "Effect": "Allow",
                    "Principal": {
                        "Service": [
                            "cloudwatch.amazonaws.com",
                            "budgets.amazonaws.com",
                            "costalerts.amazonaws.com",
                        ]
                    },
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
                {
                    "Sid": "BackupFailureEventsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": backup_rule_arn}},
                },
            ],
        }
    )
