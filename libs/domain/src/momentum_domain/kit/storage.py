"""Object storage for media (lesson videos, reference PDFs, thumbnails): a local folder in the
embedded setup, S3 in production. Both speak the same small async interface; boto3 and file I/O
are blocking, so their calls run in worker threads.

Keys are relative POSIX paths such as ``videos/<lesson>/<id>.mp4``: never absolute, never ``..``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from momentum_domain.config import Settings
from momentum_domain.errors import NotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
# S3 rejects multipart parts smaller than 5 MiB (except the last one).
S3_MIN_PART_SIZE = 5 * MIB
FILE_MODE = 0o644


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


class InvalidKey(NotFound):
    """No stored object can have this key."""

    title = "Invalid storage key"


class ObjectNotFound(NotFound):
    title = "Object not found"


@runtime_checkable  # the API's dependency injection checks types at runtime
class ObjectStorage(Protocol):
    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        """Store a stream without holding it whole in memory; size and sha256 are computed as
        the chunks pass. A failed or cancelled stream leaves no object behind."""
        ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A short-lived URL a client can fetch directly, or None when the API serves the
        object itself (local storage)."""
        ...


# Stored records name a file by the API's media route plus its key ("/media/videos/..."): a
# path, not a link. Readers turn it into a signed link (or a public one for a published
# course's thumbnail) when they hand it out.
MEDIA_PATH = "/media/"


def media_path(key: str) -> str:
    """What a record holds for the stored file ``key`` (a lesson's video, a course's thumbnail):
    the API's media route, which streams a local file (with ranges) or redirects to a short-lived
    presigned S3 URL, so no stored URL ever goes stale."""
    return f"{MEDIA_PATH}{key}"


def media_key(url: str | None, public_url: str = "") -> str | None:
    """The storage key a stored URL names (``/media/<key>``, or the same under the API's public
    base), or None for anything else (an outside link, or no URL)."""
    if not url:
        return None
    for prefix in (MEDIA_PATH, f"{public_url.rstrip('/')}{MEDIA_PATH}" if public_url else None):
        if prefix and url.startswith(prefix) and "?" not in url:
            return url.removeprefix(prefix) or None
    return None


def absolute_media_url(url: str | None, public_url: str) -> str | None:
    """A stored ``/media/<key>`` path as an absolute URL on the API's public base, so a frontend
    on another origin can use it; any other URL unchanged."""
    key = media_key(url)
    return f"{public_url.rstrip('/')}{MEDIA_PATH}{quote(key)}" if key is not None else url


def validate_key(key: str) -> str:
    path = PurePosixPath(key)
    if (
        not key
        or key != key.strip()
        or "\\" in key
        or "\x00" in key
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise InvalidKey(f"{key!r} is not a valid storage key: use a relative path without '..'.")
    return key


class LocalStorage:
    """A folder on disk. Writes go to a temporary file in the target folder and are renamed
    into place, so readers never see a partial object."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        # A symlink inside the folder must not lead a key outside it.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"{key!r} resolves outside the media folder.")
        return path

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self.path_for(key)

        def write() -> None:
            with _AtomicFile(path) as handle:
                handle.write(data)

        await asyncio.to_thread(write)
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        path = self.path_for(key)
        digest = hashlib.sha256()
        size = 0
        temporary = _AtomicFile(path)
        # Opening and discarding the temporary file happen synchronously (they are quick): a
        # cancellation can then never fall between creating the file and owning its clean-up.
        handle = temporary.__enter__()
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
        except BaseException as exc:  # cancellation too: remove the partial file
            temporary.__exit__(type(exc), exc, exc.__traceback__)
            raise
        await asyncio.to_thread(temporary.__exit__, None, None, None)
        return StoredObject(key, size, digest.hexdigest())

    async def get_bytes(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(f"No object at {key!r}.") from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        validate_key(key)
        return None


class _AtomicFile:
    """A temporary file next to ``path``: renamed onto it on a clean exit, removed on error."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._temporary = path
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
        self._temporary = Path(name)
        self._handle = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._handle is not None
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                # mkstemp creates the file 0600; the API may serve it as another user.
                os.fchmod(self._handle.fileno(), FILE_MODE)
            self._handle.close()
            if exc_type is None:
                self._temporary.replace(self._path)
        finally:
            self._temporary.unlink(missing_ok=True)


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        part_size: int = 8 * MIB,
    ) -> None:
        if not bucket:
            raise ValueError("MOMENTUM_STORAGE_BUCKET is required for S3 storage")
        if part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"S3 multipart parts must be at least {S3_MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.part_size = part_size
        self._client: S3Client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        validate_key(key)
        sha256 = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": sha256},
        )
        return StoredObject(key, len(data), sha256)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        """Multipart upload, one part in memory at a time; an object smaller than one part is
        sent with a single PUT instead."""
        validate_key(key)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []

        async def upload_part(data: bytes) -> None:
            nonlocal upload_id
            if upload_id is None:
                created = await asyncio.to_thread(
                    self._client.create_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    ContentType=content_type,
                )
                upload_id = created["UploadId"]
            number = len(parts) + 1
            uploaded = await asyncio.to_thread(
                self._client.upload_part,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
            parts.append({"ETag": uploaded["ETag"], "PartNumber": number})

        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= self.part_size:
                    await upload_part(bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if upload_id is None:
                return await self.put_bytes(key, bytes(buffer), content_type)
            if buffer:
                await upload_part(bytes(buffer))
            await asyncio.to_thread(
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Incomplete uploads are billed until aborted; cancellation must clean up too.
            if upload_id is not None:
                await asyncio.shield(
                    asyncio.to_thread(
                        self._client.abort_multipart_upload,
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                    )
                )
            raise
        return StoredObject(key, size, digest.hexdigest())

    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        try:
            response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(f"No object at {key!r}.") from None
            raise
        body = response["Body"]
        try:
            return await asyncio.to_thread(body.read)
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        validate_key(key)
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        validate_key(key)
        # Signing is local computation, no network call: no thread needed.
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_seconds,
        )


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def create_storage(settings: Settings) -> ObjectStorage:
    if settings.storage_backend == "s3":
        return S3Storage(
            settings.storage_bucket,
            region=settings.aws_region,
            endpoint_url=settings.s3_endpoint_url or settings.aws_endpoint_url,
        )
    return LocalStorage(settings.media_dir)
