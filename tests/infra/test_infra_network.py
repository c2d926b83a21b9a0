"""Who can reach what: security groups, subnets and public addresses, for every stack."""

from __future__ import annotations

import ipaddress
import json

import pytest
from pulumi_harness import (
    ACCOUNT_CONFIG,
    DEPLOY_TIME_CONFIG,
    NAT_AMI,
    StackRun,
    run_program,
    stack_file_config,
)

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
SERVICE_GROUPS = {"api", "generator", "video-worker"}


def group_id(stack: StackRun, logical_name: str) -> str:
    return stack.named(SECURITY_GROUP, logical_name).id


def ingress_into(stack: StackRun, logical_name: str) -> list[dict]:
    target = group_id(stack, logical_name)
    return [r.inputs for r in stack.of_type(INGRESS) if r.inputs["securityGroupId"] == target]


def source_names(stack: StackRun, rules: list[dict]) -> set[str]:
    return {stack.by_id(rule["referencedSecurityGroupId"]).name for rule in rules}


def private_subnet_ids(stack: StackRun) -> set[str]:
    return {s.id for s in stack.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "private"}


def test_security_groups_declare_no_inline_rules(stack: StackRun) -> None:
    # Every open port is a separate rule resource, so the checks below see all of them.
    for group in stack.of_type(SECURITY_GROUP):
        assert "ingress" not in group.inputs, group.name
        assert "egress" not in group.inputs, group.name


def test_database_accepts_only_the_services_on_postgres_port(stack: StackRun) -> None:
    rules = ingress_into(stack, "db-sg")
    assert rules
    assert all(rule["fromPort"] == rule["toPort"] == 5432 for rule in rules)
    assert all("cidrIpv4" not in rule and "cidrIpv6" not in rule for rule in rules)
    # The services, the migration task and the application role's rotation function.
    assert source_names(stack, rules) == {
        f"{name}-sg" for name in SERVICE_GROUPS | {"migrate", "db-rotation"}
    }
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora")
    assert cluster.inputs["vpcSecurityGroupIds"] == [group_id(stack, "db-sg")]
    assert cluster.inputs["port"] == 5432


def test_cache_accepts_only_the_services_on_redis_ports(stack: StackRun) -> None:
    rules = ingress_into(stack, "cache-sg")
    assert rules
    assert all(rule["fromPort"] == 6379 and rule["toPort"] == 6379 for rule in rules)
    assert all("cidrIpv4" not in rule and "cidrIpv6" not in rule for rule in rules)
    assert source_names(stack, rules) == {f"{name}-sg" for name in SERVICE_GROUPS}
    cache = stack.named("aws:elasticache/replicationGroup:ReplicationGroup", "cache")
    assert cache.inputs["securityGroupIds"] == [group_id(stack, "cache-sg")]


def test_only_the_load_balancer_is_open_to_the_internet_on_80_and_443(stack: StackRun) -> None:
    open_rules = [
        rule.inputs
        for rule in stack.of_type(INGRESS)
        if "cidrIpv4" in rule.inputs or "cidrIpv6" in rule.inputs or "prefixListId" in rule.inputs
    ]
    assert {stack.by_id(rule["securityGroupId"]).name for rule in open_rules} == {"alb-sg"}
    assert sorted((rule["fromPort"], rule["toPort"]) for rule in open_rules) == [
        (80, 80),
        (443, 443),
    ]
    alb = stack.named("aws:lb/loadBalancer:LoadBalancer", "alb")
    assert alb.inputs["internal"] is False
    assert alb.inputs["securityGroups"] == [group_id(stack, "alb-sg")]


def test_api_tasks_accept_traffic_only_from_the_load_balancer(stack: StackRun) -> None:
    rules = ingress_into(stack, "api-sg")
    assert source_names(stack, rules) == {"alb-sg"}
    assert all(rule["fromPort"] == rule["toPort"] == 8000 for rule in rules)
    for worker in ("generator-sg", "video-worker-sg", "migrate-sg"):
        assert ingress_into(stack, worker) == []


def test_nothing_in_the_private_tier_has_a_public_ip(stack: StackRun) -> None:
    private = private_subnet_ids(stack)
    assert len(private) == int(stack.setting("azCount"))
    for subnet in stack.of_type(SUBNET):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False, subnet.name
    for service in stack.of_type("aws:ecs/service:Service"):
        network = service.inputs["networkConfiguration"]
        assert network["assignPublicIp"] is False, service.name
        assert set(network["subnets"]) == private, service.name
    for instance in stack.of_type("aws:rds/clusterInstance:ClusterInstance"):
        assert instance.inputs["publiclyAccessible"] is False
    assert set(
        stack.named("aws:rds/subnetGroup:SubnetGroup", "db-subnets").inputs["subnetIds"]
    ) == (private)
    cache_subnets = stack.named("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets")
    assert set(cache_subnets.inputs["subnetIds"]) == private
    cache = stack.named("aws:elasticache/replicationGroup:ReplicationGroup", "cache")
    assert cache.inputs["subnetGroupName"] == cache_subnets.inputs["name"]
    migration = stack.exports["migrationNetworkConfiguration"]["awsvpcConfiguration"]
    assert migration["assignPublicIp"] == "DISABLED"
    assert set(migration["subnets"]) == private


def test_load_balancer_sits_in_the_public_subnets(stack: StackRun) -> None:
    public = {s.id for s in stack.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "public"}
    alb = stack.named("aws:lb/loadBalancer:LoadBalancer", "alb")
    assert set(alb.inputs["subnets"]) == public
    assert len(public) == int(stack.setting("azCount"))


