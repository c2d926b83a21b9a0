"""Database: Aurora Serverless v2 PostgreSQL, encrypted with its own KMS key.

The master password is generated and rotated by RDS in Secrets Manager; only the migration task
logs in with it. The services log in as the application role (DML only), whose password lives
in a secret of its own, rotated by Secrets Manager with AWS's single-user PostgreSQL rotation
function; the services read that secret at each new connection, so rotation needs no restart.
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
# The services' login (momentum_domain.migrations.roles creates it, the migration task runs it).
APP_USERNAME = "momentum_app"
APP_ROTATION_DAYS = 7
# The network gives the rotation function a security group of its own under this name.
ROTATION_WORKLOAD = "db-rotation"
ROTATION_APPLICATION = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
    "SecretsManagerRDSPostgreSQLRotationSingleUser"
)
ROTATION_APPLICATION_VERSION = "1.1.671"


@dataclass(frozen=True)
class DatabaseArgs:
    prefix: str
    environment: str
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # Workload name -> security group that may connect (ROTATION_WORKLOAD's is the function's).
    client_security_group_ids: Mapping[str, pulumi.Input[str]]
    engine_version: str
    min_acu: float
    max_acu: float
    instance_count: int
    backup_retention_days: int
    protect: bool
    # At min_acu 0 the instances pause after this many idle seconds (and cost no ACU).
    auto_pause_seconds: int = 0


class Database(pulumi.ComponentResource):
    cluster_identifier: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: int
    database_name: str
    master_secret_arn: pulumi.Output[str]
    app_secret_arn: pulumi.Output[str]
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
                # The first connection to a paused cluster waits ~15 s for it to resume.
                **(
                    {"seconds_until_auto_pause": args.auto_pause_seconds}
                    if args.min_acu == 0
                    else {}
                ),
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

        app_secret = self._app_secret(args, key, cluster)

        self.cluster_identifier = cluster.cluster_identifier
        self.endpoint = cluster.endpoint
        self.port = POSTGRES_PORT
        self.database_name = DATABASE_NAME
        self.master_secret_arn = cluster.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn
        )
        self.app_secret_arn = app_secret.arn
        self.kms_key_arn = key.arn
        self.instance_identifiers = [instance.identifier for instance in instances]
        self.register_outputs(
            {
                "cluster_identifier": self.cluster_identifier,
                "endpoint": self.endpoint,
                "master_secret_arn": self.master_secret_arn,
                "app_secret_arn": self.app_secret_arn,
            }
        )

    def _app_secret(
        self, args: DatabaseArgs, key: aws.kms.Key, cluster: aws.rds.Cluster
    ) -> aws.secretsmanager.Secret:
        """The application role's secret, in the JSON the rotation function reads and writes,
        rotated every APP_ROTATION_DAYS days."""
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            "db-app-secret",
            name=f"momentum/{args.environment}/database-app",
            description=f"{APP_USERNAME}, the {args.environment} services' database login",
            kms_key_id=key.arn,
            recovery_window_in_days=30 if args.protect else 7,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # The first password: generated by Secrets Manager, then owned by the rotation (hence
        # ignore_changes: a later `pulumi up` must not put the first one back). It sits in the
        # state, encrypted, until the first rotation replaces it.
        first_password = aws.secretsmanager.get_random_password_output(
            password_length=40,
            exclude_punctuation=True,
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).random_password
        first_version = aws.secretsmanager.SecretVersion(
            "db-app-secret-first",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(
                pulumi.Output.json_dumps(
                    {
                        "engine": "postgres",
                        "host": cluster.endpoint,
                        "port": POSTGRES_PORT,
                        "dbname": DATABASE_NAME,
                        "username": APP_USERNAME,
                        "password": first_password,
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secret_string"]),
        )
        # AWS's rotation function, in the VPC next to the database (its security group comes
        # from the network: HTTPS to the Secrets Manager endpoint, PostgreSQL to the cluster).
        rotator = aws.serverlessrepository.CloudFormationStack(
            "db-app-rotator",
            name=f"{args.prefix}-db-app-rotator",
            application_id=ROTATION_APPLICATION,
            semantic_version=ROTATION_APPLICATION_VERSION,
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "functionName": f"{args.prefix}-db-app-rotator",
                "endpoint": f"https://secretsmanager.{args.region}.amazonaws.com",
                "kmsKeyArn": key.arn,
                "vpcSubnetIds": pulumi.Output.all(*args.subnet_ids).apply(",".join),
                "vpcSecurityGroupIds": args.client_security_group_ids[ROTATION_WORKLOAD],
            },
            opts=child,
        )
        aws.secretsmanager.SecretRotation(
            "db-app-rotation",
            secret_id=secret.id,
            rotation_lambda_arn=rotator.outputs.apply(lambda outputs: outputs["RotationLambdaARN"]),
            rotation_rules={"automatically_after_days": APP_ROTATION_DAYS},
            # The role exists only once the migration task has run: the first rotation waits
            # for the schedule (or an operator's `aws secretsmanager rotate-secret`).
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[first_version]),
        )
        return secret
