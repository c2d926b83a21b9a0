"""Data at rest: encryption, backups, protection and public access, for every stack."""

from __future__ import annotations

import json

from pulumi_harness import FIRST_APP_PASSWORD, RecordingMocks, StackRun

KMS_KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
SUBNET = "aws:ec2/subnet:Subnet"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def for_bucket(stack: StackRun, resource_type: str, bucket_logical_name: str) -> dict:
    bucket_name = stack.named(BUCKET, bucket_logical_name).inputs["bucket"]
    matches = [r.inputs for r in stack.of_type(resource_type) if r.inputs["bucket"] == bucket_name]
    assert len(matches) == 1, f"{resource_type} for {bucket_name}: {matches}"
    return matches[0]


def test_database_storage_secret_and_insights_use_a_customer_key(stack: StackRun) -> None:
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora").inputs
    db_key = stack.arn_of(KMS_KEY, "db-key")
    assert cluster["storageEncrypted"] is True
    assert cluster["kmsKeyId"] == db_key
    # RDS generates and rotates the password in Secrets Manager; no password passes through.
    assert cluster["manageMasterUserPassword"] is True
    assert "masterPassword" not in cluster
    assert cluster["masterUserSecretKmsKeyId"] == "key-db-key"
    key = stack.named(KMS_KEY, "db-key").inputs
    assert key["enableKeyRotation"] is True
    for instance in stack.of_type("aws:rds/clusterInstance:ClusterInstance"):
        assert instance.inputs["performanceInsightsEnabled"] is True
        assert instance.inputs["performanceInsightsKmsKeyId"] == db_key
        assert instance.inputs["instanceClass"] == "db.serverless"


def test_database_is_aurora_serverless_v2_sized_from_config(stack: StackRun) -> None:
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora").inputs
    assert cluster["engine"] == "aurora-postgresql"
    assert cluster["engineVersion"] == stack.setting("dbEngineVersion")
    pause = int(stack.setting("dbAutoPauseSeconds"))
    assert cluster["serverlessv2ScalingConfiguration"] == {
        "minCapacity": float(stack.setting("dbMinAcu")),
        "maxCapacity": float(stack.setting("dbMaxAcu")),
        **({"secondsUntilAutoPause": pause} if pause else {}),
    }
    # Only dev pauses when idle (its first connection then waits for the resume).
    assert (pause > 0) is (stack.stack == "dev")
    instances = stack.of_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(instances) == int(stack.setting("dbInstanceCount"))


def test_backup_retention_and_deletion_protection_per_stack(stack: StackRun) -> None:
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora").inputs
    is_prod = stack.stack == "prod"
    assert cluster["backupRetentionPeriod"] == int(stack.setting("dbBackupRetentionDays"))
    assert cluster["backupRetentionPeriod"] == (30 if is_prod else 7)
    assert cluster["deletionProtection"] is is_prod
    assert cluster["skipFinalSnapshot"] is not is_prod
    if is_prod:
        assert cluster["finalSnapshotIdentifier"] == "momentum-prod-aurora-final"
    else:
        assert "finalSnapshotIdentifier" not in cluster
    assert stack.setting("protectData") == ("true" if is_prod else "false")
    pool = stack.named("aws:cognito/userPool:UserPool", "users").inputs
    assert pool["deletionProtection"] == ("ACTIVE" if is_prod else "INACTIVE")
    alb = stack.named("aws:lb/loadBalancer:LoadBalancer", "alb").inputs
    assert alb["enableDeletionProtection"] is is_prod
    media = stack.named(BUCKET, "media").inputs
    assert media["forceDestroy"] is not is_prod


def test_cache_is_encrypted_with_a_customer_key_and_spoken_to_over_tls(stack: StackRun) -> None:
    cache = stack.named(REPLICATION_GROUP, "cache").inputs
    assert cache["kmsKeyId"] == stack.arn_of(KMS_KEY, "cache-key")
    assert cache["atRestEncryptionEnabled"] is True
    assert cache["transitEncryptionEnabled"] is True
    assert cache["snapshotRetentionLimit"] == int(stack.setting("cacheSnapshotRetentionDays"))
    environment = {
        variable["name"]: variable["value"]
        for variable in stack.containers("generator")["generator"]["environment"]
    }
    assert environment["MOMENTUM_REDIS_URL"].startswith("rediss://")


def test_cache_is_one_primary_that_dramatiq_can_use_with_a_multi_az_replica_in_prod(
    stack: StackRun,
) -> None:
    """Dramatiq's Redis broker needs every key on one node: no cluster mode, no serverless
    cache (which is a cluster). tests/pipeline/test_redis_topology.py runs the generator on
    this topology and shows the broker failing on a cluster."""
    assert not stack.of_type("aws:elasticache/serverlessCache:ServerlessCache")
    cache = stack.named(REPLICATION_GROUP, "cache").inputs
    assert cache["engine"] == "valkey"
    assert cache["clusterMode"] == "disabled"
    assert "numNodeGroups" not in cache
    assert "replicasPerNodeGroup" not in cache
    parameters = stack.named("aws:elasticache/parameterGroup:ParameterGroup", "cache-parameters")
    assert not parameters.inputs["family"].endswith(".cluster.on")
    assert {"name": "maxmemory-policy", "value": "volatile-lru"} in parameters.inputs["parameters"]
    assert cache["parameterGroupName"] == parameters.inputs["name"]
    replicas = int(stack.setting("cacheReplicas"))
    assert cache["numCacheClusters"] == 1 + replicas
    assert cache["nodeType"] == stack.setting("cacheNodeType")
    highly_available = stack.stack == "prod"
    assert (replicas > 0) is highly_available
    assert cache["multiAzEnabled"] is highly_available
    assert cache["automaticFailoverEnabled"] is highly_available
    environment = {
        variable["name"]: variable["value"]
        for variable in stack.containers("api")["api"]["environment"]
    }
    # The primary endpoint follows a failover; the services never address a node.
    assert environment["MOMENTUM_REDIS_URL"] == (
        f"rediss://master.{cache['replicationGroupId']}.x1y2z3.use1.cache.amazonaws.com:6379/0"
    )


