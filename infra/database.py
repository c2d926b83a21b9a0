"""Database: Aurora Serverless v2 PostgreSQL, encrypted with its own KMS key.

The master password is generated and rotated by RDS in Secrets Manager; tasks receive the
username and password from that secret's JSON keys, never through Pulumi state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from network import allow_clients

POSTGRES_PORT = 5432
DATABASE_NAME = "momentum"
MASTER_USERNAME = "momentum"
# Performance Insights keeps 7 days for free; longer retention is billed per vCPU.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7


@dataclass(frozen=True)
class DatabaseArgs:
    prefix: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # Workload name -> security group that may connect.
    client_security_group_ids: Mapping[str, pulumi.Input[str]]
    engine_version: str
    min_acu: float
    max_acu: float
    instance_count: int
    backup_retention_days: int
    protect: bool


class Database(pulumi.ComponentResource):
    cluster_identifier: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: int
    database_name: str
    master_secret_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    instance_identifiers: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Data stores cannot be deleted by `pulumi destroy` while the stack protects its data.
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)

        key = aws.kms.Key(
            "db-key",
            description=f"{args.prefix} Aurora storage, snapshots and master secret",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=kept,
        )
        aws.kms.Alias(
            "db-key-alias", name=f"alias/{args.prefix}-db", target_key_id=key.key_id, opts=child
        )
        group = aws.ec2.SecurityGroup(
            "db-sg",
            name=f"{args.prefix}-db",
            description="Aurora PostgreSQL",
            vpc_id=args.vpc_id,
            tags={"Name": f"{args.prefix}-db"},
            opts=child,
        )
        allow_clients(
            "db", group, args.client_security_group_ids, ports=(POSTGRES_PORT, POSTGRES_PORT),
            protocol="PostgreSQL", destination="Aurora", opts=child,
        )  # fmt: skip
        subnets = aws.rds.SubnetGroup(
            "db-subnets", name=f"{args.prefix}-db", subnet_ids=list(args.subnet_ids), opts=child
        )
        cluster = aws.rds.Cluster(
            "aurora",
            cluster_identifier=f"{args.prefix}-aurora",
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=args.engine_version,
            database_name=DATABASE_NAME,
            master_username=MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.key_id,
            serverlessv2_scaling_configuration={
                "min_capacity": args.min_acu,
                "max_capacity": args.max_acu,
            },
            storage_encrypted=True,
            kms_key_id=key.arn,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            backup_retention_period=args.backup_retention_days,
            preferred_backup_window="03:00-04:00",
            preferred_maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            deletion_protection=args.protect,
            skip_final_snapshot=not args.protect,
            final_snapshot_identifier=f"{args.prefix}-aurora-final" if args.protect else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            opts=kept,
        )
        instances = [
            aws.rds.ClusterInstance(
                f"aurora-{index + 1}",
                identifier=f"{args.prefix}-aurora-{index + 1}",
                cluster_identifier=cluster.id,
                instance_class="db.serverless",
                engine=cluster.engine,
                engine_version=cluster.engine_version,
                db_subnet_group_name=subnets.name,
                publicly_accessible=False,
                performance_insights_enabled=True,
                performance_insights_kms_key_id=key.arn,
                performance_insights_retention_period=PERFORMANCE_INSIGHTS_RETENTION_DAYS,
                promotion_tier=index,
                opts=kept,
            )
            for index in range(args.instance_count)
        ]

        self.cluster_identifier = cluster.cluster_identifier
        self.endpoint = cluster.endpoint
        self.port = POSTGRES_PORT
        self.database_name = DATABASE_NAME
        self.master_secret_arn = cluster.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn
        )
        self.kms_key_arn = key.arn
        self.instance_identifiers = [instance.identifier for instance in instances]
        self.register_outputs(
            {
                "cluster_identifier": self.cluster_identifier,
                "endpoint": self.endpoint,
                "master_secret_arn": self.master_secret_arn,
            }
        )
