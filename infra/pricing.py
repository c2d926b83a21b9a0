"""What a stack costs a month at its declared minimum, from the resources the program declares.

One table of unit prices (us-east-1, on-demand list prices, 730 hours a month, no free tier, no
Savings Plans) and one function that prices a list of declared resources with it. The infra
tests run it on each stack's recorded resources and hold the totals under their targets;
docs/costs.md quotes the same table. Only what a stack pays while idle is counted: traffic,
storage, requests and log volume grow with use and are described in docs/costs.md.

Not imported by the Pulumi program: it reads resource inputs as the engine records them
(camelCase keys), which is what the tests have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

HOURS_PER_MONTH = 730

# USD. Check https://aws.amazon.com/pricing before budgeting: prices change.
PRICES: dict[str, Any] = {
    "nat_gateway_hour": 0.045,
    "public_ipv4_hour": 0.005,
    "interface_endpoint_zone_hour": 0.01,
    "alb_hour": 0.0225,
    "waf_web_acl_month": 5.0,
    "waf_rule_month": 1.0,
    "aurora_acu_hour": 0.12,
    # ElastiCache for Valkey, node-based (20 % below Redis OSS).
    "cache_node_hour": {
        "cache.t4g.micro": 0.0128,
        "cache.t4g.small": 0.0256,
        "cache.t4g.medium": 0.0512,
    },
    "ec2_instance_hour": {"t4g.nano": 0.0042, "t4g.micro": 0.0084, "t4g.small": 0.0168},
    "ebs_gp3_gb_month": 0.08,
    # (per vCPU-hour, per GB-hour) by CPU architecture and capacity provider. Fargate Spot's
    # price moves with spare capacity; the table takes AWS's advertised 70 % below on-demand.
    # Spot runs x86 only.
    "fargate": {
        ("X86_64", "FARGATE"): (0.04048, 0.004445),
        ("ARM64", "FARGATE"): (0.03238, 0.00356),
        ("X86_64", "FARGATE_SPOT"): (0.012144, 0.0013335),
    },
    "kms_key_month": 1.0,
    "secret_month": 0.40,
    "custom_metric_month": 0.30,
    "alarm_metric_month": 0.10,
    "dashboard_month": 3.0,
}

# Container Insights (standard) publishes about 8 metrics per dimension set: the cluster, each
# service and each task family. An estimate: the exact count depends on the tasks running.
CONTAINER_INSIGHTS_METRICS_PER_DIMENSION_SET = 8
# A target-tracking policy creates two alarms (scale out, scale in), each on one metric.
TARGET_TRACKING_ALARMS = 2
# Root volume of the Amazon Linux 2023 AMI a NAT instance boots from (GB, gp3).
NAT_INSTANCE_ROOT_GB = 8


class Declared(Protocol):
    type: str
    name: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Line:
    item: str
    usd: float
    basis: str


def monthly_cost(resources: Iterable[Declared]) -> list[Line]:
    """The fixed monthly charge of each priced item among ``resources`` (zero items omitted)."""
    declared = list(resources)

    def of(type_token: str) -> list[Declared]:
        return [r for r in declared if r.type == type_token]

    hours = HOURS_PER_MONTH
    lines: list[Line] = []

    def add(item: str, usd: float, basis: str) -> None:
        if usd:
            lines.append(Line(item, round(usd, 2), basis))

    gateways = of("aws:ec2/natGateway:NatGateway")
    add("NAT gateways", len(gateways) * PRICES["nat_gateway_hour"] * hours, f"{len(gateways)}")
    instances = of("aws:ec2/instance:Instance")
    instance_cost = sum(
        PRICES["ec2_instance_hour"][i.inputs["instanceType"]] * hours
        + PRICES["ebs_gp3_gb_month"] * i.inputs["rootBlockDevice"]["volumeSize"]
        for i in instances
    )
    types = sorted({i.inputs["instanceType"] for i in instances})
    add("NAT instances", instance_cost, f"{len(instances)} x {'/'.join(types)} + root volume")
    addresses = len(of("aws:ec2/eip:Eip"))
    balancers = of("aws:lb/loadBalancer:LoadBalancer")
    # An internet-facing load balancer holds one public address in each of its zones.
    addresses += sum(len(lb.inputs["subnets"]) for lb in balancers if not lb.inputs["internal"])
    add("Public IPv4 addresses", addresses * PRICES["public_ipv4_hour"] * hours, f"{addresses}")
    endpoint_zones = sum(
        len(e.inputs["subnetIds"])
        for e in of("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Interface"
    )
    add(
        "Interface endpoints",
        endpoint_zones * PRICES["interface_endpoint_zone_hour"] * hours,
        f"{endpoint_zones} endpoint-zones",
    )
    add("Load balancer", len(balancers) * PRICES["alb_hour"] * hours, f"{len(balancers)}")
    acls = of("aws:wafv2/webAcl:WebAcl")
    rules = sum(len(acl.inputs.get("rules") or []) for acl in acls)
    add(
        "WAF",
        len(acls) * PRICES["waf_web_acl_month"] + rules * PRICES["waf_rule_month"],
        f"{len(acls)} web ACL + {rules} rules",
    )
    add(*_aurora(of("aws:rds/cluster:Cluster"), of("aws:rds/clusterInstance:ClusterInstance")))
    groups = of("aws:elasticache/replicationGroup:ReplicationGroup")
    add(
        "ElastiCache",
        sum(
            g.inputs["numCacheClusters"] * PRICES["cache_node_hour"][g.inputs["nodeType"]] * hours
            for g in groups
        ),
        ", ".join(f"{int(g.inputs['numCacheClusters'])} x {g.inputs['nodeType']}" for g in groups),
    )
    add(*_fargate(of("aws:ecs/service:Service"), of("aws:ecs/taskDefinition:TaskDefinition")))
    keys = len(of("aws:kms/key:Key"))
    add("KMS keys", keys * PRICES["kms_key_month"], f"{keys}")
    # RDS keeps the master password in a secret of its own when it manages it.
    secrets = len(of("aws:secretsmanager/secret:Secret")) + sum(
        1 for c in of("aws:rds/cluster:Cluster") if c.inputs.get("manageMasterUserPassword")
    )
    add("Secrets Manager", secrets * PRICES["secret_month"], f"{secrets} secrets")
    alarm_metrics = sum(
        sum(1 for q in a.inputs["metricQueries"] if "metric" in q)
        if a.inputs.get("metricQueries")
        else 1
        for a in of("aws:cloudwatch/metricAlarm:MetricAlarm")
    ) + TARGET_TRACKING_ALARMS * sum(
        1
        for p in of("aws:appautoscaling/policy:Policy")
        if p.inputs["policyType"] == "TargetTrackingScaling"
    )
    add("Alarms", alarm_metrics * PRICES["alarm_metric_month"], f"{alarm_metrics} alarm metrics")
    dashboards = len(of("aws:cloudwatch/dashboard:Dashboard"))
    add("Dashboard", dashboards * PRICES["dashboard_month"], f"{dashboards} (free below 3)")
    add(*_container_insights(declared))
    add(*_application_metrics(of("aws:ecs/taskDefinition:TaskDefinition")))
    return lines


def total(lines: Iterable[Line]) -> float:
    return round(sum(line.usd for line in lines), 2)


def _aurora(clusters: list[Declared], instances: list[Declared]) -> tuple[str, float, str]:
    # Serverless v2 instances bill the cluster's minimum capacity while idle (0 when paused).
    min_acu = sum(
        c.inputs["serverlessv2ScalingConfiguration"]["minCapacity"] for c in clusters
    ) / max(len(clusters), 1)
    usd = len(instances) * min_acu * PRICES["aurora_acu_hour"] * HOURS_PER_MONTH
    return "Aurora Serverless v2", usd, f"{len(instances)} x {min_acu:g} ACU"


def _fargate(services: list[Declared], definitions: list[Declared]) -> tuple[str, float, str]:
    by_name = {d.name: d for d in definitions}
    usd, parts = 0.0, []
    for service in services:
        # The mocks' task definition ARNs end with the resource's logical name.
        definition = by_name[service.inputs["taskDefinition"].rsplit("/", 1)[-1]].inputs
        strategies = service.inputs.get("capacityProviderStrategies") or []
        provider = strategies[0]["capacityProvider"] if strategies else service.inputs["launchType"]
        architecture = definition["runtimePlatform"]["cpuArchitecture"]
        per_vcpu, per_gb = PRICES["fargate"][(architecture, provider)]
        vcpu, gb = int(definition["cpu"]) / 1024, int(definition["memory"]) / 1024
        tasks = int(service.inputs["desiredCount"])
        usd += tasks * (vcpu * per_vcpu + gb * per_gb) * HOURS_PER_MONTH
        parts.append(f"{service.name} {tasks} x {vcpu:g}/{gb:g} {architecture} {provider}")
    return "Fargate", usd, "; ".join(parts)


def _container_insights(declared: list[Declared]) -> tuple[str, float, str]:
    clusters = [r for r in declared if r.type == "aws:ecs/cluster:Cluster"]
    enabled = [
        c
        for c in clusters
        if {"name": "containerInsights", "value": "enabled"} in (c.inputs.get("settings") or [])
    ]
    if not enabled:
        return "Container Insights", 0.0, "off"
    services = sum(1 for r in declared if r.type == "aws:ecs/service:Service")
    families = sum(1 for r in declared if r.type == "aws:ecs/taskDefinition:TaskDefinition")
    metrics = CONTAINER_INSIGHTS_METRICS_PER_DIMENSION_SET * (len(enabled) + services + families)
    usd = metrics * PRICES["custom_metric_month"]
    return "Container Insights", usd, f"≈{metrics} metrics (estimate)"


def _application_metrics(definitions: list[Declared]) -> tuple[str, float, str]:
    """The metrics the collectors' EMF exporters publish: one series per declared metric and
    dimension set (the least a metric costs once emitted; more attribute values, more series)."""
    series: set[tuple[str, tuple[str, ...]]] = set()
    for definition in definitions:
        for container in json.loads(definition.inputs["containerDefinitions"]):
            for variable in container.get("environment") or []:
                if variable["name"] != "AOT_CONFIG_CONTENT":
                    continue
                emf = json.loads(variable["value"])["exporters"].get("awsemf", {})
                for declaration in emf.get("metric_declarations", []):
                    for selector in declaration["metric_name_selectors"]:
                        for dimensions in declaration["dimensions"]:
                            series.add((selector, tuple(dimensions)))
    usd = len(series) * PRICES["custom_metric_month"]
    return "Application metrics", usd, f"{len(series)} metric series"
