"""Momentum on AWS: the components composed from the stack's configuration."""

import pulumi
import pulumi_aws as aws

from audit import AuditTrail, AuditTrailArgs
from cache import Cache, CacheArgs
from compute import (
    API,
    API_PORT,
    API_READY_PATH,
    GENERATOR,
    MIGRATE,
    SERVICES,
    VIDEO_WORKER,
    WORKLOADS,
    Compute,
    ComputeArgs,
    DatabaseRef,
)
from config import cost_tags, load_config
from database import ROTATION_WORKLOAD, Database, DatabaseArgs
from edge import Edge, EdgeArgs
from identity import Identity, IdentityArgs
from monitoring import APP_METRICS, Monitoring, MonitoringArgs
from network import Network, NetworkArgs
from registry import Registry, RegistryArgs
from scaling import Scaling, ScalingArgs
from storage import Storage, StorageArgs

cfg = load_config()
prefix = cfg.prefix
provider = aws.Provider(
    "aws",
    region=cfg.region,
    allowed_account_ids=[cfg.account_id],
    default_tags={"tags": cost_tags(cfg)},
)
opts = pulumi.ResourceOptions(providers={"aws": provider})
sizes = {API: cfg.api, GENERATOR: cfg.generator, VIDEO_WORKER: cfg.video_worker}

