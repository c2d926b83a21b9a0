"""The way in: load balancer, TLS, WAF and DNS, and the outputs an operator needs."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import ELB_ACCOUNT_ARN, StackRun

from momentum_api.__main__ import server_config
from momentum_domain.config import Settings

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"


def listeners(stack: StackRun) -> dict[int, dict]:
    return {int(r.inputs["port"]): r.inputs for r in stack.of_type(LISTENER)}


def test_waf_is_associated_with_the_load_balancer(stack: StackRun) -> None:
    (association,) = stack.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs["resourceArn"] == stack.arn_of(LOAD_BALANCER, "alb")
    assert association.inputs["webAclArn"] == stack.arn_of("aws:wafv2/webAcl:WebAcl", "waf")


def test_waf_runs_aws_managed_rules_and_a_rate_limit(stack: StackRun) -> None:
    acl = stack.named("aws:wafv2/webAcl:WebAcl", "waf").inputs
    assert acl["scope"] == "REGIONAL"
    assert acl["defaultAction"] == {"allow": {}}
    managed = {
        rule["statement"]["managedRuleGroupStatement"]["name"]
        for rule in acl["rules"]
        if "managedRuleGroupStatement" in rule["statement"]
    }
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= managed
    assert all(
        rule["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS"
        for rule in acl["rules"]
        if "managedRuleGroupStatement" in rule["statement"]
    )
    (rate,) = [r for r in acl["rules"] if "rateBasedStatement" in r["statement"]]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"]["limit"] == int(stack.setting("wafRateLimit"))
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    priorities = [rule["priority"] for rule in acl["rules"]]
    assert len(set(priorities)) == len(priorities)


def test_https_with_the_configured_certificate_and_http_redirects(stack: StackRun) -> None:
    by_port = listeners(stack)
    assert set(by_port) == {80, 443}
    https = by_port[443]
    assert https["protocol"] == "HTTPS"
    assert https["certificateArn"] == stack.setting("certificateArn")
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert https["defaultActions"][0]["type"] == "forward"
    assert https["defaultActions"][0]["targetGroupArn"] == stack.arn_of(
        "aws:lb/targetGroup:TargetGroup", "api"
    )
    (redirect,) = by_port[80]["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}


def test_target_group_checks_readiness_on_the_api_port(stack: StackRun) -> None:
    group = stack.named("aws:lb/targetGroup:TargetGroup", "api").inputs
    assert group["port"] == 8000
    assert group["targetType"] == "ip"
    assert group["healthCheck"]["path"] == "/health/ready"
    service = stack.named("aws:ecs/service:Service", "api").inputs
    assert service["loadBalancers"] == [
        {
            "targetGroupArn": stack.arn_of("aws:lb/targetGroup:TargetGroup", "api"),
            "containerName": "api",
            "containerPort": 8000,
        }
    ]


def test_api_keeps_idle_connections_longer_than_the_load_balancer(
    stack: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the ALB sends a request down a connection the API has just closed: a 502."""
    idle_timeout = int(stack.named(LOAD_BALANCER, "alb").inputs["idleTimeout"])
    container = stack.containers("api")["api"]
    task_environment = {v["name"]: v["value"] for v in container["environment"]}
    # The server the task starts, configured from the task's environment (or the default).
    name = "MOMENTUM_API_KEEP_ALIVE_SECONDS"
    if name in task_environment:
        monkeypatch.setenv(name, task_environment[name])
    else:
        monkeypatch.delenv(name, raising=False)
    keep_alive = server_config(Settings(_env_file=None), argv=[]).timeout_keep_alive
    assert keep_alive > idle_timeout


def test_load_balancer_appends_the_client_address_it_saw(stack: StackRun) -> None:
    """What momentum_api.origin relies on to find the client behind the balancer."""
    alb = stack.named(LOAD_BALANCER, "alb").inputs
    assert alb["xffHeaderProcessingMode"] == "append"
    assert alb["enableXffClientPort"] is False


def test_access_logs_go_to_a_bucket_only_elb_may_write(stack: StackRun) -> None:
    alb = stack.named(LOAD_BALANCER, "alb").inputs
    bucket = stack.named("aws:s3/bucket:Bucket", "alb-logs").inputs["bucket"]
    assert alb["accessLogs"] == {"bucket": bucket, "prefix": "alb", "enabled": True}
    assert alb["dropInvalidHeaderFields"] is True
    policy = json.loads(
        stack.named("aws:s3/bucketPolicy:BucketPolicy", "alb-logs-policy").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": ELB_ACCOUNT_ARN}
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == (
        f"arn:aws:s3:::{bucket}/alb/AWSLogs/{stack.setting('accountId')}/*"
    )


def test_api_domain_points_at_the_load_balancer(stack: StackRun) -> None:
    record = stack.named("aws:route53/record:Record", "api-dns").inputs
    assert record["zoneId"] == stack.setting("hostedZoneId")
    assert record["name"] == stack.setting("apiDomain")
    assert record["type"] == "A"
    assert record["aliases"][0]["name"].startswith(f"momentum-{stack.stack}-alb.")


def test_outputs_an_operator_needs(stack: StackRun) -> None:
    exports = stack.exports
    assert exports["apiUrl"] == f"https://{stack.setting('apiDomain')}"
    assert exports["mediaBucket"] == f"momentum-{stack.stack}-media-{stack.setting('accountId')}"
    assert exports["userPoolId"] == stack.named("aws:cognito/userPool:UserPool", "users").id
    assert (
        exports["userPoolClientId"]
        == stack.named("aws:cognito/userPoolClient:UserPoolClient", "frontend").id
    )
    assert exports["dashboardUrl"].endswith(
        f"#dashboards/dashboard/momentum-{stack.stack}-overview"
    )
    assert exports["imageTag"] == "3f2c1a9"
