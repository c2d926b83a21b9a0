"""infra/scripts/restore_drill.py, the restore drill operators run against staging.

RDS and the RDS Data API are moto's server (real API calls over HTTP): moto restores a cluster
to a point in time (at once: the timings it reports here mean nothing), creates and deletes
instances and clusters, manages the master secret, and answers the Data API with the rows a test
queues. Two things moto cannot do: run SQL (the test queues the row the check query would return
and checks the query itself), and EnableHttpEndpoint, which it does not implement: that one call
is answered with the response AWS documents for it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from botocore.awsrequest import AWSResponse
from moto.server import ThreadedMotoServer

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "restore_drill.py"
SOURCE = "momentum-staging-aurora"
REGION = "us-east-1"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("restore_drill", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


drill = _load_script()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    # moto's state is per process, shared with every other moto server a later test starts:
    # leave no cluster behind (its managed password breaks /moto-api/data.json for them).
    httpx.post(f"http://{host}:{port}/moto-api/reset").raise_for_status()
    server.stop()


class Aws:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.rds = boto3.client("rds", endpoint_url=endpoint, region_name=REGION)
        self.rds_data = boto3.client("rds-data", endpoint_url=endpoint, region_name=REGION)
        self.http_endpoints: list[str] = []
        self.rds.meta.events.register(
            "before-call.rds.EnableHttpEndpoint", self._enable_http_endpoint
        )
        self.statements: list[dict[str, Any]] = []
        self.rds_data.meta.events.register(
            "provide-client-params.rds-data.ExecuteStatement",
            lambda params, **_: self.statements.append(dict(params)),
        )

    def _enable_http_endpoint(
        self, params: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]]:
        # ``params`` is the serialized request (RDS speaks the query protocol).
        arn = params["body"]["ResourceArn"]
        self.http_endpoints.append(arn)
        return AWSResponse(params["url"], 200, {}, None), {
            "ResourceArn": arn,
            "HttpEndpointEnabled": True,
        }

    def queue_check_row(self, record: list[dict[str, Any]]) -> None:
        httpx.post(
            f"{self.endpoint}/moto-api/static/rds-data/statement-results",
            json={"results": [{"records": [record]}]},
        ).raise_for_status()

    def clusters(self) -> set[str]:
        return {c["DBClusterIdentifier"] for c in self.rds.describe_db_clusters()["DBClusters"]}

    def instances(self) -> set[str]:
        return {i["DBInstanceIdentifier"] for i in self.rds.describe_db_instances()["DBInstances"]}


@pytest.fixture(scope="module")
def source_cluster(endpoint: str) -> str:
    """The staging cluster to restore from, once: moto names an automatic snapshot after the
    cluster and the minute, so a cluster re-created within a minute would collide."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        rds = boto3.client("rds", endpoint_url=endpoint, region_name=REGION)
        rds.create_db_cluster(
            DBClusterIdentifier=SOURCE,
            Engine="aurora-postgresql",
            EngineVersion="15.10",
            MasterUsername="momentum_admin",
            ManageMasterUserPassword=True,
            DatabaseName="momentum",
            StorageEncrypted=True,
            ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
            BackupRetentionPeriod=7,
        )
    return SOURCE


