"""Object storage: the local folder, and S3 through moto's server mode over real HTTP."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import httpx
import pytest

from momentum_domain.config import Settings
from momentum_domain.kit.storage import (
    MIB,
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    create_storage,
)
from tests.fixtures.videos import S3_BUCKET as BUCKET


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def chunks_of(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionError("the provider hung up")


@pytest.fixture
def s3(s3_endpoint: str) -> S3Storage:
    return S3Storage(BUCKET, region="us-east-1", endpoint_url=s3_endpoint, part_size=5 * MIB)


async def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = os.urandom(700_000)

    stored = await storage.put_stream("videos/l1/v1.mp4", chunks_of(data), "video/mp4")
    small = await storage.put_bytes("thumbs/c1.png", b"png", "image/png")

    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert small.sha256 == hashlib.sha256(b"png").hexdigest()
    assert await storage.get_bytes("videos/l1/v1.mp4") == data
    assert storage.path_for("videos/l1/v1.mp4") == storage.root / "videos/l1/v1.mp4"
    assert mode_of(storage.path_for("videos/l1/v1.mp4")) == 0o644  # readable by the API
    assert await storage.presigned_url("videos/l1/v1.mp4", 60) is None
    await storage.delete("videos/l1/v1.mp4")
    assert not await storage.exists("videos/l1/v1.mp4")
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes("videos/l1/v1.mp4")


async def test_local_stream_failure_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ConnectionError):
        await storage.put_stream("videos/v.mp4", failing_after(b"x" * 1000), "video/mp4")

    assert files_in(tmp_path) == []


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../b", "", "a//b", "a\\b", "./a"])
async def test_unsafe_keys_are_rejected(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidKey):
        await LocalStorage(tmp_path).put_bytes(key, b"x", "text/plain")


async def test_symlink_out_of_the_folder_is_rejected(tmp_path: Path) -> None:
    root, outside = tmp_path / "media", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)

    with pytest.raises(InvalidKey):
        LocalStorage(root).path_for("link/secret.txt")


async def test_s3_multipart_upload_of_a_file_larger_than_a_part(
    s3: S3Storage, s3_endpoint: str
) -> None:
    data = os.urandom(11 * MIB + 123)

    stored = await s3.put_stream("videos/l1/big.mp4", chunks_of(data, MIB), "video/mp4")

    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await s3.get_bytes("videos/l1/big.mp4") == data
    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").head_object(
        Bucket=BUCKET, Key="videos/l1/big.mp4"
    )
    assert head["ETag"].strip('"').endswith("-3")  # 5 MiB + 5 MiB + the rest
    assert head["ContentType"] == "video/mp4"


async def test_s3_small_stream_and_bytes(s3: S3Storage) -> None:
    stored = await s3.put_stream("thumbs/small.png", chunks_of(b"tiny"), "image/png")
    await s3.put_bytes("docs/a.pdf", b"%PDF-1.7", "application/pdf")

    assert stored.size_bytes == 4
    assert await s3.get_bytes("thumbs/small.png") == b"tiny"
    assert await s3.exists("docs/a.pdf")
    await s3.delete("docs/a.pdf")
    assert not await s3.exists("docs/a.pdf")
    with pytest.raises(ObjectNotFound):
        await s3.get_bytes("docs/a.pdf")


async def test_s3_failed_stream_aborts_the_multipart_upload(
    s3: S3Storage, s3_endpoint: str
) -> None:
    with pytest.raises(ConnectionError):
        await s3.put_stream("videos/broken.mp4", failing_after(os.urandom(6 * MIB)), "video/mp4")

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert not await s3.exists("videos/broken.mp4")


async def test_s3_presigned_url_serves_the_object(s3: S3Storage) -> None:
    await s3.put_bytes("videos/p.mp4", b"movie bytes", "video/mp4")

    url = await s3.presigned_url("videos/p.mp4", 60)

    assert url is not None
    assert "Signature=" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"movie bytes"


def test_create_storage_follows_the_backend_setting(settings: Settings, s3_endpoint: str) -> None:
    local = create_storage(settings)
    remote = create_storage(
        settings.model_copy(
            update={
                "storage_backend": "s3",
                "storage_bucket": BUCKET,
                "s3_endpoint_url": s3_endpoint,
            }
        )
    )

    assert isinstance(local, LocalStorage)
    assert local.root == settings.media_dir.resolve()
    assert isinstance(remote, S3Storage)
    assert remote.bucket == BUCKET
