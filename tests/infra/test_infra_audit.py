"""The audit trail outside the database: its own log group, kept longer than the application
logs, which the API may only append to and nothing in the stack may delete or shorten."""

from __future__ import annotations

import json

from pulumi_harness import IAM_ROLE_POLICY, StackRun
from test_infra_iam import as_list, grants, statements

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# What would let someone with the stack's credentials erase or shorten the trail.
ERASING_ACTIONS = {
    "logs:DeleteLogGroup",
    "logs:DeleteLogStream",
    "logs:DeleteRetentionPolicy",
    "logs:PutRetentionPolicy",
    "logs:DisassociateKmsKey",
}


def test_the_audit_group_is_kept_longer_than_the_application_logs(stack: StackRun) -> None:
    group = stack.named(LOG_GROUP, "audit-logs").inputs
    assert group["name"] == f"/momentum/{stack.stack}/audit"
    assert group["retentionInDays"] == int(stack.setting("auditLogRetentionDays"))
    for workload in ("api", "generator", "video-worker", "migrate", "metrics"):
        app_group = stack.named(LOG_GROUP, f"{workload}-logs").inputs
        assert group["retentionInDays"] > app_group["retentionInDays"]
    if stack.stack == "prod":
        assert group["retentionInDays"] >= 365
    assert stack.exports["auditLogGroup"] == group["name"]


def test_only_the_api_appends_to_the_audit_group(stack: StackRun) -> None:
    audit_arn = stack.arn_of(LOG_GROUP, "audit-logs")
    for policy in stack.of_type(IAM_ROLE_POLICY):
        touching = {
            action
            for action, resources in grants(json.loads(policy.inputs["policy"])).items()
            if any(resource.startswith(audit_arn) for resource in resources)
        }
        if policy.name == "api-task":
            assert touching == {"logs:CreateLogStream", "logs:PutLogEvents"}
            (statement,) = [
                s
                for s in statements(json.loads(policy.inputs["policy"]))
                if f"{audit_arn}:*" in as_list(s["Resource"])
            ]
            assert as_list(statement["Resource"]) == [f"{audit_arn}:*"]
        else:
            assert touching == set(), policy.name


def test_the_api_is_told_to_send_audit_entries_there(stack: StackRun) -> None:
    group_name = stack.named(LOG_GROUP, "audit-logs").inputs["name"]
    for service in ("api", "generator", "video-worker", "migrate"):
        container = stack.containers(service)[service]
        env = {e["name"]: e["value"] for e in container["environment"]}
        if service == "api":
            assert env["MOMENTUM_AUDIT_SINK"] == "cloudwatch"
            assert env["MOMENTUM_AUDIT_LOG_GROUP"] == group_name
        else:
            assert "MOMENTUM_AUDIT_SINK" not in env


def test_nothing_in_the_stack_may_erase_logs(stack: StackRun) -> None:
    """No policy anywhere in the program grants deleting log groups or streams or changing
    retention, nor any logs action by wildcard."""
    found = []
    for resource in stack.resources:
        text = json.dumps(resource.inputs)
        for action in ERASING_ACTIONS | {"logs:*", "logs:Delete*", "logs:Put*"}:
            if f'\\"{action}\\"' in text or f'"{action}"' in text:
                found.append((resource.type, resource.name, action))
    assert found == []