def test_every_bucket_blocks_public_access(stack: StackRun) -> None:
    buckets = stack.of_type(BUCKET)
    assert {b.name for b in buckets} == {"media", "alb-logs"}
    for bucket in buckets:
        block = for_bucket(
            stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket.name
        )
        assert block["blockPublicAcls"] is True
        assert block["blockPublicPolicy"] is True
        assert block["ignorePublicAcls"] is True
        assert block["restrictPublicBuckets"] is True
        ownership = for_bucket(
            stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket.name
        )
        assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_every_bucket_is_encrypted_at_rest(stack: StackRun) -> None:
    encryption = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    media = for_bucket(stack, encryption, "media")["rules"][0]
    assert media["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": stack.arn_of(KMS_KEY, "media-key"),
    }
    assert media["bucketKeyEnabled"] is True
    # Load balancer access logs can only be written with S3-managed keys.
    logs = for_bucket(stack, encryption, "alb-logs")["rules"][0]
    assert logs["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_media_bucket_is_versioned_tiered_and_open_to_the_frontend_only(stack: StackRun) -> None:
    versioning = for_bucket(stack, "aws:s3/bucketVersioning:BucketVersioning", "media")
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    lifecycle = for_bucket(
        stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "media"
    )
    transitions = {
        t["storageClass"]: t["days"] for rule in lifecycle["rules"] for t in rule["transitions"]
    }
    assert transitions["STANDARD_IA"] == 30
    assert transitions["GLACIER_IR"] == 90
    cors = for_bucket(stack, "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration", "media")
    assert [rule["allowedOrigins"] for rule in cors["corsRules"]] == [
        [stack.setting("frontendOrigin")]
    ]
    assert stack.exports["mediaBucket"] == stack.named(BUCKET, "media").inputs["bucket"]


def test_access_logs_expire_per_stack(stack: StackRun) -> None:
    lifecycle = for_bucket(
        stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "alb-logs"
    )
    assert lifecycle["rules"][0]["expiration"]["days"] == int(
        stack.setting("accessLogRetentionDays")
    )


def test_log_groups_keep_logs_as_long_as_the_stack_says(stack: StackRun) -> None:
    groups = {g.inputs["name"]: g for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")}
    application = {
        f"/momentum/{stack.stack}/{name}"
        for name in ("api", "generator", "video-worker", "migrate", "metrics")
    }
    # The audit trail has its own, longer retention (test_infra_audit.py).
    assert set(groups) == application | {f"/momentum/{stack.stack}/audit"}
    for name in application:
        assert groups[name].inputs["retentionInDays"] == int(stack.setting("logRetentionDays"))


def test_encryption_keys_rotate(stack: StackRun) -> None:
    keys = stack.of_type(KMS_KEY)
    assert {k.name for k in keys} == {"db-key", "cache-key", "media-key"}
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)


def test_app_role_secret_is_encrypted_with_the_database_key_and_rotated(stack: StackRun) -> None:
    secret = stack.named("aws:secretsmanager/secret:Secret", "db-app-secret")
    assert secret.inputs["name"] == f"momentum/{stack.stack}/database-app"
    assert secret.inputs["kmsKeyId"] == stack.arn_of(KMS_KEY, "db-key")
    # The JSON AWS's PostgreSQL rotation function reads: where to log in, as whom.
    (version,) = stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.id
    # Marked secret on the wire, so encrypted in the state.
    wire = version.inputs["secretString"]
    assert wire["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    value = json.loads(wire["value"])
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora")
    assert value == {
        "engine": "postgres",
        "host": RecordingMocks(stack).outputs_for(cluster)["endpoint"],
        "port": 5432,
        "dbname": "momentum",
        "username": "momentum_app",
        "password": FIRST_APP_PASSWORD,
    }

    rotation = stack.named("aws:secretsmanager/secretRotation:SecretRotation", "db-app-rotation")
    assert rotation.inputs["secretId"] == secret.id
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 7}
    # The role exists only after the migration task: nothing rotates during `pulumi up`.
    assert rotation.inputs["rotateImmediately"] is False
    rotator = stack.named(
        "aws:serverlessrepository/cloudFormationStack:CloudFormationStack", "db-app-rotator"
    )
    assert rotator.inputs["applicationId"].endswith(
        ":297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
    )
    assert rotator.inputs["semanticVersion"]
    function = rotator.inputs["parameters"]["functionName"]
    assert rotation.inputs["rotationLambdaArn"].endswith(f":function:{function}")
    parameters = rotator.inputs["parameters"]
    assert parameters["kmsKeyArn"] == stack.arn_of(KMS_KEY, "db-key")
    region = stack.config["aws:region"]
    assert parameters["endpoint"] == f"https://secretsmanager.{region}.amazonaws.com"
    # In the private subnets, with the security group the database admits.
    private = {s.id for s in stack.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "private"}
    assert set(parameters["vpcSubnetIds"].split(",")) == private
    group = stack.named("aws:ec2/securityGroup:SecurityGroup", "db-rotation-sg")
    assert parameters["vpcSecurityGroupIds"] == group.id
