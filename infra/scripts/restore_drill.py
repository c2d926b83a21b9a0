"""Restore drill: restore an Aurora cluster to a point in time into a new cluster, read it, time
it, delete it. Proves the backups restore and measures the database part of our RTO
(docs/runbooks/restore-drill.md).

    python infra/scripts/restore_drill.py --dry-run                 # the plan; describes only
    python infra/scripts/restore_drill.py                           # latest restorable time
    python infra/scripts/restore_drill.py --restore-time 2026-11-25T03:10:00Z --json drill.json

Steps: restore ``--source`` (default momentum-staging-aurora) into ``<source>-drill-<UTC stamp>``
with the source's subnets, security group, key and capacity; add one db.serverless instance;
give the restored cluster an RDS-managed master secret (a point-in-time restore brings back the
password of that time, which the source's secret may no longer hold); enable the RDS Data API on
it and run one read-only SELECT (row counts of the key tables and the newest audit entry) over
HTTPS, so no network path into the VPC is needed; print the timings; delete the instance and
the cluster (no final snapshot), also when a step failed, unless ``--keep``.

Needs: rds:Describe*, RestoreDBClusterToPointInTime, CreateDBInstance, ModifyDBCluster,
EnableHttpEndpoint, DeleteDBInstance, DeleteDBCluster, AddTagsToResource; rds-data:
ExecuteStatement; secretsmanager:GetSecretValue and CreateSecret (the managed secret); kms on
the database key.

Exit status: 0 drill passed; 1 a step failed (the restored cluster is deleted unless --keep);
2 bad arguments (nothing created).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

DEFAULT_SOURCE = "momentum-staging-aurora"
DATABASE = "momentum"
ENGINE = "aurora-postgresql"
# What the check counts: enough to see the restore holds the platform's data, read-only.
KEY_TABLES = (
    "users",
    "courses",
    "lessons",
    "enrollments",
    "progress",
    "course_generation_jobs",
    "payments",
    "subscriptions",
    "audit_logs",
)
# One row: a count per key table, in KEY_TABLES' order, then the newest audit entry's time.
CHECK_SQL = """SELECT
  (SELECT count(*) FROM users), (SELECT count(*) FROM courses), (SELECT count(*) FROM lessons),
  (SELECT count(*) FROM enrollments), (SELECT count(*) FROM progress),
  (SELECT count(*) FROM course_generation_jobs), (SELECT count(*) FROM payments),
  (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM audit_logs),
  (SELECT max(created_at)::text FROM audit_logs)"""
# A drill cluster must not pause (minimum 0 ACU) while the check waits on it.
MIN_ACU = 0.5


class DrillFailed(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    source: str
    target: str
    restore_time: datetime | None  # None: the latest restorable time
    database: str
    keep: bool

    def lines(self, source: dict[str, Any]) -> list[str]:
        when = self.restore_time.isoformat() if self.restore_time else "latest restorable time"
        scaling = _scaling(source)
        return [
            f"source cluster    {self.source} ({source.get('Engine')} "
            f"{source.get('EngineVersion')}, {source.get('Status')})",
            f"restorable        {_iso(source.get('EarliestRestorableTime'))} .. "
            f"{_iso(source.get('LatestRestorableTime'))}",
            f"restore to        {when}",
            f"new cluster       {self.target} (subnets {source.get('DBSubnetGroup')}, "
            f"security groups {', '.join(_security_groups(source))}, "
            f"key {source.get('KmsKeyId')}, {scaling['MinCapacity']}-{scaling['MaxCapacity']} ACU)",
            f"new instance      {self.target}-1 (db.serverless)",
            "check             RDS-managed master secret, Data API, one read-only SELECT: "
            f"row counts of {', '.join(KEY_TABLES)}; newest audit entry",
            "afterwards        "
            + (
                "KEEP the restored cluster (--keep): delete it yourself"
                if self.keep
                else f"delete {self.target}-1 and {self.target} (no final snapshot)"
            ),
        ]


@dataclass
class Report:
    plan: Plan
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    newest_audit_entry: str | None = None
    source_lag_seconds: float | None = None
    error: str | None = None

    @property
    def restore_to_readable_seconds(self) -> float:
        """From the restore request to the first answered query: the database part of RTO."""
        return sum(
            seconds
            for step, seconds in self.timings.items()
            if step not in ("delete instance", "delete cluster")
        )

    def lines(self) -> list[str]:
        out = [f"{'step':<28}{'seconds':>10}"]
        out += [f"{step:<28}{seconds:>10.1f}" for step, seconds in self.timings.items()]
        out.append(f"{'restore -> readable':<28}{self.restore_to_readable_seconds:>10.1f}")
        if self.source_lag_seconds is not None:
            out.append(
                f"source's latest restorable time was {self.source_lag_seconds:.0f} s behind "
                "(the RPO at that moment)"
            )
        out += [f"{table:<28}{count:>10}" for table, count in self.counts.items()]
        if self.counts:
            out.append(f"newest audit entry: {self.newest_audit_entry or 'none'}")
        if self.error:
            out.append(f"FAILED: {self.error}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.plan.source,
            "target": self.plan.target,
            "restore_time": self.plan.restore_time.isoformat() if self.plan.restore_time else None,
            "timings_seconds": self.timings,
            "restore_to_readable_seconds": self.restore_to_readable_seconds,
            "source_lag_seconds": self.source_lag_seconds,
            "counts": self.counts,
            "newest_audit_entry": self.newest_audit_entry,
            "error": self.error,
        }


class Drill:
    def __init__(
        self,
        rds: Any,
        rds_data: Any,
        plan: Plan,
        *,
        poll: float = 30.0,
        timeout: float = 3 * 3600,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        say: Callable[[str], None] = print,
    ) -> None:
        self._rds = rds
        self._data = rds_data
        self.plan = plan
        self._poll = poll
        self._timeout = timeout
        self._clock = clock
        self._now = now
        self._say = say

    def source(self) -> dict[str, Any]:
        clusters = self._rds.describe_db_clusters(DBClusterIdentifier=self.plan.source)
        source: dict[str, Any] = clusters["DBClusters"][0]
        when = self.plan.restore_time
        earliest, latest = source.get("EarliestRestorableTime"), source.get("LatestRestorableTime")
        if when is not None and (
            (earliest and when < earliest) or (latest and when > latest) or when > self._now()
        ):
            raise DrillFailed(
                f"{when.isoformat()} is outside {self.plan.source}'s restorable window "
                f"{_iso(earliest)} .. {_iso(latest)}"
            )
        return source

    def run(self) -> Report:
        report = Report(self.plan)
        source = self.source()
        latest = source.get("LatestRestorableTime")
        if latest is not None:
            report.source_lag_seconds = (self._now() - latest).total_seconds()
        try:
            self._restore(source, report)
        except Exception as error:  # report it, then clean up
            report.error = f"{type(error).__name__}: {error}"
        finally:
            if not self.plan.keep:
                self._delete(report)
        return report

    def _step(self, report: Report, name: str, action: Callable[[], Any]) -> Any:
        self._say(f"... {name}")
        started = self._clock()
        try:
            return action()
        finally:
            report.timings[name] = self._clock() - started

    def _restore(self, source: dict[str, Any], report: Report) -> None:
        plan, rds = self.plan, self._rds
        request: dict[str, Any] = {
            "SourceDBClusterIdentifier": plan.source,
            "DBClusterIdentifier": plan.target,
            "DBSubnetGroupName": source["DBSubnetGroup"],
            "VpcSecurityGroupIds": _security_groups(source),
            "ServerlessV2ScalingConfiguration": _scaling(source),
            "DeletionProtection": False,
            "Tags": [{"Key": "Purpose", "Value": "restore-drill"}],
        }
        if source.get("KmsKeyId"):
            request["KmsKeyId"] = source["KmsKeyId"]
        if plan.restore_time is None:
            request["UseLatestRestorableTime"] = True
        else:
            request["RestoreToTime"] = plan.restore_time
        self._step(report, "restore cluster", lambda: self._restore_cluster(request))
        self._step(
            report,
            "create instance",
            lambda: self._create_instance(),
        )
        secret_arn = self._step(report, "managed master secret", lambda: self._secret(source))
        cluster_arn = self._cluster()["DBClusterArn"]
        self._step(
            report,
            "enable Data API",
            lambda: rds.enable_http_endpoint(ResourceArn=cluster_arn),
        )
        record = self._step(report, "read-only check", lambda: self._check(cluster_arn, secret_arn))
        values = [_field_value(f) for f in record]
        report.counts = {table: int(v) for table, v in zip(KEY_TABLES, values, strict=False)}
        report.newest_audit_entry = (
            values[len(KEY_TABLES)] if len(values) > len(KEY_TABLES) else None
        )

    def _restore_cluster(self, request: dict[str, Any]) -> None:
        self._rds.restore_db_cluster_to_point_in_time(**request)
        self._wait("db_cluster_available", DBClusterIdentifier=self.plan.target)

    def _create_instance(self) -> None:
        self._rds.create_db_instance(
            DBInstanceIdentifier=f"{self.plan.target}-1",
            DBClusterIdentifier=self.plan.target,
            DBInstanceClass="db.serverless",
            Engine=ENGINE,
        )
        self._wait("db_instance_available", DBInstanceIdentifier=f"{self.plan.target}-1")

    def _secret(self, source: dict[str, Any]) -> str:
        cluster = self._cluster()
        if not cluster.get("MasterUserSecret"):
            key = (source.get("MasterUserSecret") or {}).get("KmsKeyId") or source.get("KmsKeyId")
            self._rds.modify_db_cluster(
                DBClusterIdentifier=self.plan.target,
                ManageMasterUserPassword=True,
                ApplyImmediately=True,
                **({"MasterUserSecretKmsKeyId": key} if key else {}),
            )
        deadline = self._clock() + self._timeout
        while True:
            secret = self._cluster().get("MasterUserSecret") or {}
            if secret.get("SecretStatus") == "active" and secret.get("SecretArn"):
                return str(secret["SecretArn"])
            if self._clock() > deadline:
                raise DrillFailed("the restored cluster's master secret never became active")
            time.sleep(self._poll)

    def _check(self, cluster_arn: str, secret_arn: str) -> list[dict[str, Any]]:
        # A fresh Data API endpoint can refuse the first calls for a little while.
        deadline = self._clock() + min(self._timeout, 600)
        while True:
            try:
                response = self._data.execute_statement(
                    resourceArn=cluster_arn,
                    secretArn=secret_arn,
                    database=self.plan.database,
                    sql=CHECK_SQL,
                )
                break
            except self._data.exceptions.BadRequestException as error:
                # Only "HttpEndpoint is not enabled" is worth waiting out; an SQL error is not.
                if "HttpEndpoint" not in str(error) or self._clock() > deadline:
                    raise
                time.sleep(self._poll)
        records = response.get("records") or []
        if not records:
            raise DrillFailed("the check query returned no row")
        return list(records[0])

    def _delete(self, report: Report) -> None:
        rds, target = self._rds, self.plan.target
        instance = f"{target}-1"

        def delete_instance() -> None:
            try:
                rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
            except rds.exceptions.DBInstanceNotFoundFault:
                return
            self._wait("db_instance_deleted", DBInstanceIdentifier=instance)

        def delete_cluster() -> None:
            try:
                rds.delete_db_cluster(DBClusterIdentifier=target, SkipFinalSnapshot=True)
            except rds.exceptions.DBClusterNotFoundFault:
                return
            self._wait("db_cluster_deleted", DBClusterIdentifier=target)

        for name, action in (
            ("delete instance", delete_instance),
            ("delete cluster", delete_cluster),
        ):
            try:
                self._step(report, name, action)
            except Exception as error:
                message = f"{name} failed ({error}); delete {target} by hand"
                report.error = f"{report.error}; {message}" if report.error else message

    def _cluster(self) -> dict[str, Any]:
        clusters = self._rds.describe_db_clusters(DBClusterIdentifier=self.plan.target)
        return dict(clusters["DBClusters"][0])

    def _wait(self, waiter: str, **identifier: str) -> None:
        delay = max(1, round(self._poll))
        self._rds.get_waiter(waiter).wait(
            **identifier,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(self._timeout // delay))},
        )


def _scaling(source: dict[str, Any]) -> dict[str, float]:
    scaling = source.get("ServerlessV2ScalingConfiguration") or {}
    return {
        "MinCapacity": max(MIN_ACU, float(scaling.get("MinCapacity", MIN_ACU))),
        "MaxCapacity": max(MIN_ACU, float(scaling.get("MaxCapacity", 2))),
    }


def _security_groups(source: dict[str, Any]) -> list[str]:
    return [g["VpcSecurityGroupId"] for g in source.get("VpcSecurityGroups", [])]


def _field_value(value: dict[str, Any]) -> Any:
    if value.get("isNull"):
        return None
    for kind in ("longValue", "stringValue", "doubleValue", "booleanValue"):
        if kind in value:
            return value[kind]
    raise DrillFailed(f"unexpected Data API field {value}")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "?"


def _utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the time zone, e.g. ...Z")
    return parsed.astimezone(UTC)


def main(
    argv: Sequence[str] | None = None,
    *,
    rds: Any = None,
    rds_data: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="cluster to restore from")
    parser.add_argument(
        "--restore-time", type=_utc, help="ISO 8601 with zone (default: latest restorable)"
    )
    parser.add_argument("--target", help="new cluster's name (default: <source>-drill-<stamp>)")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, create nothing")
    parser.add_argument("--keep", action="store_true", help="leave the restored cluster running")
    parser.add_argument(
        "--allow-prod", action="store_true", help="allow a source whose name contains 'prod'"
    )
    parser.add_argument("--poll", type=float, default=30, help="seconds between looks")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per step")
    parser.add_argument("--json", dest="json_path", help="also write the report here")
    parser.add_argument("--region", help="default: the AWS SDK's")
    args = parser.parse_args(argv)

    if "prod" in args.source and not args.allow_prod:
        parser.error(f"{args.source} looks like production: drills run against staging")
    target = args.target or f"{args.source}-drill-{now().strftime('%Y%m%d%H%M')}"
    if "-drill-" not in target or target == args.source:
        parser.error("the target's name must contain '-drill-' (it is deleted afterwards)")
    plan = Plan(args.source, target, args.restore_time, args.database, args.keep)
    drill = Drill(
        rds or boto3.client("rds", region_name=args.region),
        rds_data or boto3.client("rds-data", region_name=args.region),
        plan,
        poll=args.poll,
        timeout=args.timeout,
        now=now,
    )
    try:
        source = drill.source()
    except DrillFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 2
    print("\n".join(plan.lines(source)))
    if args.dry_run:
        print("dry run: nothing created")
        return 0
    report = drill.run()
    print("\n".join(report.lines()))
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report.as_json(), out, indent=2)
    return 1 if report.error else 0


if __name__ == "__main__":
    sys.exit(main())
