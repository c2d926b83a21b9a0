"""Cache: node-based ElastiCache for Valkey with cluster mode disabled (Dramatiq broker, cache,
rate limits, semaphores).

Not ElastiCache Serverless: a serverless cache is a Redis Cluster, and Dramatiq's Redis broker
talks to it with a client that is not cluster-aware (``MOVED``) through Lua scripts that touch
keys they do not declare (dramatiq issue #754). One primary holds every key; in prod a replica
in another zone takes over automatically (Multi-AZ). Traffic is TLS (``rediss://``); data at rest
and snapshots are encrypted with this component's KMS key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from network import allow_clients

ENGINE = "valkey"
ENGINE_VERSION = "8.0"
PARAMETER_FAMILY = "valkey8"
CACHE_PORT = 6379
# Broker queues have no expiry and must never be evicted; cached pages, rate-limit windows and
# leases all expire, so under memory pressure only they go.
MAXMEMORY_POLICY = "volatile-lru"


@dataclass(frozen=True)
class CacheArgs:
    prefix: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_ids: Mapping[str, pulumi.Input[str]]
    node_type: str
    replicas: int
    snapshot_retention_days: int
    protect: bool


class Cache(pulumi.ComponentResource):
    url: pulumi.Output[str]
    name: str

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("momentum:infra:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(
            "cache-key",
            description=f"{args.prefix} ElastiCache data and snapshots",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        group = aws.ec2.SecurityGroup(
            "cache-sg",
            name=f"{args.prefix}-cache",
            description="ElastiCache for Valkey",
            vpc_id=args.vpc_id,
            tags={"Name": f"{args.prefix}-cache"},
            opts=child,
        )
        allow_clients(
            "cache", group, args.client_security_group_ids, ports=(CACHE_PORT, CACHE_PORT),
            protocol="Redis protocol", destination="ElastiCache", opts=child,
        )  # fmt: skip
        subnets = aws.elasticache.SubnetGroup(
            "cache-subnets",
            name=f"{args.prefix}-cache",
            description=f"{args.prefix} cache, private subnets",
            subnet_ids=list(args.subnet_ids),
            opts=child,
        )
        parameters = aws.elasticache.ParameterGroup(
            "cache-parameters",
            name=f"{args.prefix}-cache",
            family=PARAMETER_FAMILY,
            description=f"{args.prefix} cache: cluster mode off, only expiring keys evicted",
            parameters=[{"name": "maxmemory-policy", "value": MAXMEMORY_POLICY}],
            opts=child,
        )
        self.name = f"{args.prefix}-cache"
        # ElastiCache names a replication group's nodes <group>-001, -002, ...; its metrics are
        # per node (CacheClusterId).
        self.node_ids = [f"{self.name}-{n:03d}" for n in range(1, args.replicas + 2)]
        highly_available = args.replicas > 0
        cache = aws.elasticache.ReplicationGroup(
            "cache",
            replication_group_id=self.name,
            description=f"{args.prefix} broker, cache and rate limits",
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            node_type=args.node_type,
            cluster_mode="disabled",
            num_cache_clusters=1 + args.replicas,
            automatic_failover_enabled=highly_available,
            multi_az_enabled=highly_available,
            parameter_group_name=parameters.name,
            port=CACHE_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="03:00-04:00",
            maintenance_window="sun:05:00-sun:06:00",
            auto_minor_version_upgrade=True,
            final_snapshot_identifier=f"{self.name}-final" if args.protect else None,
            opts=child,
        )

        self.url = cache.primary_endpoint_address.apply(
            lambda address: f"rediss://{address}:{CACHE_PORT}/0"
        )
        self.register_outputs({"url": self.url})
