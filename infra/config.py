"""Stack configuration: every key the program reads, typed and validated in one place.

Keys live in the ``momentum`` namespace of ``Pulumi.<stack>.yaml``; ``aws:region`` is read too so
the explicit provider and the URLs we build agree with the stack file. ``imageTag`` is the one
deploy-time key: the delivery workflow passes it with ``--config`` and it is never committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

NAMESPACE = "momentum"
PROJECT = "momentum"
ENVIRONMENTS = ("dev", "staging", "prod")
DEPLOY_TIME_KEYS = ("imageTag",)
MFA_MODES = ("OFF", "OPTIONAL", "ON")
NAT_MODES = ("gateway", "instance")
CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
CPU_ARCHITECTURES = ("X86_64", "ARM64")
# The retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip
# Cognito provider types that sign in with a client id and secret (keys of socialIdentityProviders).
SOCIAL_PROVIDER_TYPES = ("Google", "Facebook", "LoginWithAmazon")
# Fargate's valid memory (MiB) for each task CPU size (CPU units).
FARGATE_MEMORY = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


@dataclass(frozen=True)
class ServiceSize:
    cpu: int
    memory: int
    min_tasks: int
    max_tasks: int


@dataclass(frozen=True)
class SocialProvider:
    provider_type: str
    client_id: str
    client_secret: pulumi.Output[str]
    scopes: str


@dataclass(frozen=True)
class StackConfig:
    environment: str
    region: str
    account_id: str
    image_tag: str
    cost_center: str
    alert_email: str
    monthly_budget_usd: int
    # What model calls may cost in a day before the AI-spend alarm fires.
    ai_daily_spend_limit_usd: float
    # network
    vpc_cidr: str
    az_count: int
    nat_gateway_per_az: bool
    # "gateway": managed NAT gateways; "instance": a t4g.nano NAT instance in their place.
    nat_mode: str
    # Interface endpoints for ECR, Secrets Manager and Logs (they carry no endpoint policy, so
    # they only move traffic off the NAT; the S3 gateway endpoint is always there).
    interface_endpoints: bool
    # database
    db_engine_version: str
    db_min_acu: float
    # With dbMinAcu 0 the cluster pauses after this many idle seconds.
    db_auto_pause_seconds: int
    db_max_acu: float
    db_instance_count: int
    db_backup_retention_days: int
    protect_data: bool
    # cache
    cache_node_type: str
    cache_replicas: int
    cache_snapshot_retention_days: int
    # edge
    api_domain: str
    hosted_zone_id: str
    certificate_arn: str
    frontend_origin: str
    waf_rate_limit: int
    access_log_retention_days: int
    # identity
    auth_domain_prefix: str
    mfa: str
    social_providers: tuple[SocialProvider, ...]
    # application
    ses_sender: str
    llm_model_id: str
    image_model_id: str
    heygen_avatar_id: str
    heygen_voice_id: str
    stripe_price_premium_monthly: str
    stripe_price_premium_yearly: str
    log_retention_days: int
    # The audit trail's copy outside the database (infra/audit.py): kept longer than app logs.
    audit_log_retention_days: int
    container_insights: bool
    # Where the generator and the video worker run (the API stays on-demand FARGATE).
    worker_capacity: str
    # Of the on-demand tasks (Fargate Spot runs x86 only).
    cpu_architecture: str
    api: ServiceSize
    generator: ServiceSize
    video_worker: ServiceSize

    @property
    def prefix(self) -> str:
        """Start of every physical name, so stacks sharing an account never collide."""
        return f"{PROJECT}-{self.environment}"


def cost_tags(cfg: StackConfig) -> dict[str, str]:
    """Cost allocation tags applied to every resource through the provider's default tags."""
    return {
        "Project": PROJECT,
        "Environment": cfg.environment,
        "CostCenter": cfg.cost_center,
        "ManagedBy": "pulumi",
    }


