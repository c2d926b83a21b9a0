"""Scaling: target tracking for each service between the stack's minimum and maximum.

The API follows CPU and requests per target. The workers follow their backlog per running
task: queued generation jobs for the generator, pending videos for the video worker. Both
backlogs are gauges the application publishes (momentum_domain.metric_names, through
monitoring.APP_METRICS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from config import ServiceSize

API_TARGET_CPU_PERCENT = 60
API_TARGET_REQUESTS_PER_TASK_PER_MINUTE = 600
GENERATOR_TARGET_JOBS_PER_TASK = 5
VIDEO_WORKER_TARGET_VIDEOS_PER_TASK = 10


@dataclass(frozen=True)
class ScalingArgs:
    cluster_name: pulumi.Input[str]
    service_names: Mapping[str, pulumi.Input[str]]
    sizes: Mapping[str, ServiceSize]
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    metrics_namespace: str
    generator_queue_metric: str
    pending_videos_metric: str
    # Without Container Insights there is no running-task count to divide the backlog by.
    container_insights: bool = True


class Scaling(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScalingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Scaling", name, None, opts)
        self._args = args
        targets = {service: self._target(service) for service in args.service_names}

        self._policy(
            "api-cpu",
            targets["api"],
            {
                "target_value": API_TARGET_CPU_PERCENT,
                "predefined_metric_specification": {
                    "predefined_metric_type": "ECSServiceAverageCPUUtilization"
                },
            },
        )
        self._policy(
            "api-requests",
            targets["api"],
            {
                "target_value": API_TARGET_REQUESTS_PER_TASK_PER_MINUTE,
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": pulumi.Output.concat(
                        args.load_balancer_arn_suffix, "/", args.target_group_arn_suffix
                    ),
                },
            },
        )
        self._policy(
            "generator-backlog",
            targets["generator"],
            self._backlog_per_task(
                "generator", args.generator_queue_metric, GENERATOR_TARGET_JOBS_PER_TASK
            ),
        )
        self._policy(
            "video-worker-backlog",
            targets["video-worker"],
            self._backlog_per_task(
                "video-worker", args.pending_videos_metric, VIDEO_WORKER_TARGET_VIDEOS_PER_TASK
            ),
        )
        self.register_outputs({})

    def _target(self, service: str) -> aws.appautoscaling.Target:
        args = self._args
        return aws.appautoscaling.Target(
            f"{service}-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat(
                "service/", args.cluster_name, "/", args.service_names[service]
            ),
            min_capacity=args.sizes[service].min_tasks,
            max_capacity=args.sizes[service].max_tasks,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _policy(
        self, name: str, target: aws.appautoscaling.Target, configuration: dict[str, object]
    ) -> None:
        aws.appautoscaling.Policy(
            name,
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                **configuration,
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _backlog_per_task(self, service: str, metric: str, target: int) -> dict[str, object]:
        """Backlog divided by running tasks (Container Insights), the AWS-recommended signal."""
        args = self._args
        backlog = {
            "id": "backlog",
            "metric_stat": {
                "metric": {"namespace": args.metrics_namespace, "metric_name": metric},
                "stat": "Maximum",
            },
            "return_data": not args.container_insights,
        }
        if not args.container_insights:
            # The whole backlog against the per-task target: it adds tasks while work waits,
            # up to MaxTasks, and overshoots only within that bound (dev and staging).
            return {
                "target_value": target,
                "customized_metric_specification": {"metrics": [backlog]},
            }
        return {
            "target_value": target,
            "customized_metric_specification": {
                "metrics": [
                    backlog,
                    {
                        "id": "tasks",
                        "metric_stat": {
                            "metric": {
                                "namespace": "ECS/ContainerInsights",
                                "metric_name": "RunningTaskCount",
                                "dimensions": [
                                    {"name": "ClusterName", "value": args.cluster_name},
                                    {"name": "ServiceName", "value": args.service_names[service]},
                                ],
                            },
                            "stat": "Average",
                        },
                        "return_data": False,
                    },
                    {
                        "id": "per_task",
                        "expression": "backlog / IF(tasks > 0, tasks, 1)",
                        "label": f"{service} backlog per task",
                        "return_data": True,
                    },
                ]
            },
        }
