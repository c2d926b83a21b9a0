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
}
BUDGET_ALERT_PERCENTAGES = (80, 100, 120)
ALB_5XX_RATE_PERCENT = 1
API_P95_LATENCY_SECONDS = 2
AURORA_CPU_PERCENT = 80
AURORA_MIN_FREE_LOCAL_STORAGE_BYTES = 1024**3
GENERATION_FAILURE_RATE_PERCENT = 5
OLDEST_PENDING_VIDEO_SECONDS = 30 * 60


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
        aws.sns.TopicPolicy(
            "alerts-policy",
            arn=topic.arn,
            policy=topic.arn.apply(lambda arn: _topic_policy(arn, args.account_id)),
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
            ],
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
) -> dict[str, object]:
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": namespace,
            "metric_name": metric_name,
            "dimensions": dict(dimensions),
            "period": period,
            "stat": "Sum",
        },
    }


def _topic_policy(topic_arn: str, account_id: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AlarmsAndBudgetsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )
