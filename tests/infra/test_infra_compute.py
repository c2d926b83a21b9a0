"""Services, their task definitions, the migration task and autoscaling, for every stack."""

from __future__ import annotations

import json
import re

import pytest
from pulumi_harness import DEPLOY_TIME_CONFIG, TASK_DEFINITION, StackRun

from momentum_domain import metric_names

SERVICES = ("api", "generator", "video-worker")
SIZE_KEYS = {"api": "api", "generator": "generator", "video-worker": "videoWorker"}
IMAGE_TAG = DEPLOY_TIME_CONFIG["momentum:imageTag"]


def environment(stack: StackRun, workload: str) -> dict[str, str]:
    container = stack.containers(workload)[workload]
    return {variable["name"]: variable["value"] for variable in container["environment"]}


def image_of(stack: StackRun, repository: str) -> str:
    return f"{stack.exports['ecrRepositories'][repository]}:{IMAGE_TAG}"


def test_container_insights_only_where_configured(stack: StackRun) -> None:
    cluster = stack.named("aws:ecs/cluster:Cluster", "cluster").inputs
    enabled = stack.setting("containerInsights") == "true"
    value = "enabled" if enabled else "disabled"
    assert cluster["settings"] == [{"name": "containerInsights", "value": value}]
    # About $19 a month of metrics: prod only.
    assert enabled is (stack.stack == "prod")


@pytest.mark.parametrize("service", SERVICES)
def test_workers_run_on_the_configured_capacity_and_the_api_on_demand(
    stack: StackRun, service: str
) -> None:
    capacity = stack.named(
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster-capacity"
    )
    assert capacity.inputs["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert capacity.inputs["clusterName"] == stack.exports["clusterName"]
    ecs_service = stack.named("aws:ecs/service:Service", service).inputs
    platform = stack.named(TASK_DEFINITION, service).inputs["runtimePlatform"]
    if service == "api":
        assert ecs_service["launchType"] == "FARGATE"
        assert "capacityProviderStrategies" not in ecs_service
        assert platform["cpuArchitecture"] == stack.setting("cpuArchitecture")
    else:
        assert "launchType" not in ecs_service
        provider = stack.setting("workerCapacity")
        assert ecs_service["capacityProviderStrategies"] == [
            {"capacityProvider": provider, "weight": 1}
        ]
        # Fargate Spot offers no ARM64 capacity.
        expected = "X86_64" if provider == "FARGATE_SPOT" else stack.setting("cpuArchitecture")
        assert platform["cpuArchitecture"] == expected
    assert platform["operatingSystemFamily"] == "LINUX"


def test_the_migration_runs_on_the_configured_architecture(stack: StackRun) -> None:
    platform = stack.named(TASK_DEFINITION, "migrate").inputs["runtimePlatform"]
    assert platform["cpuArchitecture"] == stack.setting("cpuArchitecture")


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_its_image_with_the_deployed_tag_sized_from_config(
    stack: StackRun, service: str
) -> None:
    key = SIZE_KEYS[service]
    task = stack.named("aws:ecs/taskDefinition:TaskDefinition", service).inputs
    assert task["cpu"] == stack.setting(f"{key}Cpu")
    assert task["memory"] == stack.setting(f"{key}Memory")
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert stack.containers(service)[service]["image"] == image_of(stack, service)
    ecs_service = stack.named("aws:ecs/service:Service", service).inputs
    assert ecs_service["desiredCount"] == int(stack.setting(f"{key}MinTasks"))
    assert ecs_service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


@pytest.mark.parametrize("service", SERVICES)
def test_service_gets_the_platform_configuration(stack: StackRun, service: str) -> None:
    env = environment(stack, service)
    assert env["MOMENTUM_ENV"] == stack.stack
    assert env["MOMENTUM_AWS_REGION"] == stack.config["aws:region"]
    assert env["MOMENTUM_DATABASE_HOST"].startswith(f"momentum-{stack.stack}-aurora.cluster-")
    assert env["MOMENTUM_DATABASE_NAME"] == "momentum"
    assert env["MOMENTUM_REDIS_URL"].startswith("rediss://")
    assert env["MOMENTUM_STORAGE_BACKEND"] == "s3"
    assert env["MOMENTUM_STORAGE_BUCKET"] == stack.exports["mediaBucket"]
    assert env["MOMENTUM_VIDEO_PROVIDER"] == "heygen"
    assert env["MOMENTUM_OTEL_EXPORTER"] == "otlp"
    assert env["MOMENTUM_OTEL_ENDPOINT"] == "http://localhost:4317"
    # Secrets never travel as plain environment variables.
    assert not {"MOMENTUM_DATABASE_PASSWORD", "MOMENTUM_HEYGEN_API_KEY"} & set(env)


# Variables only one service reads, and which: no service gets another's settings.
ONLY_FOR = {
    "api": {"MOMENTUM_AUTH_JWKS_URL", "MOMENTUM_AUTH_ISSUER", "MOMENTUM_AUTH_AUDIENCE",
            "MOMENTUM_AUTH_USERINFO_URL", "MOMENTUM_CORS_ORIGINS", "MOMENTUM_FRONTEND_URL",
            "MOMENTUM_API_TRUSTED_PROXIES", "MOMENTUM_STRIPE_PRICE_PREMIUM_MONTHLY"},
    "generator": {"MOMENTUM_LLM_PROVIDER", "MOMENTUM_LLM_MODEL_ID", "MOMENTUM_IMAGE_MODEL_ID",
                  "MOMENTUM_NOTIFY_BACKEND", "MOMENTUM_SES_SENDER", "MOMENTUM_SNS_TOPIC_ARN"},
    "video-worker": {"MOMENTUM_HEYGEN_AVATAR_ID", "MOMENTUM_HEYGEN_VOICE_ID"},
}  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_only_its_own_settings(stack: StackRun, service: str) -> None:
    env = environment(stack, service)
    assert ONLY_FOR[service] <= set(env)
    for other, variables in ONLY_FOR.items():
        if other != service:
            assert not variables & set(env), (service, variables & set(env))


def test_the_api_knows_its_identity_provider(stack: StackRun) -> None:
    env = environment(stack, "api")
    issuer = env["MOMENTUM_AUTH_ISSUER"]
    assert issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{stack.exports['userPoolId']}"
    assert env["MOMENTUM_AUTH_JWKS_URL"] == f"{issuer}/.well-known/jwks.json"
    assert env["MOMENTUM_AUTH_AUDIENCE"] == stack.exports["userPoolClientId"]


def test_the_generator_knows_its_models_and_where_to_notify(stack: StackRun) -> None:
    env = environment(stack, "generator")
    assert env["MOMENTUM_LLM_PROVIDER"] == "bedrock"
    assert env["MOMENTUM_LLM_MODEL_ID"] == stack.setting("llmModelId")
    assert env["MOMENTUM_IMAGE_MODEL_ID"] == stack.setting("imageModelId")
    assert env["MOMENTUM_NOTIFY_BACKEND"] == "aws"
    assert env["MOMENTUM_SES_SENDER"] == stack.setting("sesSender")
    assert env["MOMENTUM_SNS_TOPIC_ARN"] == stack.arn_of("aws:sns/topic:Topic", "notifications")
    # The draft's link in the notification.
    assert env["MOMENTUM_API_PUBLIC_URL"] == f"https://{stack.setting('apiDomain')}"


def test_api_listens_on_all_interfaces_behind_the_load_balancer(stack: StackRun) -> None:
    env = environment(stack, "api")
    assert env["MOMENTUM_API_HOST"] == "0.0.0.0"  # noqa: S104 - the task's own interface
    assert env["MOMENTUM_API_PORT"] == "8000"
    assert env["MOMENTUM_API_PUBLIC_URL"] == f"https://{stack.setting('apiDomain')}"
    assert json.loads(env["MOMENTUM_CORS_ORIGINS"]) == [stack.setting("frontendOrigin")]
    (port,) = stack.containers("api")["api"]["portMappings"]
    assert port["containerPort"] == 8000


def test_api_asks_the_user_pool_domains_userinfo_for_new_users_emails(stack: StackRun) -> None:
    # Cognito access tokens carry no email: the API asks userInfo, on the pool's own domain.
    domain = stack.named("aws:cognito/userPoolDomain:UserPoolDomain", "hosted-ui").inputs
    assert domain["domain"] == stack.setting("authDomainPrefix")
    region = stack.config["aws:region"]
    assert environment(stack, "api")["MOMENTUM_AUTH_USERINFO_URL"] == (
        f"https://{domain['domain']}.auth.{region}.amazoncognito.com/oauth2/userInfo"
    )
    # userInfo answers only tokens with openid, and gives the email only with email (or openid
    # alone): the app client must be allowed to ask for both, through the hosted sign-in.
    client = stack.named("aws:cognito/userPoolClient:UserPoolClient", "frontend").inputs
    assert {"openid", "email"} <= set(client["allowedOauthScopes"])
    assert client["allowedOauthFlows"] == ["code"]
    assert client["allowedOauthFlowsUserPoolClient"] is True


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_ships_telemetry_through_a_collector_sidecar(
    stack: StackRun, service: str
) -> None:
    containers = stack.containers(service)
    collector = containers["otel-collector"]
    # Pinned by digest: a re-pushed tag cannot change what runs.
    assert re.fullmatch(r"\S+:v[\d.]+@sha256:[0-9a-f]{64}", collector["image"])
    config = json.loads(
        next(v["value"] for v in collector["environment"] if v["name"] == "AOT_CONFIG_CONTENT")
    )
    assert set(config["exporters"]) == {"awsxray", "awsemf"}
    assert config["exporters"]["awsemf"]["namespace"] == f"Momentum/{stack.stack}"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["awsxray"]
    assert config["service"]["pipelines"]["metrics"]["exporters"] == ["awsemf"]
    app = containers[service]
    assert app["dependsOn"] == [{"containerName": "otel-collector", "condition": "START"}]
    assert app["healthCheck"]["command"][0] == "CMD"
    assert app["readonlyRootFilesystem"] is True


def test_worker_health_checks_use_the_module_health_flag(stack: StackRun) -> None:
    generator = stack.containers("generator")["generator"]["healthCheck"]["command"]
    video_worker = stack.containers("video-worker")["video-worker"]["healthCheck"]["command"]
    assert generator == ["CMD", "python", "-m", "momentum_generator", "--health"]
    assert video_worker == ["CMD", "python", "-m", "momentum_video_worker", "--health"]


def test_migration_task_runs_the_domain_migrations_on_the_api_image(stack: StackRun) -> None:
    (container,) = stack.containers("migrate").values()
    assert container["command"] == ["python", "-m", "momentum_domain.migrations", "upgrade"]
    assert container["image"] == image_of(stack, "api")
    task = stack.named("aws:ecs/taskDefinition:TaskDefinition", "migrate").inputs
    # Its one AWS call: the application role's secret, read during a rotation.
    assert task["taskRoleArn"] == stack.arn_of("aws:iam/role:Role", "migrate-task-role")
    statements = stack.policy("migrate-task")["Statement"]
    assert [s["Action"] for s in statements] == [["secretsmanager:GetSecretValue"], ["kms:Decrypt"]]
    app_secret = stack.arn_of("aws:secretsmanager/secret:Secret", "db-app-secret")
    assert statements[0]["Resource"] == [app_secret]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["MOMENTUM_DATABASE_SECRET_ARN"] == app_secret
    assert stack.exports["migrationTaskDefinitionArn"] == stack.arn_of(
        "aws:ecs/taskDefinition:TaskDefinition", "migrate"
    )
    # The migration is a one-off task, never a long-running service.
    assert "migrate" not in {s.name for s in stack.of_type("aws:ecs/service:Service")}


def test_task_definition_revisions_are_kept_for_rollback(stack: StackRun) -> None:
    for task in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert task.inputs["skipDestroy"] is True, task.name


def test_images_are_immutable_and_scanned(stack: StackRun) -> None:
    repositories = stack.of_type("aws:ecr/repository:Repository")
    assert {r.inputs["name"] for r in repositories} == {
        f"momentum-{stack.stack}-{service}" for service in SERVICES
    }
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}


@pytest.mark.parametrize("service", SERVICES)
def test_scaling_bounds_come_from_config(stack: StackRun, service: str) -> None:
    key = SIZE_KEYS[service]
    target = stack.named("aws:appautoscaling/target:Target", f"{service}-target").inputs
    assert target["minCapacity"] == int(stack.setting(f"{key}MinTasks"))
    assert target["maxCapacity"] == int(stack.setting(f"{key}MaxTasks"))
    assert target["resourceId"] == f"service/momentum-{stack.stack}/{service}"


def test_api_scales_on_cpu_and_requests(stack: StackRun) -> None:
    policies = {p.name: p.inputs for p in stack.of_type("aws:appautoscaling/policy:Policy")}
    cpu = policies["api-cpu"]["targetTrackingScalingPolicyConfiguration"]
    requests = policies["api-requests"]["targetTrackingScalingPolicyConfiguration"]
    assert cpu["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    assert requests["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "ALBRequestCountPerTarget"
    )
    assert requests["predefinedMetricSpecification"]["resourceLabel"] == (
        f"app/momentum-{stack.stack}-alb/50dc6c495c0c9188/"
        f"targetgroup/momentum-{stack.stack}-api/73e2d6bc24d8a067"
    )


@pytest.mark.parametrize(
    ("policy", "metric"),
    [
        ("generator-backlog", metric_names.GENERATION_QUEUE_DEPTH),
        ("video-worker-backlog", metric_names.VIDEOS_PENDING),
    ],
)
def test_workers_scale_on_their_backlog(
    stack: StackRun, policy: str, metric: metric_names.MetricSpec
) -> None:
    # The gauge each worker emits (tests/pipeline/test_metrics_export.py receives it).
    assert metric.kind == "gauge"
    assert metric.service == policy.removesuffix("-backlog")
    found = stack.named("aws:appautoscaling/policy:Policy", policy).inputs
    queries = found["targetTrackingScalingPolicyConfiguration"]["customizedMetricSpecification"][
        "metrics"
    ]
    backlog = next(q for q in queries if q["id"] == "backlog")
    assert backlog["metricStat"]["metric"] == {
        "namespace": f"Momentum/{stack.stack}",
        "metricName": metric.name,
    }
    # Per running task where Container Insights counts them; the whole backlog elsewhere.
    returned = [q["id"] for q in queries if q["returnData"]]
    assert returned == (
        ["per_task"] if stack.setting("containerInsights") == "true" else ["backlog"]
    )
    if stack.setting("containerInsights") == "false":
        assert len(queries) == 1