def test_the_api_believes_forwarded_addresses_only_from_the_load_balancers_subnets(
    stack: StackRun,
) -> None:
    """The API takes X-Forwarded-For only from a peer in MOMENTUM_API_TRUSTED_PROXIES: the
    load balancer's nodes, in the public subnets, must be inside it, and nothing public."""
    api = stack.containers("api")["api"]
    env = {variable["name"]: variable["value"] for variable in api["environment"]}
    trusted = [ipaddress.ip_network(c) for c in json.loads(env["MOMENTUM_API_TRUSTED_PROXIES"])]
    assert trusted
    assert all(network.is_private for network in trusted)
    public = [s for s in stack.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "public"]
    for subnet in public:
        block = ipaddress.ip_network(subnet.inputs["cidrBlock"])
        assert any(block.subnet_of(network) for network in trusted), block


def nat_count(stack: StackRun) -> int:
    per_zone = stack.setting("natGatewayPerAz") == "true"
    return int(stack.setting("azCount")) if per_zone else 1


def private_routes(stack: StackRun) -> list[dict]:
    tables = [
        t for t in stack.of_type("aws:ec2/routeTable:RouteTable") if t.name.startswith("private-")
    ]
    assert len(tables) == int(stack.setting("azCount"))
    return [route for table in tables for route in table.inputs["routes"]]


def test_nat_one_per_zone_only_where_configured(stack: StackRun) -> None:
    assert (stack.setting("natGatewayPerAz") == "true") is (stack.stack == "prod")
    # NAT instances everywhere: a t4g.nano costs a twelfth of a gateway's hour and nothing per GB.
    assert stack.setting("natMode") == "instance"


def test_nat_instances_forward_the_private_zones_traffic(stack: StackRun) -> None:
    instances = stack.of_type("aws:ec2/instance:Instance")
    assert len(instances) == nat_count(stack)
    assert stack.of_type("aws:ec2/natGateway:NatGateway") == []
    public = {s.id for s in stack.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "public"}
    eips = stack.of_type("aws:ec2/eip:Eip")
    for instance in instances:
        inputs = instance.inputs
        assert inputs["instanceType"] == "t4g.nano"
        assert inputs["ami"] == NAT_AMI
        assert inputs["sourceDestCheck"] is False
        assert inputs["subnetId"] in public
        assert inputs["metadataOptions"]["httpTokens"] == "required"
        assert inputs["rootBlockDevice"]["encrypted"] is True
        assert "net.ipv4.ip_forward = 1" in inputs["userData"]
        assert "-j MASQUERADE" in inputs["userData"]
        assert inputs["vpcSecurityGroupIds"] == [group_id(stack, "nat-sg")]
        assert [e.inputs["instance"] for e in eips if e.name == instance.name] == [instance.id]
    assert any(token == "aws:ssm/getParameter:getParameter" for token, _ in stack.calls)
    # Every private zone routes to a NAT instance's interface, its own zone's where there is one.
    targets = [route["networkInterfaceId"] for route in private_routes(stack)]
    assert set(targets) == {f"eni-{instance.name}" for instance in instances}
    # It accepts HTTPS from the workloads only (what they send out), and sends HTTPS out.
    rules = ingress_into(stack, "nat-sg")
    assert all(rule["fromPort"] == rule["toPort"] == 443 for rule in rules)
    assert source_names(stack, rules) == {
        f"{name}-sg" for name in SERVICE_GROUPS | {"migrate", "db-rotation"}
    }


def test_nat_gateways_and_interface_endpoints_when_configured() -> None:
    config = {**stack_file_config("dev"), **ACCOUNT_CONFIG, **DEPLOY_TIME_CONFIG}
    config |= {"momentum:natMode": "gateway", "momentum:interfaceEndpoints": "true"}
    run = run_program("dev", config)
    gateways = run.of_type("aws:ec2/natGateway:NatGateway")
    assert len(gateways) == 1
    assert run.of_type("aws:ec2/instance:Instance") == []
    assert {route["natGatewayId"] for route in private_routes(run)} == {gateways[0].id}
    endpoints = {
        e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1."): e.inputs
        for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert set(endpoints) == {"s3", "ecr.api", "ecr.dkr", "secretsmanager", "logs"}
    for name in ("ecr.api", "ecr.dkr", "secretsmanager", "logs"):
        assert endpoints[name]["vpcEndpointType"] == "Interface"
        assert endpoints[name]["privateDnsEnabled"] is True
        assert set(endpoints[name]["subnetIds"]) == private_subnet_ids(run)


def test_a_nat_mode_the_program_does_not_know_is_refused() -> None:
    config = {**stack_file_config("dev"), **ACCOUNT_CONFIG, **DEPLOY_TIME_CONFIG}
    with pytest.raises(ValueError, match="natMode"):
        run_program("dev", config | {"momentum:natMode": "nat-gateway"})


def test_the_s3_gateway_endpoint_is_always_there_and_interface_endpoints_where_configured(
    stack: StackRun,
) -> None:
    endpoints = {
        e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1."): e.inputs
        for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert endpoints["s3"]["vpcEndpointType"] == "Gateway"
    # Free, and it keeps media traffic off the NAT.
    assert len(endpoints["s3"]["routeTableIds"]) == int(stack.setting("azCount"))
    # They carry no endpoint policy, so without a NAT gateway's per-GB charge to avoid they
    # would only add $7.30 per zone a month each.
    assert stack.setting("interfaceEndpoints") == "false"
    assert set(endpoints) == {"s3"}