def load_config() -> StackConfig:
    cfg = pulumi.Config(NAMESPACE)
    environment = pulumi.get_stack()
    _check(environment in ENVIRONMENTS, f"stack must be one of {ENVIRONMENTS}, got {environment!r}")
    mfa = cfg.require("mfa")
    _check(mfa in MFA_MODES, f"momentum:mfa must be one of {MFA_MODES}")
    db_min_acu, db_max_acu = cfg.require_float("dbMinAcu"), cfg.require_float("dbMaxAcu")
    _check(0 <= db_min_acu <= db_max_acu, "dbMinAcu must be between 0 and dbMaxAcu")
    az_count = cfg.require_int("azCount")
    _check(az_count in (2, 3), "azCount must be 2 or 3")
    cache_replicas = cfg.require_int("cacheReplicas")
    nat_mode = cfg.require("natMode")
    _check(nat_mode in NAT_MODES, f"momentum:natMode must be one of {NAT_MODES}")
    worker_capacity = cfg.require("workerCapacity")
    _check(
        worker_capacity in CAPACITY_PROVIDERS,
        f"momentum:workerCapacity must be one of {CAPACITY_PROVIDERS}",
    )
    cpu_architecture = cfg.require("cpuArchitecture")
    _check(
        cpu_architecture in CPU_ARCHITECTURES,
        f"momentum:cpuArchitecture must be one of {CPU_ARCHITECTURES}",
    )
    db_auto_pause_seconds = cfg.require_int("dbAutoPauseSeconds")
    # Aurora pauses only at 0 ACU, after 300 s to 1 day idle (PostgreSQL 15.7 and later).
    _check(
        300 <= db_auto_pause_seconds <= 86400 if db_min_acu == 0 else db_auto_pause_seconds == 0,
        "dbAutoPauseSeconds is 300-86400 when dbMinAcu is 0, else 0 (never pauses)",
    )
    _check(0 <= cache_replicas <= 5, "cacheReplicas must be between 0 and 5")
    ai_daily_spend_limit_usd = cfg.require_float("aiDailySpendLimitUsd")
    _check(ai_daily_spend_limit_usd > 0, "aiDailySpendLimitUsd must be positive")
    log_retention_days = cfg.require_int("logRetentionDays")
    audit_log_retention_days = cfg.require_int("auditLogRetentionDays")
    _check(
        audit_log_retention_days in LOG_RETENTION_DAYS
        and audit_log_retention_days > log_retention_days,
        "auditLogRetentionDays must be a CloudWatch Logs retention longer than logRetentionDays",
    )
    return StackConfig(
        environment=environment,
        region=pulumi.Config("aws").require("region"),
        account_id=cfg.require("accountId"),
        image_tag=cfg.require("imageTag"),
        cost_center=cfg.require("costCenter"),
        alert_email=cfg.require("alertEmail"),
        monthly_budget_usd=cfg.require_int("monthlyBudgetUsd"),
        ai_daily_spend_limit_usd=ai_daily_spend_limit_usd,
        vpc_cidr=cfg.require("vpcCidr"),
        az_count=az_count,
        nat_gateway_per_az=cfg.require_bool("natGatewayPerAz"),
        nat_mode=nat_mode,
        interface_endpoints=cfg.require_bool("interfaceEndpoints"),
        db_engine_version=cfg.require("dbEngineVersion"),
        db_min_acu=db_min_acu,
        db_auto_pause_seconds=db_auto_pause_seconds,
        db_max_acu=db_max_acu,
        db_instance_count=cfg.require_int("dbInstanceCount"),
        db_backup_retention_days=cfg.require_int("dbBackupRetentionDays"),
        protect_data=cfg.require_bool("protectData"),
        cache_node_type=cfg.require("cacheNodeType"),
        cache_replicas=cache_replicas,
        cache_snapshot_retention_days=cfg.require_int("cacheSnapshotRetentionDays"),
        api_domain=cfg.require("apiDomain"),
        hosted_zone_id=cfg.require("hostedZoneId"),
        certificate_arn=cfg.require("certificateArn"),
        frontend_origin=cfg.require("frontendOrigin"),
        waf_rate_limit=cfg.require_int("wafRateLimit"),
        access_log_retention_days=cfg.require_int("accessLogRetentionDays"),
        auth_domain_prefix=cfg.require("authDomainPrefix"),
        mfa=mfa,
        social_providers=_social_providers(cfg),
        ses_sender=cfg.require("sesSender"),
        llm_model_id=cfg.require("llmModelId"),
        image_model_id=cfg.require("imageModelId"),
        heygen_avatar_id=cfg.require("heygenAvatarId"),
        heygen_voice_id=cfg.require("heygenVoiceId"),
        stripe_price_premium_monthly=cfg.require("stripePricePremiumMonthly"),
        stripe_price_premium_yearly=cfg.require("stripePricePremiumYearly"),
        log_retention_days=log_retention_days,
        audit_log_retention_days=audit_log_retention_days,
        container_insights=cfg.require_bool("containerInsights"),
        worker_capacity=worker_capacity,
        cpu_architecture=cpu_architecture,
        api=_service_size(cfg, "api"),
        generator=_service_size(cfg, "generator"),
        video_worker=_service_size(cfg, "videoWorker"),
    )


def _service_size(cfg: pulumi.Config, prefix: str) -> ServiceSize:
    size = ServiceSize(
        cpu=cfg.require_int(f"{prefix}Cpu"),
        memory=cfg.require_int(f"{prefix}Memory"),
        min_tasks=cfg.require_int(f"{prefix}MinTasks"),
        max_tasks=cfg.require_int(f"{prefix}MaxTasks"),
    )
    _check(
        size.memory in FARGATE_MEMORY.get(size.cpu, ()),
        f"{prefix}Cpu/{prefix}Memory is not a Fargate size: {size.cpu}/{size.memory}",
    )
    _check(1 <= size.min_tasks <= size.max_tasks, f"need 1 <= {prefix}MinTasks <= MaxTasks")
    return size


def _social_providers(cfg: pulumi.Config) -> tuple[SocialProvider, ...]:
    """Optional social sign-in: client ids in one object, client secrets in a secret object."""
    providers: dict[str, dict[str, Any]] = cfg.get_object("socialIdentityProviders") or {}
    if not providers:
        return ()
    secrets = cfg.require_secret_object("socialIdentityProviderSecrets")
    result = []
    for provider_type, settings in sorted(providers.items()):
        _check(
            provider_type in SOCIAL_PROVIDER_TYPES,
            f"socialIdentityProviders: unknown provider {provider_type!r}",
        )
        result.append(
            SocialProvider(
                provider_type=provider_type,
                client_id=settings["clientId"],
                client_secret=secrets.apply(lambda s, t=provider_type: s[t]),
                scopes=settings.get("scopes", "openid email profile"),
            )
        )
    return tuple(result)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"invalid stack configuration: {message}")
