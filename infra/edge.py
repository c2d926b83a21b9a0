"""Edge: the internet-facing load balancer, its WAF, TLS and DNS.

The ALB is the only resource open to the internet, and only on 80 (redirected to HTTPS) and
443. It forwards to the API tasks on their container port, and writes access logs to a bucket
that only the regional Elastic Load Balancing account may write to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from storage import make_private

HTTP, HTTPS = 80, 443
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ACCESS_LOG_PREFIX = "alb"
# The API's keep-alive must outlast it (MOMENTUM_API_KEEP_ALIVE_SECONDS), or the ALB reuses a
# connection the API has just closed and answers 502.
ALB_IDLE_TIMEOUT_SECONDS = 60
# AWS managed rule groups, in evaluation order after the IP reputation list.
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
)
# The common rule set blocks bodies over 8 KB; the API enforces its own body limit, and course
# edits are larger than that, so this one rule only counts.
COUNT_ONLY_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}


@dataclass(frozen=True)
class EdgeArgs:
    prefix: str
    account_id: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    api_security_group_id: pulumi.Input[str]
    api_port: int
    health_check_path: str
    certificate_arn: str
    domain: str
    hosted_zone_id: str
    waf_rate_limit: int
    access_log_retention_days: int
    protect: bool


class Edge(pulumi.ComponentResource):
    api_url: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    # A service registering with the target group must wait for them: ECS refuses a target
    # group that no listener attaches to a load balancer yet.
    listeners: list[aws.lb.Listener]

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("momentum:infra:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        logs_policy = self._access_log_bucket(args)

        group = aws.ec2.SecurityGroup(
            "alb-sg",
            name=f"{args.prefix}-alb",
            description="Internet-facing load balancer",
            vpc_id=args.vpc_id,
            tags={"Name": f"{args.prefix}-alb"},
            opts=child,
        )
        for port in (HTTP, HTTPS):
            aws.vpc.SecurityGroupIngressRule(
                f"alb-from-internet-{port}",
                security_group_id=group.id,
                description=f"Port {port} from the internet",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0",
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            "alb-to-api",
            security_group_id=group.id,
            description="API tasks",
            ip_protocol="tcp",
            from_port=args.api_port,
            to_port=args.api_port,
            referenced_security_group_id=args.api_security_group_id,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            "api-from-alb",
            security_group_id=args.api_security_group_id,
            description="Load balancer to API tasks",
            ip_protocol="tcp",
            from_port=args.api_port,
            to_port=args.api_port,
            referenced_security_group_id=group.id,
            opts=child,
        )

        alb = aws.lb.LoadBalancer(
            "alb",
            name=f"{args.prefix}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[group.id],
            subnets=list(args.public_subnet_ids),
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.protect,
            idle_timeout=ALB_IDLE_TIMEOUT_SECONDS,
            # The API takes the right-most X-Forwarded-For hop it does not trust as the client:
            # the balancer must append the address it saw, without a port.
            xff_header_processing_mode="append",
            enable_xff_client_port=False,
            access_logs={
                "bucket": logs_policy.bucket,
                "prefix": ACCESS_LOG_PREFIX,
                "enabled": True,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs_policy]),
        )
        target_group = aws.lb.TargetGroup(
            "api",
            name=f"{args.prefix}-api",
            port=args.api_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check={
                "path": args.health_check_path,
                "matcher": "200",
                "interval": 15,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            opts=child,
        )
        https = aws.lb.Listener(
            "https",
            load_balancer_arn=alb.arn,
            port=HTTPS,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            opts=child,
        )
        http = aws.lb.Listener(
            "http",
            load_balancer_arn=alb.arn,
            port=HTTP,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {
                        "protocol": "HTTPS",
                        "port": str(HTTPS),
                        "status_code": "HTTP_301",
                    },
                }
            ],
            opts=child,
        )

        web_acl = aws.wafv2.WebAcl(
            "waf",
            name=f"{args.prefix}-api",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=[*_managed_rules(), _rate_limit_rule(args.waf_rate_limit)],
            visibility_config=_visibility(f"{args.prefix}-api"),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            "waf-alb", resource_arn=alb.arn, web_acl_arn=web_acl.arn, opts=child
        )
        aws.route53.Record(
            "api-dns",
            zone_id=args.hosted_zone_id,
            name=args.domain,
            type="A",
            aliases=[
                {"name": alb.dns_name, "zone_id": alb.zone_id, "evaluate_target_health": True}
            ],
            opts=child,
        )

        self.api_url = pulumi.Output.from_input(f"https://{args.domain}")
        self.load_balancer_arn = alb.arn
        self.load_balancer_arn_suffix = alb.arn_suffix
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.listeners = [https, http]
        self.register_outputs(
            {
                "api_url": self.api_url,
                "load_balancer_dns_name": alb.dns_name,
                "web_acl_arn": web_acl.arn,
            }
        )

    def _access_log_bucket(self, args: EdgeArgs) -> aws.s3.BucketPolicy:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            "alb-logs",
            bucket=f"{args.prefix}-alb-logs-{args.account_id}",
            force_destroy=not args.protect,
            opts=child,
        )
        make_private("alb-logs", bucket, opts=child)
        # Load balancer access logs only support S3-managed keys.
        aws.s3.BucketServerSideEncryptionConfiguration(
            "alb-logs-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            "alb-logs-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.access_log_retention_days},
                }
            ],
            opts=child,
        )
        elb_account = aws.elb.get_service_account(opts=pulumi.InvokeOptions(parent=self))
        policy = pulumi.Output.all(bucket.arn, elb_account.arn).apply(
            lambda values: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "LoadBalancerAccessLogs",
                            "Effect": "Allow",
                            "Principal": {"AWS": values[1]},
                            "Action": "s3:PutObject",
                            "Resource": (
                                f"{values[0]}/{ACCESS_LOG_PREFIX}/AWSLogs/{args.account_id}/*"
                            ),
                        }
                    ],
                }
            )
        )
        return aws.s3.BucketPolicy("alb-logs-policy", bucket=bucket.id, policy=policy, opts=child)


def _visibility(metric_name: str) -> dict[str, object]:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name,
        "sampled_requests_enabled": True,
    }


def _managed_rules() -> list[dict[str, object]]:
    return [
        {
            "name": group,
            "priority": priority,
            "override_action": {"none": {}},
            "statement": {
                "managed_rule_group_statement": {
                    "vendor_name": "AWS",
                    "name": group,
                    "rule_action_overrides": [
                        {"name": rule, "action_to_use": {"count": {}}}
                        for rule in COUNT_ONLY_RULES.get(group, ())
                    ],
                }
            },
            "visibility_config": _visibility(group),
        }
        for priority, group in enumerate(MANAGED_RULE_GROUPS)
    ]


def _rate_limit_rule(limit: int) -> dict[str, object]:
    return {
        "name": "rate-limit-per-ip",
        "priority": len(MANAGED_RULE_GROUPS),
        "action": {"block": {}},
        "statement": {
            "rate_based_statement": {
                "limit": limit,
                "aggregate_key_type": "IP",
                "evaluation_window_sec": 300,
            }
        },
        "visibility_config": _visibility("rate-limit-per-ip"),
    }
