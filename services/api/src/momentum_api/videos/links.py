"""Signed media links: who may fetch a stored file, and until when.

On local storage the API serves ``/media/<key>?expires=<unix time>&viewer=<id>&signature=<mac>``,
the signature being HMAC-SHA256 over the key, the expiry and the viewer. A ``<video>`` element
fetches without an Authorization header, so the URL itself is the credential: it is handed out
only to someone who may open the lesson and lives ``MOMENTUM_MEDIA_URL_TTL_SECONDS``. The viewer
inside it cannot be swapped (the signature covers it), makes a leaked link attributable, and lets
``/media`` check again what only some viewers may see (reference PDFs: administrators). On S3 the
links are presigned GET URLs to the bucket instead."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from momentum_domain.config import Settings
from momentum_domain.errors import Forbidden
from momentum_domain.kit.storage import MEDIA_PATH, ObjectStorage, media_key

# The viewer a link names when the lesson was opened without signing in (day 1 previews).
ANONYMOUS = "anonymous"
# Reference PDFs ground course generation: administrators' material, never linked from a lesson
# (a presigned S3 URL could not check its viewer again).
REFERENCES = "references/"


class MediaRefused(Forbidden):
    title = "Media link refused"


@dataclass(frozen=True)
class MediaLink:
    url: str
    expires_at: datetime


class MediaLinks:
    def __init__(
        self,
        secret: bytes,
        *,
        public_url: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.public_url = public_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLinks:
        secret = (
            settings.media_signing_secret.encode()
            if settings.media_signing_secret
            else load_or_create_secret(settings.data_dir / "media-signing.key")
        )
        return cls(
            secret, public_url=settings.public_url, ttl_seconds=settings.media_url_ttl_seconds
        )

    def public(self, key: str) -> str:
        """The unsigned absolute URL of a file (what a published course's thumbnail is)."""
        return f"{self.public_url}{MEDIA_PATH}{quote(key)}"

    def sign(self, key: str, viewer: uuid.UUID | None) -> MediaLink:
        expires = int(self._clock()) + self.ttl_seconds
        viewer_text = str(viewer) if viewer else ANONYMOUS
        query = urlencode(
            {
                "expires": expires,
                "viewer": viewer_text,
                "signature": self._mac(key, expires, viewer_text),
            }
        )
        return MediaLink(f"{self.public(key)}?{query}", datetime.fromtimestamp(expires, UTC))

    async def link(self, storage: ObjectStorage, key: str, viewer: uuid.UUID | None) -> MediaLink:
        """A presigned URL straight to the bucket on S3, else a signed link to ``/media``."""
        presigned = await storage.presigned_url(key, self.ttl_seconds)
        if presigned is None:
            return self.sign(key, viewer)
        expires = int(self._clock()) + self.ttl_seconds
        return MediaLink(presigned, datetime.fromtimestamp(expires, UTC))

    async def link_stored(
        self, storage: ObjectStorage, url: str | None, viewer: uuid.UUID | None
    ) -> MediaLink | None:
        """The link for a stored URL that names one of our files, or None for any other (and
        for a reference PDF, which a lesson never hands out)."""
        key = media_key(url, self.public_url)
        if key is None or key.startswith(REFERENCES):
            return None
        return await self.link(storage, key, viewer)

    async def link_resources(
        self, storage: ObjectStorage, resources: list[Any], viewer: uuid.UUID | None
    ) -> list[Any]:
        """A lesson's resources, each ``url`` that names one of our files made a link."""
        linked = []
        for resource in resources:
            if isinstance(resource, dict) and isinstance(resource.get("url"), str):
                link = await self.link_stored(storage, resource["url"], viewer)
                if link is not None:
                    resource = {**resource, "url": link.url}
            linked.append(resource)
        return linked

    def check(
        self, key: str, expires: int | None, viewer: str | None, signature: str | None
    ) -> int:
        """The seconds a link has left, or MediaRefused when it is unsigned, altered or
        expired."""
        if expires is None or viewer is None or signature is None:
            raise MediaRefused(
                "This media file needs a signed link: ask for the lesson again to get one."
            )
        # Bytes, not str: compare_digest refuses a str holding anything but ASCII.
        given = signature.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(self._mac(key, expires, viewer).encode(), given):
            raise MediaRefused("This media link's signature does not match it.")
        remaining = expires - int(self._clock())
        if remaining <= 0:
            raise MediaRefused("This media link has expired: ask for the lesson again.")
        return remaining

    def _mac(self, key: str, expires: int, viewer: str) -> str:
        # JSON keeps the three parts apart: no key can pass for another key plus an expiry.
        message = json.dumps([key, expires, viewer]).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_or_create_secret(path: Path) -> bytes:
    """Read the key at ``path``, creating it first if absent. Race-free as the identity key is:
    written privately and hard-linked into place, so concurrent processes agree on one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()
