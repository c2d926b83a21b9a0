"""Storage: the media bucket (generated videos, thumbnails, course assets).

Private, versioned and encrypted with its own KMS key. Media moves to Infrequent Access after
30 days and to Glacier Instant Retrieval after 90: the frontend still streams old lessons, and
Instant Retrieval serves them in milliseconds where Flexible Retrieval would need a restore.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

INFREQUENT_ACCESS_AFTER_DAYS = 30
GLACIER_AFTER_DAYS = 90
NONCURRENT_VERSIONS_KEPT_DAYS = 30


@dataclass(frozen=True)
class StorageArgs:
    prefix: str
    account_id: str
    cors_origins: Sequence[str]
    protect: bool


class Storage(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(
            "media-key",
            description=f"{args.prefix} media bucket",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        bucket = aws.s3.Bucket(
            "media",
            # The account id keeps the global bucket name unique and predictable.
            bucket=f"{args.prefix}-media-{args.account_id}",
            force_destroy=not args.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        make_private("media", bucket, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            "media-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    # One data key per bucket instead of per object keeps KMS requests cheap.
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            "media-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            "media-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "tier-generated-media",
                    "status": "Enabled",
                    "filter": {},
                    "transitions": [
                        {"days": INFREQUENT_ACCESS_AFTER_DAYS, "storage_class": "STANDARD_IA"},
                        {"days": GLACIER_AFTER_DAYS, "storage_class": "GLACIER_IR"},
                    ],
                    "noncurrent_version_expiration": {
                        "noncurrent_days": NONCURRENT_VERSIONS_KEPT_DAYS
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketCorsConfiguration(
            "media-cors",
            bucket=bucket.id,
            cors_rules=[
                {
                    "allowed_origins": list(args.cors_origins),
                    "allowed_methods": ["GET", "HEAD", "PUT"],
                    "allowed_headers": ["Content-Type", "Content-MD5", "x-amz-*"],
                    "expose_headers": ["ETag"],
                    "max_age_seconds": 3600,
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            "media-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(_deny_insecure_transport),
            opts=child,
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})


def _deny_insecure_transport(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def make_private(name: str, bucket: aws.s3.Bucket, *, opts: pulumi.ResourceOptions) -> None:
    """No ACLs (the bucket owner owns every object) and no public access of any kind."""
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