network = Network(
    "network",
    NetworkArgs(
        prefix=prefix,
        region=cfg.region,
        cidr_block=cfg.vpc_cidr,
        az_count=cfg.az_count,
        nat_gateway_per_az=cfg.nat_gateway_per_az,
        workloads=(*WORKLOADS, ROTATION_WORKLOAD),
        nat_mode=cfg.nat_mode,
        interface_endpoints=cfg.interface_endpoints,
    ),
    opts,
)
registry = Registry(
    "registry", RegistryArgs(prefix=prefix, repositories=SERVICES, protect=cfg.protect_data), opts
)
database = Database(
    "database",
    DatabaseArgs(
        prefix=prefix,
        environment=cfg.environment,
        region=cfg.region,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_ids=network.security_group_ids,
        engine_version=cfg.db_engine_version,
        min_acu=cfg.db_min_acu,
        max_acu=cfg.db_max_acu,
        instance_count=cfg.db_instance_count,
        backup_retention_days=cfg.db_backup_retention_days,
        protect=cfg.protect_data,
        auto_pause_seconds=cfg.db_auto_pause_seconds,
    ),
    opts,
)
cache = Cache(
    "cache",
    CacheArgs(
        prefix=prefix,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_ids={
            service: network.security_group_ids[service] for service in SERVICES
        },
        node_type=cfg.cache_node_type,
        replicas=cfg.cache_replicas,
        snapshot_retention_days=cfg.cache_snapshot_retention_days,
        protect=cfg.protect_data,
    ),
    opts,
)
storage = Storage(
    "storage",
    StorageArgs(
        prefix=prefix,
        account_id=cfg.account_id,
        cors_origins=[cfg.frontend_origin],
        protect=cfg.protect_data,
    ),
    opts,
)
identity = Identity(
    "identity",
    IdentityArgs(
        prefix=prefix,
        region=cfg.region,
        domain_prefix=cfg.auth_domain_prefix,
        frontend_origin=cfg.frontend_origin,
        mfa=cfg.mfa,
        social_providers=cfg.social_providers,
        protect=cfg.protect_data,
    ),
    opts,
)
edge = Edge(
    "edge",
    EdgeArgs(
        prefix=prefix,
        account_id=cfg.account_id,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        api_security_group_id=network.security_group_ids[API],
        api_port=API_PORT,
        health_check_path=API_READY_PATH,
        certificate_arn=cfg.certificate_arn,
        domain=cfg.api_domain,
        hosted_zone_id=cfg.hosted_zone_id,
        waf_rate_limit=cfg.waf_rate_limit,
        access_log_retention_days=cfg.access_log_retention_days,
        protect=cfg.protect_data,
    ),
    opts,
)
audit_trail = AuditTrail(
    "audit",
    AuditTrailArgs(
        environment=cfg.environment,
        retention_days=cfg.audit_log_retention_days,
        protect=cfg.protect_data,
    ),
    opts,
)
compute = Compute(
    "compute",
    ComputeArgs(
        prefix=prefix,
        environment=cfg.environment,
        region=cfg.region,
        account_id=cfg.account_id,
        image_tag=cfg.image_tag,
        repository_urls=registry.repository_urls,
        repository_arns=registry.repository_arns,
        private_subnet_ids=network.private_subnet_ids,
        security_group_ids=network.security_group_ids,
        sizes=sizes,
        log_retention_days=cfg.log_retention_days,
        audit_log_group_name=audit_trail.log_group_name,
        audit_log_group_arn=audit_trail.log_group_arn,
        database=DatabaseRef(
            host=database.endpoint,
            name=database.database_name,
            master_secret_arn=database.master_secret_arn,
            app_secret_arn=database.app_secret_arn,
            kms_key_arn=database.kms_key_arn,
        ),
        redis_url=cache.url,
        auth_issuer=identity.issuer,
        auth_jwks_url=identity.jwks_url,
        auth_userinfo_url=identity.userinfo_url,
        auth_audience=identity.client_id,
        bucket_name=storage.bucket_name,
        bucket_arn=storage.bucket_arn,
        bucket_kms_key_arn=storage.kms_key_arn,
        llm_model_id=cfg.llm_model_id,
        image_model_id=cfg.image_model_id,
        heygen_avatar_id=cfg.heygen_avatar_id,
        heygen_voice_id=cfg.heygen_voice_id,
        stripe_price_premium_monthly=cfg.stripe_price_premium_monthly,
        stripe_price_premium_yearly=cfg.stripe_price_premium_yearly,
        frontend_url=cfg.frontend_origin,
        ses_sender=cfg.ses_sender,
        hosted_zone_id=cfg.hosted_zone_id,
        api_public_url=f"https://{cfg.api_domain}",
        cors_origins=[cfg.frontend_origin],
        trusted_proxy_cidrs=[cfg.vpc_cidr],
        target_group_arn=edge.target_group_arn,
        protect=cfg.protect_data,
        load_balancer_dependencies=edge.listeners,
        container_insights=cfg.container_insights,
        worker_capacity=cfg.worker_capacity,
        cpu_architecture=cfg.cpu_architecture,
    ),
    opts,
)
Scaling(
    "scaling",
    ScalingArgs(
        cluster_name=compute.cluster_name,
        service_names=compute.service_names,
        sizes=sizes,
        load_balancer_arn_suffix=edge.load_balancer_arn_suffix,
        target_group_arn_suffix=edge.target_group_arn_suffix,
        metrics_namespace=compute.metrics_namespace,
        generator_queue_metric=APP_METRICS["queue_depth"],
        pending_videos_metric=APP_METRICS["pending_videos"],
        container_insights=cfg.container_insights,
    ),
    opts,
)
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        prefix=prefix,
        environment=cfg.environment,
        region=cfg.region,
        account_id=cfg.account_id,
        alert_email=cfg.alert_email,
        monthly_budget_usd=cfg.monthly_budget_usd,
        load_balancer_arn_suffix=edge.load_balancer_arn_suffix,
        target_group_arn_suffix=edge.target_group_arn_suffix,
        cluster_name=compute.cluster_name,
        service_names=compute.service_names,
        db_cluster_identifier=database.cluster_identifier,
        db_instance_identifiers=database.instance_identifiers,
        metrics_namespace=compute.metrics_namespace,
        db_max_acu=cfg.db_max_acu,
        cache_node_ids=cache.node_ids,
        container_insights=cfg.container_insights,
        ai_daily_spend_limit_usd=cfg.ai_daily_spend_limit_usd,
    ),
    opts,
)

pulumi.export("apiUrl", edge.api_url)
pulumi.export("mediaBucket", storage.bucket_name)
pulumi.export("userPoolId", identity.user_pool_id)
pulumi.export("userPoolClientId", identity.client_id)
pulumi.export("dashboardUrl", monitoring.dashboard_url)
pulumi.export("auditLogGroup", audit_trail.log_group_name)
# What the delivery workflow needs to push images, migrate and roll the services.
pulumi.export("imageTag", cfg.image_tag)
pulumi.export("ecrRepositories", registry.repository_urls)
pulumi.export("clusterName", compute.cluster_name)
pulumi.export("serviceNames", compute.service_names)
pulumi.export("migrationTaskDefinitionArn", compute.migration_task_definition.arn)
pulumi.export("migrationTaskDefinitionUrn", compute.migration_task_definition.urn)
pulumi.export(
    "migrationNetworkConfiguration",
    pulumi.Output.all(
        subnets=network.private_subnet_ids, group=network.security_group_ids[MIGRATE]
    ).apply(
        lambda values: {
            "awsvpcConfiguration": {
                "subnets": values["subnets"],
                "securityGroups": [values["group"]],
                "assignPublicIp": "DISABLED",
            }
        }
    ),
)
