"""A local stand-in for HeyGen's v3 API over real HTTP on 127.0.0.1, for tests and the benchmark.

It speaks the contract the worker relies on: ``POST /v3/videos`` (``X-Api-Key``, an
``Idempotency-Key`` that replays the first answer), ``GET /v3/videos/{id}`` with
pending/processing/completed/failed, ``{"error": {"code", "message"}}`` bodies, and presigned-style
download links (``/files/{id}.mp4``) that must not receive the API key. It can be told to answer
429 with Retry-After, 5xx, to fail renders, to finish slowly, and to stream downloads slowly;
it records every request, the peak number of videos rendering at once, creations and downloads.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-heygen-api-key"
CLIENT_GONE = 499  # recorded for a request whose client hung up before the answer
AVATAR_ID = "avatar-look-1"
VOICE_ID = "voice-1"


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    code: str = "server_error"


@dataclass
class FakeVideo:
    id: str
    callback_id: str
    idempotency_key: str
    title: str
    script: str
    created_at: float
    render_seconds: float
    failure: str | None

    @property
    def done_at(self) -> float:
        return self.created_at + self.render_seconds


@dataclass
class Request:
    method: str
    path: str
    at: float
    headers: dict[str, str]
    body: dict[str, Any] | None
    status: int


class FakeHeyGen:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.videos: dict[str, FakeVideo] = {}
        self.by_key: dict[str, str] = {}
        self.requests: list[Request] = []
        self.creations: Counter[str] = Counter()  # callback_id -> videos created
        self.status_calls: Counter[str] = Counter()
        self.downloads: Counter[str] = Counter()
        self.download_started = threading.Event()
        self.video_created = threading.Event()
        # Seconds between creating a video and answering: a window for the client to die in.
        self.create_delay = 0.0
        self.create_faults: deque[Fault] = deque()
        self.status_faults: deque[Fault] = deque()
        # How long a render takes: a number, or a (low, high) range picked per video.
        self.render_seconds: float | tuple[float, float] = 0.0
        self.fail_renders_with: str | None = None
        self.video_size = 200_000
        self.download_chunk_delay = 0.0
        self.peak_rendering = 0
        self._server: ThreadingHTTPServer | None = None

    # Helpers for assertions ------------------------------------------------------------------

    def content(self, video_id: str) -> bytes:
        """Each video's bytes are distinct and reproducible."""
        return random.Random(video_id).randbytes(self.video_size)

    def sha256(self, video_id: str) -> str:
        return hashlib.sha256(self.content(video_id)).hexdigest()

    def requests_to(self, method: str, prefix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Server ----------------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[FakeHeyGen]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in handler.headers.items()}
        arrived = time.monotonic()
        status = CLIENT_GONE
        try:
            if method == "GET" and path.startswith("/files/"):
                video_id = path.removeprefix("/files/").removesuffix(".mp4")
                status = self._download(handler, video_id)
            elif headers.get("x-api-key") != API_KEY:
                status = _json(handler, 401, _error("unauthorized", "Invalid API key"))
            elif method == "POST" and path == "/v3/videos":
                status = self._create(handler, headers, body or {})
            elif method == "GET" and path.startswith("/v3/videos/"):
                status = self._status(handler, path.removeprefix("/v3/videos/"))
            else:
                status = _json(handler, 404, _error("not_found", "No such endpoint"))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away before the answer
        finally:
            with self.lock:
                self.requests.append(Request(method, path, arrived, headers, body, status))

    def _create(
        self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: dict[str, Any]
    ) -> int:
        with self.lock:
            if self.create_faults:
                return _fault(handler, self.create_faults.popleft())
            key = headers.get("idempotency-key", "")
            if key in self.by_key:  # a replay: the same answer, no second video
                return _json(
                    handler, 200, {"data": {"video_id": self.by_key[key], "status": "waiting"}}
                )
            missing = [f for f in ("avatar_id", "voice_id", "script") if not body.get(f)]
            if body.get("type") != "avatar" or missing:
                return _json(handler, 400, _error("invalid_parameter", f"Missing {missing}"))
            now = time.monotonic()
            rendering = sum(1 for v in self.videos.values() if v.done_at > now)
            self.peak_rendering = max(self.peak_rendering, rendering + 1)
            video_id = f"hg{len(self.videos) + 1:05d}{random.randbytes(4).hex()}"
            seconds = self.render_seconds
            self.videos[video_id] = FakeVideo(
                video_id,
                str(body.get("callback_id", "")),
                key,
                str(body.get("title", "")),
                str(body["script"]),
                now,
                random.uniform(*seconds) if isinstance(seconds, tuple) else seconds,
                self.fail_renders_with,
            )
            if key:
                self.by_key[key] = video_id
            self.creations[str(body.get("callback_id", ""))] += 1
        self.video_created.set()
        time.sleep(self.create_delay)
        return _json(handler, 200, {"data": {"video_id": video_id, "status": "waiting"}})

    def _status(self, handler: BaseHTTPRequestHandler, video_id: str) -> int:
        with self.lock:
            self.status_calls[video_id] += 1
            if self.status_faults:
                return _fault(handler, self.status_faults.popleft())
            video = self.videos.get(video_id)
            if video is None:
                return _json(handler, 404, _error("not_found", f"Video {video_id} not found"))
            now = time.monotonic()
        data: dict[str, Any] = {"id": video_id, "title": video.title, "video_url": None}
        if now < video.done_at:
            elapsed = now - video.created_at
            data["status"] = "pending" if elapsed < video.render_seconds / 3 else "processing"
        elif video.failure:
            data |= {"status": "failed", "failure_code": "render_failed"}
            data["failure_message"] = video.failure
        else:
            data |= {
                "status": "completed",
                "video_url": f"{self.base_url}/files/{video_id}.mp4?Expires=9999&Signature=x",
                "duration": 12.5,
                "thumbnail_url": None,
            }
        return _json(handler, 200, {"data": data})

    def _download(self, handler: BaseHTTPRequestHandler, video_id: str) -> int:
        if "x-api-key" in {k.lower() for k in handler.headers}:
            return _json(handler, 400, _error("leaked_key", "API key sent to the file host"))
        with self.lock:
            known = video_id in self.videos
            if known:
                self.downloads[video_id] += 1
        if not known:
            return _json(handler, 404, _error("not_found", "No such file"))
        content = self.content(video_id)
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        self.download_started.set()
        for start in range(0, len(content), 32 * 1024):
            handler.wfile.write(content[start : start + 32 * 1024])
            handler.wfile.flush()
            if self.download_chunk_delay:
                time.sleep(self.download_chunk_delay)
        return 200


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": None, "doc_url": None}}


def _fault(handler: BaseHTTPRequestHandler, fault: Fault) -> int:
    message = "Too many requests" if fault.status == 429 else "Internal error"
    return _json(handler, fault.status, _error(fault.code, message), fault.headers)


def _json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> int:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
    return status
