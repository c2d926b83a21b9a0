"""Audit trail: the log group that keeps a copy of every committed audit entry outside the
database (momentum_domain.audit.sink), so that access to the database is not enough to erase
what was done.

Its retention (``auditLogRetentionDays``) is longer than the application logs'. The API's task
role may only create streams in it and append to them (Compute); no role of the stack may
delete the group or its streams or change its retention. Encryption is CloudWatch Logs'
default, as for the other log groups of the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AuditTrailArgs:
    environment: str
    retention_days: int
    protect: bool


class AuditTrail(pulumi.ComponentResource):
    log_group_name: pulumi.Output[str]
    log_group_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("momentum:infra:AuditTrail", name, None, opts)
        group = aws.cloudwatch.LogGroup(
            "audit-logs",
            name=f"/momentum/{args.environment}/audit",
            retention_in_days=args.retention_days,
            # `pulumi destroy` must not take the trail with it where data is protected.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.log_group_name = group.name
        self.log_group_arn = group.arn
        self.register_outputs({"log_group_name": group.name, "log_group_arn": group.arn})