@pytest.fixture
def aws(endpoint: str, source_cluster: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Aws(endpoint)


COUNTS = [12, 7, 49, 30, 210, 3, 5, 4, 61]
NEWEST_AUDIT = "2026-11-25 03:09:58.123+00"
# moto's restorable window runs from the cluster's creation to the real present.
NOW = datetime.now(UTC)
STAMP = NOW.strftime("%Y%m%d%H%M")


def check_row(counts: list[int], newest: str | None) -> list[dict[str, Any]]:
    return [{"longValue": n} for n in counts] + [
        {"stringValue": newest} if newest else {"isNull": True}
    ]


def test_a_drill_restores_checks_times_and_deletes(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    aws.queue_check_row(check_row(COUNTS, NEWEST_AUDIT))
    report_path = tmp_path / "drill.json"
    status = drill.main(
        ["--poll", "1", "--json", str(report_path)],
        rds=aws.rds,
        rds_data=aws.rds_data,
        now=lambda: NOW,
    )
    out = capsys.readouterr().out
    assert status == 0, out
    target = f"{SOURCE}-drill-{STAMP}"

    report = json.loads(report_path.read_text())
    assert report["error"] is None
    assert report["target"] == target
    assert report["counts"] == dict(zip(drill.KEY_TABLES, COUNTS, strict=True))
    assert report["newest_audit_entry"] == NEWEST_AUDIT
    assert list(report["timings_seconds"]) == [
        "restore cluster",
        "create instance",
        "managed master secret",
        "enable Data API",
        "read-only check",
        "delete instance",
        "delete cluster",
    ]
    assert "restore -> readable" in out
    assert f"{'payments':<28}{5:>10}" in out

    # The check ran once, read-only, on the restored cluster with its own managed secret.
    (statement,) = aws.statements
    assert statement["sql"] == drill.CHECK_SQL
    assert statement["sql"].split()[0] == "SELECT"
    counted = re.findall(r"count\(\*\) FROM (\w+)", statement["sql"])
    assert tuple(counted) == drill.KEY_TABLES  # the order the report names them in
    words = set(statement["sql"].lower().split())
    assert not {"insert", "update", "delete", "drop", "alter"} & words
    assert statement["database"] == "momentum"
    assert statement["resourceArn"].endswith(f":cluster:{target}")
    assert aws.http_endpoints == [statement["resourceArn"]]
    source_secret = aws.rds.describe_db_clusters(DBClusterIdentifier=SOURCE)["DBClusters"][0][
        "MasterUserSecret"
    ]["SecretArn"]
    assert statement["secretArn"] != source_secret

    # Nothing of the drill is left; the source is untouched.
    assert aws.clusters() == {SOURCE}
    assert aws.instances() == set()


def test_a_failed_check_still_deletes_the_restored_cluster(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # No row queued: moto answers the check with no records, as an empty result would.
    status = drill.main(
        ["--poll", "1", "--target", f"{SOURCE}-drill-failing"],
        rds=aws.rds,
        rds_data=aws.rds_data,
        now=lambda: NOW,
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "FAILED: DrillFailed: the check query returned no row" in out
    assert aws.clusters() == {SOURCE}
    assert aws.instances() == set()


def test_keep_leaves_the_restored_cluster(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.queue_check_row(check_row(COUNTS, None))
    status = drill.main(
        ["--poll", "1", "--keep", "--target", "momentum-staging-aurora-drill-kept"],
        rds=aws.rds,
        rds_data=aws.rds_data,
        now=lambda: NOW,
    )
    assert status == 0, capsys.readouterr().out
    assert aws.clusters() == {SOURCE, "momentum-staging-aurora-drill-kept"}
    aws.rds.delete_db_instance(
        DBInstanceIdentifier="momentum-staging-aurora-drill-kept-1", SkipFinalSnapshot=True
    )
    aws.rds.delete_db_cluster(
        DBClusterIdentifier="momentum-staging-aurora-drill-kept", SkipFinalSnapshot=True
    )


def test_dry_run_prints_the_plan_and_creates_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = aws.rds.describe_db_clusters(DBClusterIdentifier=SOURCE)["DBClusters"][0][
        "LatestRestorableTime"
    ]
    status = drill.main(
        ["--dry-run", "--restore-time", latest.isoformat()],
        rds=aws.rds,
        rds_data=aws.rds_data,
        now=lambda: latest + timedelta(seconds=1),
    )
    stamp = (latest + timedelta(seconds=1)).strftime("%Y%m%d%H%M")
    out = capsys.readouterr().out
    assert status == 0
    assert f"source cluster    {SOURCE} (aurora-postgresql 15.10" in out
    assert f"restore to        {latest.isoformat()}" in out
    assert f"new cluster       {SOURCE}-drill-{stamp}" in out
    assert "0.5-4.0 ACU" in out
    assert f"delete {SOURCE}-drill-{stamp}-1 and {SOURCE}-drill-{stamp}" in out
    assert "dry run: nothing created" in out
    assert aws.clusters() == {SOURCE}
    assert aws.statements == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "momentum-prod-aurora"], "looks like production"),
        (["--target", "momentum-staging-aurora"], "must contain '-drill-'"),
        (["--restore-time", "2026-11-25T03:10:00"], "give the time zone"),
        (["--restore-time", "yesterday"], "invalid"),
    ],
)
def test_bad_arguments_create_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        drill.main(argv, rds=aws.rds, rds_data=aws.rds_data, now=lambda: NOW)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert aws.clusters() == {SOURCE}


def test_a_restore_time_in_the_future_is_refused(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    future = (NOW + timedelta(minutes=5)).isoformat()
    status = drill.main(
        ["--restore-time", future], rds=aws.rds, rds_data=aws.rds_data, now=lambda: NOW
    )
    assert status == 2
    assert "outside momentum-staging-aurora's restorable window" in capsys.readouterr().err
    assert aws.clusters() == {SOURCE}
