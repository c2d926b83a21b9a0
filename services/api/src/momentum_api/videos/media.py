"""Serving stored files from the local media folder with HTTP range requests (RFC 9110 §14), which
video players use to seek. One byte range per request; a multi-range request gets the whole file,
as the RFC allows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Response

CHUNK_SIZE = 256 * 1024


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"The requested range is outside the file's {size} bytes.")
        self.size = size


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions a ``Range`` header asks for, or None for the
    whole file (no header, another unit, several ranges, or an unparseable one)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":  # the last N bytes
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                raise RangeNotSatisfiable(size)
            return max(size - suffix, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0 or first > last or first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(last, size - 1)


async def file_chunks(path: Path, first: int, length: int) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(handle.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


class HeadResponse(Response[None]):
    """A HEAD response: the headers a GET would send, Content-Length included, and no body."""

    def render(self, content: Any, media_type: str, enc_hook: Any = None) -> bytes:
        return b""
