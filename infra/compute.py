"""Compute: the ECS cluster and one Fargate service per application process.

Each service runs in private subnets without a public IP, next to an OpenTelemetry collector
that exports traces to X-Ray and metrics to CloudWatch (embedded metric format). Each has its
own execution role (pull its image, write its logs, read its secrets) and task role (only the
AWS actions the process calls, on this stack's resources). The migration task is a one-off task
definition on the API image that the delivery workflow runs before the services roll.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from config import ServiceSize
from momentum_domain.metric_names import METRICS
from momentum_domain.model_ids import base_model_id, is_inference_profile

API, GENERATOR, VIDEO_WORKER, MIGRATE = "api", "generator", "video-worker", "migrate"
SERVICES = (API, GENERATOR, VIDEO_WORKER)
WORKLOADS = (*SERVICES, MIGRATE)
# Resumable work, so they may run on Fargate Spot (workerCapacity): an interrupted task's
# messages go back to the queue and its generation steps and videos pick up where they were.
SPOT_WORKLOADS = (GENERATOR, VIDEO_WORKER)
API_PORT = 8000
API_READY_PATH = "/health/ready"
API_LIVE_PATH = "/health/live"
MIGRATION_COMMAND = ("python", "-m", "momentum_domain.migrations", "upgrade")
# The migration is a single one-off task.
MIGRATION_SIZE = ServiceSize(cpu=256, memory=512, min_tasks=1, max_tasks=1)
OTLP_ENDPOINT = "http://localhost:4317"
# Traces the collector keeps besides those with errors: any with a span this slow, and this
# share of the rest.
TRACE_SLOW_MS = 2000
TRACE_SHARE_PERCENT = 10
# By digest (the tag only tells readers which release): every task starts the same collector.
COLLECTOR_IMAGE = (
    "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
    "@sha256:8aa9ea5f67b8d318f7d6af24677e3c70f7098bc0631147cb5fa91addbe980b06"
)
# X-Ray's write and sampling APIs have no resource-level permissions: "*" is the only resource.
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)
# Secrets the application reads, by environment variable; values are put in Secrets Manager by
# an operator (docs/runbooks/rotate-secrets.md), never through Pulumi.
APP_SECRETS = {
    "MOMENTUM_HEYGEN_API_KEY": "heygen-api-key",
    "MOMENTUM_HEYGEN_WEBHOOK_SECRET": "heygen-webhook-secret",
    "MOMENTUM_STRIPE_API_KEY": "stripe-api-key",
    "MOMENTUM_STRIPE_WEBHOOK_SECRET": "stripe-webhook-secret",
}


@dataclass(frozen=True)
class Workload:
    # Permissions beyond telemetry: media:read|write|delete, bedrock, email, notify, audit.
    permissions: frozenset[str]
    secrets: tuple[str, ...]
    health_command: tuple[str, ...]
    stop_timeout: int
    port: int | None = None


WORKLOAD_SPECS = {
    API: Workload(
        # Only the API writes audit entries (admin writes, sign-ins, Stripe's role changes).
        permissions=frozenset({"media:read", "media:write", "media:delete", "audit"}),
        # The API receives HeyGen's signed webhooks.
        secrets=(
            "MOMENTUM_STRIPE_API_KEY",
            "MOMENTUM_STRIPE_WEBHOOK_SECRET",
            "MOMENTUM_HEYGEN_WEBHOOK_SECRET",
        ),
        health_command=(
            "python",
            "-c",
            "import urllib.request; "
            f"urllib.request.urlopen('http://127.0.0.1:{API_PORT}{API_LIVE_PATH}', timeout=4)",
        ),
        stop_timeout=30,
        port=API_PORT,
    ),
    GENERATOR: Workload(
        permissions=frozenset({"media:read", "media:write", "bedrock", "email", "notify"}),
        secrets=(),
        health_command=("python", "-m", "momentum_generator", "--health"),
        stop_timeout=120,
    ),
    VIDEO_WORKER: Workload(
        permissions=frozenset({"media:read", "media:write"}),
        secrets=("MOMENTUM_HEYGEN_API_KEY",),
        health_command=("python", "-m", "momentum_video_worker", "--health"),
        stop_timeout=120,
    ),
}


@dataclass(frozen=True)
class DatabaseRef:
    host: pulumi.Input[str]
    name: str
    master_secret_arn: pulumi.Input[str]
    # The services' login (the application role), rotated by Secrets Manager.
    app_secret_arn: pulumi.Input[str]
    # Encrypts both secrets.
    kms_key_arn: pulumi.Input[str]


@dataclass(frozen=True)
class ComputeArgs:
    prefix: str
    environment: str
    region: str
    account_id: str
    image_tag: str
    repository_urls: Mapping[str, pulumi.Input[str]]
    repository_arns: Mapping[str, pulumi.Input[str]]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    security_group_ids: Mapping[str, pulumi.Input[str]]
    sizes: Mapping[str, ServiceSize]
    log_retention_days: int
    # The audit trail's log group (infra/audit.py), which the API appends to.
    audit_log_group_name: pulumi.Input[str]
    audit_log_group_arn: pulumi.Input[str]
    database: DatabaseRef
    redis_url: pulumi.Input[str]
    auth_issuer: pulumi.Input[str]
    auth_jwks_url: pulumi.Input[str]
    auth_userinfo_url: pulumi.Input[str]
    auth_audience: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    bucket_kms_key_arn: pulumi.Input[str]
    llm_model_id: str
    image_model_id: str
    heygen_avatar_id: str
    heygen_voice_id: str
    stripe_price_premium_monthly: str
    stripe_price_premium_yearly: str
    frontend_url: str
    ses_sender: str
    hosted_zone_id: str
    api_public_url: str
    cors_origins: Sequence[str]
    # Where the load balancer's nodes live: the only peers believed about X-Forwarded-For.
    trusted_proxy_cidrs: Sequence[str]
    target_group_arn: pulumi.Input[str]
    protect: bool
    # What a service behind the load balancer must wait for (the listeners; see Edge).
    load_balancer_dependencies: Sequence[pulumi.Resource] = ()
    container_insights: bool = True
    # FARGATE or FARGATE_SPOT for the workers (SPOT_WORKLOADS); the API stays on FARGATE.
    worker_capacity: str = "FARGATE"
    # X86_64 or ARM64 for tasks on on-demand Fargate; Fargate Spot runs X86_64 only.
    cpu_architecture: str = "X86_64"


class Compute(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    migration_task_definition: aws.ecs.TaskDefinition
    metrics_namespace: str

    def __init__(
        self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Compute", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        self.metrics_namespace = f"Momentum/{args.environment}"

        cluster = aws.ecs.Cluster(
            "cluster",
            name=args.prefix,
            settings=[
                {
                    "name": "containerInsights",
                    "value": "enabled" if args.container_insights else "disabled",
                }
            ],
            opts=child,
        )
        capacity_providers = aws.ecs.ClusterCapacityProviders(
            "cluster-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            opts=child,
        )
        self._log_groups = {
            workload: aws.cloudwatch.LogGroup(
                f"{workload}-logs",
                name=f"/momentum/{args.environment}/{workload}",
                retention_in_days=args.log_retention_days,
                opts=child,
            )
            for workload in (*WORKLOADS, "metrics")
        }
        self._secrets = {
            variable: aws.secretsmanager.Secret(
                secret_name,
                name=f"momentum/{args.environment}/{secret_name}",
                description=f"{variable} for the {args.environment} services",
                recovery_window_in_days=30 if args.protect else 7,
                opts=child,
            )
            for variable, secret_name in APP_SECRETS.items()
        }
        self._topic = aws.sns.Topic(
            "notifications",
            name=f"{args.prefix}-notifications",
            kms_master_key_id="alias/aws/sns",
            opts=child,
        )
        self._sender_identity_arn = self._email_identity()

        self.service_names = {}
        for service in SERVICES:
            spec = WORKLOAD_SPECS[service]
            task_definition = self._service_task_definition(service, spec)
            self.service_names[service] = aws.ecs.Service(
                service,
                name=service,
                cluster=cluster.arn,
                task_definition=task_definition.arn,
                desired_count=args.sizes[service].min_tasks,
                # The workers always name a capacity provider, so moving them between
                # FARGATE and FARGATE_SPOT updates the service instead of replacing it.
                launch_type=None if service in SPOT_WORKLOADS else "FARGATE",
                capacity_provider_strategies=(
                    [{"capacity_provider": args.worker_capacity, "weight": 1}]
                    if service in SPOT_WORKLOADS
                    else None
                ),
                network_configuration={
                    "subnets": list(args.private_subnet_ids),
                    "security_groups": [args.security_group_ids[service]],
                    "assign_public_ip": False,
                },
                load_balancers=(
                    [
                        {
                            "target_group_arn": args.target_group_arn,
                            "container_name": service,
                            "container_port": spec.port,
                        }
                    ]
                    if spec.port
                    else None
                ),
                health_check_grace_period_seconds=60 if spec.port else None,
                deployment_circuit_breaker={"enable": True, "rollback": True},
                deployment_minimum_healthy_percent=100,
                deployment_maximum_percent=200,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                wait_for_steady_state=True,
                tags={"Service": service},
                # Autoscaling owns the running count once the service exists.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    ignore_changes=["desired_count"],
                    depends_on=[
                        capacity_providers,
                        *(args.load_balancer_dependencies if spec.port else []),
                    ],
                ),
            ).name

        # Migrations ship in the domain library, which the API image contains. The only AWS
        # call is reading the application role's secret, so that provisioning the role never
        # undoes a rotation in progress (momentum_domain.migrations.roles).
        migration_role = self._role(MIGRATE, "task")
        aws.iam.RolePolicy(
            f"{MIGRATE}-task",
            role=migration_role.name,
            policy=pulumi.Output.json_dumps(_policy(self._app_secret_statements())),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.migration_task_definition = self._task_definition(
            MIGRATE,
            repository=API,
            size=MIGRATION_SIZE,
            secrets=(),
            container_settings={"command": list(MIGRATION_COMMAND)},
            sidecars=[],
            task_role_arn=migration_role.arn,
        )
        self.cluster_name = cluster.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_names": self.service_names,
                "migration_task_definition_arn": self.migration_task_definition.arn,
            }
        )

    def _email_identity(self) -> pulumi.Output[str]:
        """The sender's domain as an SES identity, signed with Easy DKIM records in our zone."""
        args = self._args
        domain = args.ses_sender.split("@", 1)[1]
        identity = aws.sesv2.EmailIdentity(
            "sender", email_identity=domain, opts=pulumi.ResourceOptions(parent=self)
        )
        # Easy DKIM always issues three tokens.
        for index in range(3):
            token = identity.dkim_signing_attributes.apply(
                lambda attributes, i=index: attributes.tokens[i]
            )
            aws.route53.Record(
                f"sender-dkim-{index}",
                zone_id=args.hosted_zone_id,
                name=token.apply(lambda t: f"{t}._domainkey.{domain}"),
                type="CNAME",
                ttl=1800,
                records=[token.apply(lambda t: f"{t}.dkim.amazonses.com")],
                opts=pulumi.ResourceOptions(parent=self),
            )
        return identity.arn

    def _service_task_definition(self, service: str, spec: Workload) -> aws.ecs.TaskDefinition:
        task_role = self._role(service, "task")
        aws.iam.RolePolicy(
            f"{service}-task",
            role=task_role.name,
            policy=pulumi.Output.json_dumps(_policy(self._task_statements(spec))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        settings: dict[str, object] = {
            "stopTimeout": spec.stop_timeout,
            "healthCheck": {
                "command": ["CMD", *spec.health_command],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 30,
            },
            "dependsOn": [{"containerName": "otel-collector", "condition": "START"}],
        }
        if spec.port:
            settings["portMappings"] = [{"containerPort": spec.port, "protocol": "tcp"}]
        return self._task_definition(
            service,
            repository=service,
            size=self._args.sizes[service],
            secrets=spec.secrets,
            container_settings=settings,
            sidecars=[self._collector(service)],
            task_role_arn=task_role.arn,
        )

    def _task_definition(
        self,
        workload: str,
        *,
        repository: str,
        size: ServiceSize,
        secrets: Sequence[str],
        container_settings: dict[str, object],
        sidecars: list[dict[str, object]],
        task_role_arn: pulumi.Input[str] | None,
    ) -> aws.ecs.TaskDefinition:
        """A Fargate task definition whose execution role reads only this workload's image,
        log group and secrets."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self)
        database_environment, database_secrets, read_secrets = self._database_login(workload)
        secret_arns = database_secrets | {
            variable: self._secrets[variable].arn for variable in secrets
        }
        read_secrets += [self._secrets[variable].arn for variable in secrets]
        log_group = self._log_groups[workload]

        execution_role = self._role(workload, "execution")
        aws.iam.RolePolicy(
            f"{workload}-execution",
            role=execution_role.name,
            policy=pulumi.Output.json_dumps(
                _policy(
                    [
                        # GetAuthorizationToken is account-wide by design; pulls are per repository.
                        _statement(["ecr:GetAuthorizationToken"], ["*"]),
                        _statement(
                            [
                                "ecr:BatchCheckLayerAvailability",
                                "ecr:BatchGetImage",
                                "ecr:GetDownloadUrlForLayer",
                            ],
                            [args.repository_arns[repository]],
                        ),
                        _statement(
                            ["logs:CreateLogStream", "logs:PutLogEvents"],
                            [pulumi.Output.concat(log_group.arn, ":*")],
                        ),
                    ]
                    + (
                        [_statement(["secretsmanager:GetSecretValue"], read_secrets)]
                        if read_secrets
                        else []
                    )
                    # The database secrets are encrypted with the database key.
                    + (
                        [_statement(["kms:Decrypt"], [args.database.kms_key_arn])]
                        if database_secrets
                        else []
                    )
                )
            ),
            opts=child,
        )

        environment = self._environment(workload) | database_environment
        app_container = {
            "name": workload,
            "image": pulumi.Output.concat(args.repository_urls[repository], ":", args.image_tag),
            "essential": True,
            "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secret_arns.items())],
            "logConfiguration": _log_configuration(log_group.name, args.region, workload),
            # Images are built with compiled bytecode; /tmp is the only writable path.
            "readonlyRootFilesystem": True,
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp"}],  # noqa: S108
            "linuxParameters": {"initProcessEnabled": True},
            **container_settings,
        }
        return aws.ecs.TaskDefinition(
            workload,
            family=f"{args.prefix}-{workload}",
            cpu=str(size.cpu),
            memory=str(size.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={
                "operating_system_family": "LINUX",
                "cpu_architecture": self._architecture(workload),
            },
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role_arn,
            volumes=[{"name": "tmp"}],
            container_definitions=pulumi.Output.json_dumps([app_container, *sidecars]),
            # Earlier revisions stay registered so a rollback can point a service back at them.
            skip_destroy=True,
            tags={"Service": workload},
            opts=child,
        )

    def _architecture(self, workload: str) -> str:
        args = self._args
        if workload in SPOT_WORKLOADS and args.worker_capacity == "FARGATE_SPOT":
            return "X86_64"
        return args.cpu_architecture

    def _database_login(
        self, workload: str
    ) -> tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]], list[pulumi.Input[str]]]:
        """(environment, injected secrets, secrets the execution role reads) of the database
        login. The migration task logs in as the master user and provisions the application
        role with its secret's password. The services log in as that role, reading its secret
        themselves at each new connection (it rotates): they get its ARN, not its value."""
        database = self._args.database
        if workload != MIGRATE:
            return {"MOMENTUM_DATABASE_SECRET_ARN": database.app_secret_arn}, {}, []

        def key(secret_arn: pulumi.Input[str], name: str) -> pulumi.Output[str]:
            return pulumi.Output.concat(secret_arn, f":{name}::")

        injected = {
            "MOMENTUM_DATABASE_USER": key(database.master_secret_arn, "username"),
            "MOMENTUM_DATABASE_PASSWORD": key(database.master_secret_arn, "password"),
            "MOMENTUM_DATABASE_APP_USER": key(database.app_secret_arn, "username"),
            "MOMENTUM_DATABASE_APP_PASSWORD": key(database.app_secret_arn, "password"),
        }
        # Its ARN too: the migration reads the secret's pending version during a rotation.
        environment = {"MOMENTUM_DATABASE_SECRET_ARN": database.app_secret_arn}
        return environment, injected, [database.master_secret_arn, database.app_secret_arn]

    def _environment(self, workload: str) -> dict[str, pulumi.Input[str]]:
        args = self._args
        environment: dict[str, pulumi.Input[str]] = {
            "AWS_REGION": args.region,
            # What the platform's own boto3 clients use (SES, SNS, Secrets Manager, S3, Bedrock).
            "MOMENTUM_AWS_REGION": args.region,
            "MOMENTUM_ENV": args.environment,
            "MOMENTUM_SERVICE_NAME": f"momentum-{workload}",
            "MOMENTUM_VERSION": args.image_tag,
            "MOMENTUM_DATA_DIR": "/tmp/momentum",  # noqa: S108 - a per-task volume, not shared
            "MOMENTUM_DATABASE_HOST": args.database.host,
            "MOMENTUM_DATABASE_NAME": args.database.name,
        }
        if workload == MIGRATE:
            return environment
        # What every service reads; below, what only one of them does (a variable a service
        # never reads is not given to it).
        environment |= {
            "MOMENTUM_REDIS_URL": args.redis_url,
            "MOMENTUM_STORAGE_BACKEND": "s3",
            "MOMENTUM_STORAGE_BUCKET": args.bucket_name,
            # Recorded on each video request: the API's re-requests, the generator's drafts.
            "MOMENTUM_VIDEO_PROVIDER": "heygen",
            "MOMENTUM_OTEL_EXPORTER": "otlp",
            "MOMENTUM_OTEL_ENDPOINT": OTLP_ENDPOINT,
            # Every span goes to the sidecar, which keeps a share of the traces and every
            # error and slow one (a ratio below 1 here would drop those before it sees them).
            "MOMENTUM_OTEL_TRACE_SAMPLE_RATIO": "1",
            # One JSON object per line, with trace, span and request ids, for CloudWatch Logs.
            "MOMENTUM_LOG_FORMAT": "json",
        }
        if workload == API:
            environment |= {
                "MOMENTUM_API_HOST": "0.0.0.0",  # noqa: S104 - the task's own network interface
                "MOMENTUM_API_PORT": str(API_PORT),
                "MOMENTUM_API_PUBLIC_URL": args.api_public_url,
                "MOMENTUM_AUTH_JWKS_URL": args.auth_jwks_url,
                "MOMENTUM_AUTH_ISSUER": args.auth_issuer,
                "MOMENTUM_AUTH_AUDIENCE": args.auth_audience,
                "MOMENTUM_AUTH_USERINFO_URL": args.auth_userinfo_url,
                "MOMENTUM_API_TRUSTED_PROXIES": json.dumps(list(args.trusted_proxy_cidrs)),
                "MOMENTUM_CORS_ORIGINS": json.dumps(list(args.cors_origins)),
                "MOMENTUM_FRONTEND_URL": args.frontend_url,
                "MOMENTUM_STRIPE_PRICE_PREMIUM_MONTHLY": args.stripe_price_premium_monthly,
                "MOMENTUM_STRIPE_PRICE_PREMIUM_YEARLY": args.stripe_price_premium_yearly,
                "MOMENTUM_AUDIT_SINK": "cloudwatch",
                "MOMENTUM_AUDIT_LOG_GROUP": args.audit_log_group_name,
            }
        if workload == GENERATOR:
            environment |= {
                "MOMENTUM_LLM_PROVIDER": "bedrock",
                "MOMENTUM_LLM_MODEL_ID": args.llm_model_id,
                "MOMENTUM_IMAGE_MODEL_ID": args.image_model_id,
                # The outbox relay, and the draft's link in what it sends.
                "MOMENTUM_NOTIFY_BACKEND": "aws",
                "MOMENTUM_SES_SENDER": args.ses_sender,
                "MOMENTUM_SNS_TOPIC_ARN": self._topic.arn,
                "MOMENTUM_API_PUBLIC_URL": args.api_public_url,
            }
        if workload == VIDEO_WORKER:
            environment |= {
                "MOMENTUM_HEYGEN_AVATAR_ID": args.heygen_avatar_id,
                "MOMENTUM_HEYGEN_VOICE_ID": args.heygen_voice_id,
            }
        return environment

    def _collector(self, workload: str) -> dict[str, object]:
        args = self._args
        # JSON is valid YAML, which is what the collector reads from AOT_CONFIG_CONTENT.
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
            # Spans and metrics carry the task's ECS attributes (cluster, task ARN, revision);
            # the EMF exporter does not turn resource attributes into dimensions.
            "processors": {
                "resourcedetection": {"detectors": ["env", "ecs"], "timeout": "2s"},
                # Traces kept: those with an error or a slow span, and a share of the rest.
                # The share hashes the trace id, so every task's sidecar keeps the same
                # traces whole (a course's trace crosses the API, generator and video worker).
                "tail_sampling": {
                    "decision_wait": "10s",
                    "num_traces": 20000,
                    "policies": [
                        {
                            "name": "errors",
                            "type": "status_code",
                            "status_code": {"status_codes": ["ERROR"]},
                        },
                        {
                            "name": "slow",
                            "type": "latency",
                            "latency": {"threshold_ms": TRACE_SLOW_MS},
                        },
                        {
                            "name": "share",
                            "type": "probabilistic",
                            "probabilistic": {"sampling_percentage": TRACE_SHARE_PERCENT},
                        },
                    ],
                },
                "batch": {},
            },
            "exporters": {
                "awsxray": {"region": args.region},
                "awsemf": {
                    "region": args.region,
                    "namespace": self.metrics_namespace,
                    "log_group_name": f"/momentum/{args.environment}/metrics",
                    "log_stream_name": f"{workload}/{{TaskId}}",
                    # Each metric of the shared table with exactly its own dimensions (few: the
                    # request histogram's route, method and status stay in the log events).
                    # Without declarations the exporter would add an "OTelLib" dimension (the
                    # meter's name) that no query names, and publish every other attribute.
                    # Metrics not declared stay in the log group only.
                    "dimension_rollup_option": "NoDimensionRollup",
                    "metric_declarations": [
                        {
                            "dimensions": [list(metric.cloudwatch_dimensions)],
                            "metric_name_selectors": [f"^{re.escape(metric.name)}$"],
                        }
                        for metric in METRICS
                    ],
                    # CloudWatch units for the table's UCUM ones ("{job}" means nothing there).
                    "metric_descriptors": [
                        {
                            "metric_name": metric.name,
                            "unit": metric.cloudwatch_unit,
                            "overwrite": True,
                        }
                        for metric in METRICS
                    ],
                },
            },
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["resourcedetection", "tail_sampling", "batch"],
                        "exporters": ["awsxray"],
                    },
                    "metrics": {
                        "receivers": ["otlp"],
                        "processors": ["resourcedetection", "batch"],
                        "exporters": ["awsemf"],
                    },
                }
            },
        }
        return {
            "name": "otel-collector",
            "image": COLLECTOR_IMAGE,
            # Losing telemetry must not take the service down with it.
            "essential": False,
            "command": ["--config=env:AOT_CONFIG_CONTENT"],
            "environment": [
                {"name": "AOT_CONFIG_CONTENT", "value": json.dumps(config)},
                {"name": "AWS_REGION", "value": args.region},
            ],
            "logConfiguration": _log_configuration(
                self._log_groups[workload].name, args.region, "otel"
            ),
        }

    def _role(self, workload: str, kind: str) -> aws.iam.Role:
        args = self._args
        return aws.iam.Role(
            f"{workload}-{kind}-role",
            name=f"{args.prefix}-{workload}-{kind}",
            assume_role_policy=json.dumps(
                _policy(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": args.account_id},
                                "ArnLike": {
                                    "aws:SourceArn": (
                                        f"arn:aws:ecs:{args.region}:{args.account_id}:*"
                                    )
                                },
                            },
                        }
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _app_secret_statements(self) -> list[dict[str, object]]:
        """Reading the application role's login (it rotates); its key only through the Secrets
        Manager of this region."""
        args = self._args
        return [
            _statement(["secretsmanager:GetSecretValue"], [args.database.app_secret_arn]),
            {
                **_statement(["kms:Decrypt"], [args.database.kms_key_arn]),
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"
                    }
                },
            },
        ]

    def _task_statements(self, spec: Workload) -> list[dict[str, object]]:
        args = self._args
        statements = [
            _statement(list(XRAY_ACTIONS), ["*"]),
            _statement(
                ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                [pulumi.Output.concat(self._log_groups["metrics"].arn, ":*")],
            ),
            *self._app_secret_statements(),
        ]
        object_actions = [
            action
            for permission, action in (
                ("media:read", "s3:GetObject"),
                ("media:write", "s3:PutObject"),
                ("media:delete", "s3:DeleteObject"),
            )
            if permission in spec.permissions
        ]
        if object_actions:
            objects = pulumi.Output.concat(args.bucket_arn, "/*")
            statements += [
                _statement(object_actions, [objects]),
                # Listing lets a missing key read as 404 rather than 403.
                _statement(["s3:ListBucket"], [args.bucket_arn]),
                _statement(
                    ["kms:Decrypt", "kms:GenerateDataKey"]
                    if "media:write" in spec.permissions
                    else ["kms:Decrypt"],
                    [args.bucket_kms_key_arn],
                ),
            ]
        if "bedrock" in spec.permissions:
            statements.append(
                _statement(
                    ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                    _bedrock_resources(args.llm_model_id, args.region, args.account_id)
                    + _bedrock_resources(args.image_model_id, args.region, args.account_id),
                )
            )
        if "email" in spec.permissions:
            statement = _statement(["ses:SendEmail"], [self._sender_identity_arn])
            statement["Condition"] = {"StringEquals": {"ses:FromAddress": args.ses_sender}}
            statements.append(statement)
        if "notify" in spec.permissions:
            statements.append(_statement(["sns:Publish"], [self._topic.arn]))
        if "audit" in spec.permissions:
            # Append only: no reading back, no deleting, no retention change.
            statements.append(
                _statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(args.audit_log_group_arn, ":*")],
                )
            )
        return statements


def _bedrock_resources(model_id: str, region: str, account_id: str) -> list[str]:
    if is_inference_profile(model_id):
        base_model = base_model_id(model_id)
        return [
            f"arn:aws:bedrock:{region}:{account_id}:inference-profile/{model_id}",
            # The profile forwards to the same model in any region of its geography.
            f"arn:aws:bedrock:*::foundation-model/{base_model}",
        ]
    return [f"arn:aws:bedrock:{region}::foundation-model/{model_id}"]


def _log_configuration(
    group_name: pulumi.Input[str], region: str, stream_prefix: str
) -> dict[str, object]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": group_name,
            "awslogs-region": region,
            "awslogs-stream-prefix": stream_prefix,
            # A slow log pipe drops lines instead of blocking the process.
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def _statement(actions: list[str], resources: list[pulumi.Input[str]]) -> dict[str, object]:
    return {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def _policy(statements: list[dict[str, object]]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": statements}
