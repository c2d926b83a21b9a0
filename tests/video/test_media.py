"""``GET /media/{key}`` on a signed link: local files with HTTP range requests; S3 by redirect to
a presigned URL (and the lesson itself hands out presigned URLs on S3). Who gets a link is
tests/api/test_private_media.py's subject."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import boto3
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_api.videos.links import MediaLinks
from momentum_dev.fakes.heygen import FakeHeyGen
from momentum_domain.catalog.models import VideoStatus
from momentum_domain.config import Settings
from momentum_domain.kit.storage import MIB, LocalStorage, S3Storage
from momentum_domain.videos.models import VideoJobStatus
from tests.fixtures.app import AppClient, serve
from tests.fixtures.videos import (
    S3_BUCKET,
    MakeVideos,
    WorkerFactory,
    lessons_of,
    running,
    wait_for_status,
)

Client = httpx.AsyncClient
KEY = "videos/lesson-1/hg1.mp4"
CONTENT = os.urandom(300_000)


def signed(client: Client, key: str) -> str:
    """A link to the file signed by the API's own key, as the lesson endpoint hands them out."""
    assert isinstance(client, AppClient)
    links: MediaLinks = client.app.state.media_links
    return links.sign(key, None).url


@pytest.fixture(scope="module")
async def stored(api_settings: Settings) -> bytes:
    await LocalStorage(api_settings.media_dir).put_bytes(KEY, CONTENT, "video/mp4")
    return CONTENT


async def test_whole_file(video_client: Client, stored: bytes) -> None:
    response = await video_client.get(signed(video_client, KEY))

    assert response.status_code == 200
    assert response.content == stored
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(stored))


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=299990-", 299_990, 299_999),
        ("bytes=-50", 299_950, 299_999),
        ("bytes=0-0", 0, 0),
        ("bytes=200000-999999999", 200_000, 299_999),
    ],
)
async def test_range_requests_get_the_right_bytes(
    video_client: Client, stored: bytes, header: str, first: int, last: int
) -> None:
    response = await video_client.get(signed(video_client, KEY), headers={"Range": header})

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(stored)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == stored[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=500-100", "bytes=-0"])
async def test_unsatisfiable_range_is_416(video_client: Client, stored: bytes, header: str) -> None:
    response = await video_client.get(signed(video_client, KEY), headers={"Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(stored)}"
    assert response.json()["title"] == "Range not satisfiable"


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "items=0-5", "bytes=abc"])
async def test_ranges_it_does_not_serve_get_the_whole_file(
    video_client: Client, stored: bytes, header: str
) -> None:
    response = await video_client.get(signed(video_client, KEY), headers={"Range": header})

    assert response.status_code == 200
    assert response.content == stored


async def test_missing_file_is_404_on_a_signed_link_and_403_on_a_bare_path(
    video_client: Client,
) -> None:
    response = await video_client.get(signed(video_client, "videos/nope.mp4"))
    unsigned = await video_client.get("/media/videos/nope.mp4")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert unsigned.status_code == 403  # the same as for a file that exists: nothing to learn


async def test_keys_cannot_climb_out_of_the_media_folder(video_client: Client) -> None:
    response = await video_client.get("/media/videos/%2E%2E/%2E%2E/secret.txt")

    assert response.status_code == 404
    assert response.json()["title"] == "Invalid storage key"


@pytest.fixture(scope="module")
async def s3_client(
    api_settings: Settings, s3_endpoint: str
) -> AsyncIterator[tuple[Client, S3Storage]]:
    settings = api_settings.model_copy(
        update={
            "storage_backend": "s3",
            "storage_bucket": S3_BUCKET,
            "s3_endpoint_url": s3_endpoint,
        }
    )
    storage = S3Storage(S3_BUCKET, region=settings.aws_region, endpoint_url=s3_endpoint)
    async with serve(create_app(settings)) as client:
        yield client, storage


async def test_s3_media_redirects_to_a_short_lived_presigned_url(
    s3_client: tuple[Client, S3Storage],
) -> None:
    client, storage = s3_client
    await storage.put_bytes(KEY, CONTENT, "video/mp4")

    response = await client.get(signed(client, KEY), follow_redirects=False)
    unsigned = await client.get(f"/media/{KEY}", follow_redirects=False)

    assert unsigned.status_code == 403
    assert response.status_code == 302
    location = response.headers["location"]
    assert "Expires=" in location
    assert response.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as direct:
        video = await direct.get(location, headers={"Range": "bytes=0-99"})
    assert video.status_code == 206
    assert video.content == CONTENT[:100]


async def test_worker_streams_a_multipart_video_to_s3_and_the_api_presigns_it(
    s3_client: tuple[Client, S3Storage],
    s3_endpoint: str,
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client, _ = s3_client
    fake_heygen.video_size = 6 * MIB  # more than one 5 MiB part
    storage = S3Storage(S3_BUCKET, region="us-east-1", endpoint_url=s3_endpoint, part_size=5 * MIB)
    ids = await make_videos(1)

    async with running(make_worker(store=storage)):
        [video] = await wait_for_status(sessions, ids)

    [lesson] = await lessons_of(sessions, [video])
    assert video.status is VideoJobStatus.COMPLETED
    assert lesson.video_status is VideoStatus.READY
    assert lesson.video_url == f"/media/{video.storage_key}"  # the API presigns on read
    # Day 1 is a preview anyone may open: its link goes straight to the bucket.
    opened = await client.get(f"/courses/{lesson.course_id}/lessons/1")
    presigned = opened.json()["video_url"]
    assert presigned.startswith(f"{s3_endpoint}/{S3_BUCKET}/{video.storage_key}?")
    async with httpx.AsyncClient() as direct:
        content = (await direct.get(presigned)).content
    assert hashlib.sha256(content).hexdigest() == video.sha256
    assert video.sha256 == fake_heygen.sha256(video.provider_video_id or "")
    assert video.size_bytes == 6 * MIB
    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").head_object(
        Bucket=S3_BUCKET, Key=video.storage_key or ""
    )
    assert head["ETag"].strip('"').endswith("-2")  # uploaded in two parts, never whole
