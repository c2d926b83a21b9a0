"""Cache: ElastiCache Serverless speaking the Redis protocol (Dramatiq broker, cache, limits).

Valkey is the engine: it is protocol-compatible with Redis 7, and its serverless minimum
(100 MB) costs a fifteenth of Redis OSS's (1 GB). Serverless caches always use TLS, so the
URL is ``rediss://``; data at rest is encrypted with this component's KMS key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from network import allow_clients

ENGINE = "valkey"
MAJOR_ENGINE_VERSION = "8"
# The serverless endpoint serves writes on 6379 and the reader endpoint on 6380.
CACHE_PORTS = (6379, 6380)


@dataclass(frozen=True)
class CacheArgs:
    prefix: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_ids: Mapping[str, pulumi.Input[str]]
    max_storage_gb: int
    max_ecpu_per_second: int
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
            description="ElastiCache Serverless",
            vpc_id=args.vpc_id,
            tags={"Name": f"{args.prefix}-cache"},
            opts=child,
        )
        allow_clients(
            "cache", group, args.client_security_group_ids, ports=CACHE_PORTS,
            protocol="Redis protocol", destination="ElastiCache", opts=child,
        )  # fmt: skip
        self.name = f"{args.prefix}-cache"
        cache = aws.elasticache.ServerlessCache(
            "cache",
            name=self.name,
            description=f"{args.prefix} broker, cache and rate limits",
            engine=ENGINE,
            major_engine_version=MAJOR_ENGINE_VERSION,
            cache_usage_limits={
                "data_storage": {"maximum": args.max_storage_gb, "unit": "GB"},
                "ecpu_per_seconds": [{"maximum": args.max_ecpu_per_second}],
            },
            kms_key_id=key.arn,
            security_group_ids=[group.id],
            subnet_ids=list(args.subnet_ids),
            snapshot_retention_limit=args.snapshot_retention_days,
            daily_snapshot_time="03:00",
            opts=child,
        )

        self.url = cache.endpoints.apply(
            lambda endpoints: f"rediss://{endpoints[0].address}:{endpoints[0].port}/0"
        )
        self.register_outputs({"url": self.url})
