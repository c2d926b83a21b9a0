"""ETag and Cache-Control for JSON bodies that are safe to cache; If-None-Match gives a 304."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, Response


def etag_of(body: bytes) -> str:
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def conditional_json(
    request: Request[Any, Any, Any], body: bytes, *, cache_control: str
) -> Response[bytes]:
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Authorization"}
    candidates = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in candidates or "*" in candidates:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
