"""Least privilege: each role may do only what its process needs, on this stack's resources."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import RecordingMocks, StackRun

SERVICES = ("api", "generator", "video-worker")
# X-Ray's write and sampling APIs support no resource-level permissions.
RESOURCE_WILDCARD_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "ecr:GetAuthorizationToken",
}
TELEMETRY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
}
MEDIA = {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "kms:Decrypt", "kms:GenerateDataKey"}
# Only the generator relays the outbox (momentum_domain.notifications.relay).
MESSAGING = {"ses:SendEmail", "sns:Publish"}
BEDROCK = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
# The services read their database login from its secret at each new connection (it rotates).
DATABASE_LOGIN = {"secretsmanager:GetSecretValue", "kms:Decrypt"}
# What each process calls, from the issue: Bedrock for generation only, S3 on the media bucket,
# SES and SNS for notifications; deleting media is an API operation.
NEEDED_ACTIONS = {
    "api": TELEMETRY | MEDIA | DATABASE_LOGIN | {"s3:DeleteObject"},
    "generator": TELEMETRY | MEDIA | MESSAGING | DATABASE_LOGIN | BEDROCK,
    "video-worker": TELEMETRY | MEDIA | DATABASE_LOGIN,
}
NEEDED_APP_SECRETS = {
    "api": {
        "MOMENTUM_STRIPE_API_KEY",
        "MOMENTUM_STRIPE_WEBHOOK_SECRET",
        "MOMENTUM_HEYGEN_WEBHOOK_SECRET",
    },
    "generator": set(),
    "video-worker": {"MOMENTUM_HEYGEN_API_KEY"},
    "migrate": set(),
}


def statements(policy: dict) -> list[dict]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else found


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def grants(policy: dict) -> dict[str, set[str]]:
    """action -> resources it is allowed on."""
    result: dict[str, set[str]] = {}
    for statement in statements(policy):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            result.setdefault(action, set()).update(as_list(statement["Resource"]))
    return result


def assert_no_wildcards(policy: dict) -> None:
    for action, resources in grants(policy).items():
        assert "*" not in action, f"wildcard action {action}"
        if "*" in resources:
            assert action in RESOURCE_WILDCARD_ALLOWED, f"{action} allowed on every resource"


@pytest.mark.parametrize("service", SERVICES)
def test_task_role_allows_only_what_the_service_needs(stack: StackRun, service: str) -> None:
    policy = stack.policy(f"{service}-task")
    assert_no_wildcards(policy)
    assert set(grants(policy)) <= NEEDED_ACTIONS[service]


@pytest.mark.parametrize("service", SERVICES)
def test_task_role_resources_are_this_stacks(stack: StackRun, service: str) -> None:
    allowed = grants(stack.policy(f"{service}-task"))
    bucket = f"arn:aws:s3:::momentum-{stack.stack}-media-{stack.setting('accountId')}"
    for action, resources in allowed.items():
        if action == "s3:ListBucket":
            assert resources == {bucket}
        elif action.startswith("s3:"):
            assert resources == {f"{bucket}/*"}
        elif action == "kms:Decrypt":
            assert resources == {
                stack.arn_of("aws:kms/key:Key", "media-key"),
                stack.arn_of("aws:kms/key:Key", "db-key"),
            }
        elif action.startswith("kms:"):
            assert resources == {stack.arn_of("aws:kms/key:Key", "media-key")}
        elif action == "secretsmanager:GetSecretValue":
            assert resources == {app_secret_arn(stack)}
        elif action == "sns:Publish":
            assert resources == {stack.arn_of("aws:sns/topic:Topic", "notifications")}
        elif action.startswith("ses:"):
            assert resources == {stack.arn_of("aws:sesv2/emailIdentity:EmailIdentity", "sender")}
        elif action.startswith("logs:"):
            metrics_group = stack.arn_of("aws:cloudwatch/logGroup:LogGroup", "metrics-logs")
            # The API also appends to the audit trail (test_infra_audit.py).
            audit_group = stack.arn_of("aws:cloudwatch/logGroup:LogGroup", "audit-logs")
            appends_audit = service == "api" and action != "logs:DescribeLogStreams"
            assert resources == {f"{metrics_group}:*"} | (
                {f"{audit_group}:*"} if appends_audit else set()
            )


# Which models the generator may call: test_deployment_contract.py, from its settings.


def test_only_the_api_deletes_media(stack: StackRun) -> None:
    assert "s3:DeleteObject" in grants(stack.policy("api-task"))
    for service in ("generator", "video-worker"):
        assert "s3:DeleteObject" not in grants(stack.policy(f"{service}-task"))


def test_email_is_sent_only_from_the_configured_sender(stack: StackRun) -> None:
    for service in SERVICES:
        for statement in statements(stack.policy(f"{service}-task")):
            if "ses:SendEmail" in as_list(statement["Action"]):
                assert statement["Condition"] == {
                    "StringEquals": {"ses:FromAddress": stack.setting("sesSender")}
                }


@pytest.mark.parametrize("workload", [*SERVICES, "migrate"])
def test_execution_role_reads_only_its_own_image_logs_and_secrets(
    stack: StackRun, workload: str
) -> None:
    policy = stack.policy(f"{workload}-execution")
    assert_no_wildcards(policy)
    allowed = grants(policy)
    injected = stack.containers(workload)[workload]["secrets"]
    assert set(allowed) == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    } | ({"secretsmanager:GetSecretValue"} if injected else set()) | (
        # Only the migration task is given database secrets, which the database key encrypts.
        {"kms:Decrypt"} if workload == "migrate" else set()
    )
    repository = "api" if workload == "migrate" else workload
    assert allowed["ecr:BatchGetImage"] == {
        stack.arn_of("aws:ecr/repository:Repository", repository)
    }
    log_group = stack.arn_of("aws:cloudwatch/logGroup:LogGroup", f"{workload}-logs")
    assert allowed["logs:PutLogEvents"] == {f"{log_group}:*"}
    if workload == "migrate":
        assert allowed["kms:Decrypt"] == {stack.arn_of("aws:kms/key:Key", "db-key")}

    # The role can read exactly the secrets its task definition injects.
    secret_arns = {
        entry["valueFrom"].split(":username::")[0].split(":password::")[0] for entry in injected
    }
    assert allowed.get("secretsmanager:GetSecretValue", set()) == secret_arns
    app_secrets = {e["name"] for e in injected} - DATABASE_SECRETS
    assert app_secrets == NEEDED_APP_SECRETS[workload]


DATABASE_SECRETS = {
    "MOMENTUM_DATABASE_USER",
    "MOMENTUM_DATABASE_PASSWORD",
    "MOMENTUM_DATABASE_APP_USER",
    "MOMENTUM_DATABASE_APP_PASSWORD",
}


def app_secret_arn(stack: StackRun) -> str:
    return stack.arn_of("aws:secretsmanager/secret:Secret", "db-app-secret")


def test_only_the_migration_task_logs_in_as_the_master_user(stack: StackRun) -> None:
    master = stack.named("aws:rds/cluster:Cluster", "aurora")
    master_secret = RecordingMocks(stack).outputs_for(master)["masterUserSecrets"][0]["secretArn"]
    injected = {
        e["name"]: e["valueFrom"] for e in stack.containers("migrate")["migrate"]["secrets"]
    }
    # It migrates as the master user and provisions the application role with its password.
    assert injected == {
        "MOMENTUM_DATABASE_USER": f"{master_secret}:username::",
        "MOMENTUM_DATABASE_PASSWORD": f"{master_secret}:password::",
        "MOMENTUM_DATABASE_APP_USER": f"{app_secret_arn(stack)}:username::",
        "MOMENTUM_DATABASE_APP_PASSWORD": f"{app_secret_arn(stack)}:password::",
    }
    for service in SERVICES:
        container = stack.containers(service)[service]
        # No password is injected at start (it would go stale with the first rotation): the
        # service reads the application role's secret itself, and only that secret.
        assert not DATABASE_SECRETS & {e["name"] for e in container["secrets"]}
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["MOMENTUM_DATABASE_SECRET_ARN"] == app_secret_arn(stack)
        assert master_secret not in json.dumps(stack.policy(f"{service}-task"))
        assert master_secret not in json.dumps(stack.policy(f"{service}-execution"))


@pytest.mark.parametrize("service", SERVICES)
def test_services_decrypt_the_database_key_only_through_secrets_manager(
    stack: StackRun, service: str
) -> None:
    db_key = stack.arn_of("aws:kms/key:Key", "db-key")
    (statement,) = [
        s for s in statements(stack.policy(f"{service}-task")) if db_key in as_list(s["Resource"])
    ]
    assert as_list(statement["Action"]) == ["kms:Decrypt"]
    assert as_list(statement["Resource"]) == [db_key]
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:ViaService": f"secretsmanager.{stack.config['aws:region']}.amazonaws.com"
        }
    }


def test_roles_can_only_be_assumed_by_ecs_tasks_of_this_account(stack: StackRun) -> None:
    roles = stack.of_type("aws:iam/role:Role")
    assert len(roles) == 8  # an execution role and a task role per workload
    for role in roles:
        (statement,) = statements(json.loads(role.inputs["assumeRolePolicy"]))
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": stack.setting("accountId")
        }
    assert not stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
