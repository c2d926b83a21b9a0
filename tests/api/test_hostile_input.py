"""No input causes a 500: NUL characters, invalid UTF-8, deep nesting and huge integers are
400s naming the field, and so are webhooks of the wrong shape, signed or not. A walk over every
operation of the OpenAPI document sends each hostile value to each parameter and body field."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.decoding import json_depth
from momentum_dev.fakes.stripe_wire import signed as stripe_signed
from momentum_domain.catalog.models import Course, Lesson
from momentum_domain.config import Settings
from momentum_domain.models import User
from momentum_domain.users.models import Role
from tests.fixtures.app import MakeAccount, MakeCourse, serve
from tests.fixtures.pdfs import text_pdf

Client = httpx.AsyncClient
STRIPE_SECRET = "whsec_hostile_input"
HEYGEN_SECRET = "heygen hostile input"
NUL = "\x00"
BEYOND_INT64 = str(2**64)


@pytest.fixture(scope="session")
async def hostile(settings: Settings) -> AsyncIterator[Client]:
    """The API with both webhook secrets set, so signed deliveries reach their handlers."""
    from momentum_api.app import create_app

    configured = settings.model_copy(
        update={"stripe_webhook_secret": STRIPE_SECRET, "heygen_webhook_secret": HEYGEN_SECRET}
    )
    async with serve(create_app(configured)) as client:
        yield client


@pytest.fixture
def api(hostile: Client, reference_rows: object) -> Client:
    return hostile


def problem_400(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == 400
    return body


def named(response: httpx.Response, field: str, source: str) -> None:
    body = problem_400(response)
    assert {"field": field, "source": source} in [
        {"field": e["field"], "source": e["source"]} for e in body["errors"]
    ], body


def nested(depth: int) -> str:
    return '{"email": ' + "[" * depth + "]" * depth + "}"


# --- NUL wherever text reaches PostgreSQL -------------------------------------------------


async def test_nul_in_a_query_parameter(api: Client) -> None:
    named(await api.get("/courses", params={"q": NUL}), "q", "query")
    named(await api.get("/courses", params={"category": f"tech{NUL}"}), "category", "query")


async def test_nul_in_a_path_parameter(api: Client) -> None:
    named(await api.get("/courses/%00"), "ref", "path")
    named(await api.get("/courses/a%00b/reviews"), "ref", "path")


async def test_nul_in_sign_up(api: Client, db: AsyncSession) -> None:
    response = await api.post(
        "/auth/sign-up",
        json={"email": "nul@example.com", "password": "a long passphrase", "name": f"A{NUL}"},
    )
    named(response, "name", "body")
    assert await db.scalar(select(func.count()).select_from(User)) == 0


async def test_nul_in_progress_notes(
    api: Client, make_account: MakeAccount, make_course: MakeCourse, db: AsyncSession
) -> None:
    learner = await make_account(Role.FREE)
    course = await make_course()
    lesson_id = await db.scalar(
        select(Lesson.id).where(Lesson.course_id == course.id, Lesson.day_number == 1)
    )
    enrolled = await api.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    assert enrolled.status_code in (200, 201), enrolled.text
    response = await api.put(
        f"/me/progress/{lesson_id}", json={"notes": f"note{NUL}"}, headers=learner.headers
    )
    named(response, "notes", "body")


async def test_nul_in_a_review_comment(
    api: Client, make_account: MakeAccount, make_course: MakeCourse
) -> None:
    learner = await make_account(Role.FREE)
    course = await make_course()
    await api.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    response = await api.put(
        f"/me/reviews/{course.id}",
        json={"rating": 5, "comment": f"great{NUL}"},
        headers=learner.headers,
    )
    named(response, "comment", "body")


async def test_nul_in_admin_titles(
    api: Client, make_account: MakeAccount, db: AsyncSession
) -> None:
    admin = await make_account(Role.ADMIN)
    response = await api.post(
        "/admin/courses", json={"title": f"T{NUL}", "duration_days": 7}, headers=admin.headers
    )
    named(response, "title", "body")
    response = await api.post(
        "/admin/categories", json={"name": "Cooking", "description": NUL}, headers=admin.headers
    )
    named(response, "description", "body")
    assert await db.scalar(select(func.count()).select_from(Course)) == 0


async def test_nul_in_nested_fields_names_the_path(
    api: Client, make_account: MakeAccount, make_course: MakeCourse, db: AsyncSession
) -> None:
    admin = await make_account(Role.ADMIN)
    course = await make_course()
    lesson_id = await db.scalar(select(Lesson.id).where(Lesson.course_id == course.id))
    response = await api.patch(
        f"/admin/lessons/{lesson_id}",
        json={"action_items": [{"text": "fine"}, {"text": f"bad{NUL}"}]},
        headers=admin.headers,
    )
    named(response, "action_items[1].text", "body")


async def test_nul_in_a_generation_topic(api: Client, make_account: MakeAccount) -> None:
    admin = await make_account(Role.ADMIN)
    response = await api.post(
        "/admin/generation-jobs",
        json={"topic": f"Sourdough{NUL}", "duration_days": 7},
        headers=admin.headers,
    )
    named(response, "topic", "body")


async def test_nul_in_an_object_key(api: Client) -> None:
    response = await api.post(
        "/auth/sign-in", json={"email": "a@example.com", "password": "x", f"k{NUL}": 1}
    )
    problem_400(response)


def multipart(
    filename: bytes, content: bytes, field: bytes = b"file"
) -> tuple[bytes, dict[str, str]]:
    """Written by hand: clients percent-encode what a file name must not hold."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="'
        + field
        + b'"; filename="'
        + filename
        + b'"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + content + b"\r\n--b--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=b"}


async def test_nul_in_an_uploads_file_name(api: Client, make_account: MakeAccount) -> None:
    admin = await make_account(Role.ADMIN)
    pdf = text_pdf(["Sourdough starts with a starter."])
    body, headers = multipart(b"a\x00.pdf", pdf)
    upload = {**headers, **admin.headers}
    response = await api.post("/admin/reference-documents", content=body, headers=upload)
    named(response, "file.filename", "body")
    # Not UTF-8: the form parser refuses it itself.
    body, _ = multipart(b"\xff\xfe.pdf", pdf)
    problem_400(await api.post("/admin/reference-documents", content=body, headers=upload))


# --- Encoding, nesting, integers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/sign-up", "/auth/sign-in"])
async def test_deep_nesting_is_refused_before_parsing(api: Client, path: str) -> None:
    for depth in (1_000, 100_000):
        response = await api.post(
            path, content=nested(depth), headers={"Content-Type": "application/json"}
        )
        body = problem_400(response)
        assert "nest" in body["detail"]


async def test_moderate_nesting_still_parses(api: Client) -> None:
    """A depth the bound allows reaches the validator, which names the field."""
    response = await api.post(
        "/auth/sign-in", content=nested(10), headers={"Content-Type": "application/json"}
    )
    named(response, "email", "body")


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "a@example.com", "password": "\xff\xfe", "name": "A"}',
        b'{"email": "a@example.com", "password": "a long passphrase", "name": "\xed\xa0\x80"}',
        b'{"email": "a@example.com", "password": "a long passphrase", "name": "\\ud800"}',
    ],
    ids=["invalid-bytes", "encoded-surrogate", "escaped-lone-surrogate"],
)
async def test_invalid_utf8_body(api: Client, body: bytes) -> None:
    response = await api.post(
        "/auth/sign-up", content=body, headers={"Content-Type": "application/json"}
    )
    body_ = problem_400(response)
    assert "UTF-8" in body_["detail"]


async def test_invalid_utf8_in_the_query_and_the_path(api: Client) -> None:
    named(await api.get("/courses?q=%FF%FE"), "q", "query")
    named(await api.get("/courses?%FF=1"), "\ufffd", "query")
    named(await api.get("/courses/a%FFb"), "ref", "path")


def test_json_depth_counts_brackets_outside_strings() -> None:
    assert json_depth(b'{"a": "[[[[", "b": [1, {"c": "\\"]]]"}]}') == 3
    assert json_depth(b'[[["unterminated [[[[') == 3
    assert json_depth(b'"just a string"') == 0
    assert json_depth(b"[" * 100_000) == 100_000


PAGINATED = [
    "/courses",
    "/courses/{course}/reviews",
    "/me/payments",
    "/admin/courses",
    "/admin/users",
    "/admin/audit-logs",
    "/admin/generation-jobs",
    "/admin/reference-documents",
    "/admin/notifications",
    "/admin/payments",
]


async def test_pagination_beyond_its_bounds(
    api: Client, make_account: MakeAccount, make_course: MakeCourse
) -> None:
    admin = await make_account(Role.ADMIN)
    course = await make_course()
    for path in PAGINATED:
        url = path.format(course=course.id)
        for value in (BEYOND_INT64, "-1", "9" * 400):
            for name in ("offset", "limit"):
                response = await api.get(url, params={name: value}, headers=admin.headers)
                named(response, name, "query")


async def test_offset_bounds_are_in_the_schema(api: Client) -> None:
    document = (await api.get("/schema/openapi.json")).json()
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if schema.get("type") == "integer":
                    assert {"minimum", "maximum"} <= schema.keys(), (path, parameter)


async def test_analytics_dates_at_the_calendars_ends(
    api: Client, make_account: MakeAccount
) -> None:
    admin = await make_account(Role.ADMIN)
    for query in ({"end": "0001-01-01"}, {"end": "9999-12-31"}, {"start": "0001-01-01"}):
        response = await api.get("/admin/analytics", params=query, headers=admin.headers)
        assert response.status_code in (400, 422), response.text  # not a 500
        assert next(iter(query)) in response.json()["detail"]


# --- Webhooks of the wrong shape ----------------------------------------------------------


async def test_signed_stripe_webhook_of_the_wrong_shape(api: Client) -> None:
    for payload in ([], [1, 2], "text", 7, None, {"id": "evt_1"}):
        body, headers = stripe_signed(payload, STRIPE_SECRET)  # type: ignore[arg-type]
        problem_400(await api.post("/webhooks/stripe", content=body, headers=headers))


def heygen_signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(HEYGEN_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Signature": signature, "Content-Type": "application/json"}


async def test_signed_heygen_event_of_the_wrong_shape(api: Client) -> None:
    for payload in (
        {"event_id": f"evt{NUL}", "event_type": "avatar_video.success", "event_data": {}},
        {"event_id": "evt_2", "event_type": "avatar_video.success", "event_data": {"x": NUL}},
        {"event_id": "\ud800", "event_type": "avatar_video.success", "event_data": {}},
        {"event_id": "evt_3", "event_type": f"avatar{NUL}", "event_data": {}},
        [],
        "text",
        {"event_type": 5},
    ):
        body = json.dumps(payload).encode()
        problem_400(await api.post("/webhooks/heygen", content=body, headers=heygen_signed(body)))


# --- The walk: every operation, every parameter and body field, each hostile value ----------

HUGE_INTEGERS = (2**63, 2**64 + 1, -(2**63) - 1, 10**40)
WHOLE_BODIES: tuple[tuple[str, bytes], ...] = (
    ("invalid UTF-8", b'{"x": "\xff\xfe\xfd"}'),
    ("escaped NUL", b'{"x": "\\u0000"}'),
    ("lone surrogate", b'{"x": "\\udc00"}'),
    ("deep nesting", b"[" * 5_000 + b"]" * 5_000),
    ("deep object", b'{"a":' * 2_000 + b"1" + b"}" * 2_000),
)
WRONG_SHAPES: tuple[tuple[str, bytes], ...] = (
    ("array", b"[]"),
    ("null", b"null"),
    ("string", b'"text"'),
    ("number", b"1e999"),
    ("huge integer", str(10**40).encode()),
)
# Candidates for a string that must match a pattern (slugs, currencies, language tags).
_PATTERNED = ("x", "en", "usd", "a-slug", "abc", "2026-01-01", "https://example.com/a")


class Document:
    """The app's OpenAPI document, and valid-looking values for its schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.document["components"]["schemas"][name]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                options = [o for o in schema[key] if self.resolve(o).get("type") != "null"]
                return {**self.resolve(options[0]), **{k: v for k, v in schema.items() if k != key}}
        return schema

    def example(self, schema: dict[str, Any], depth: int = 0) -> Any:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if "enum" in schema:
            return next(v for v in schema["enum"] if v is not None)
        if "const" in schema:
            return schema["const"]
        if kind == "object" or "properties" in schema:
            if depth > 6:
                return {}
            return {
                name: self.example(prop, depth + 1)
                for name, prop in schema.get("properties", {}).items()
            }
        if kind == "array":
            return [self.example(schema.get("items", {}), depth + 1)]
        if kind == "integer":
            return int(schema.get("minimum", 1))
        if kind == "number":
            return float(schema.get("minimum", 1))
        if kind == "boolean":
            return True
        return self.text(schema)

    def text(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "email":
            return "walker@example.com"
        if fmt == "date":
            return "2026-01-01"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt in ("uri", "url"):
            return "https://example.com/a"
        minimum = int(schema.get("minLength", 1))
        if pattern := schema.get("pattern"):
            for candidate in _PATTERNED:
                if re.search(pattern, candidate) and len(candidate) >= minimum:
                    return candidate
        return "x" * max(minimum, 12) if minimum > 1 else "walker"

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield method.upper(), path, operation


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path, value


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)  # type: ignore[index]
    return copy


@dataclass
class Case:
    what: str
    method: str
    url: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def hostile_cases(
    document: Document, method: str, path: str, operation: dict[str, Any]
) -> Iterator[Case]:
    parameters = [
        {**p, "schema": document.resolve(p.get("schema", {}))}
        for p in operation.get("parameters", [])
    ]
    base_path = {p["name"]: document.example(p["schema"]) for p in parameters if p["in"] == "path"}
    required_query = {
        p["name"]: document.example(p["schema"])
        for p in parameters
        if p["in"] == "query" and p.get("required")
    }

    def url(path_values: dict[str, Any], query: str = "") -> str:
        filled = path
        for name, value in path_values.items():
            filled = filled.replace("{" + name + "}", str(value))
        pairs = [f"{quote(k)}={quote(str(v))}" for k, v in required_query.items()]
        return filled + "?" + "&".join([*pairs, query] if query else pairs)

    content = operation.get("requestBody", {}).get("content", {})
    json_schema = content.get("application/json", {}).get("schema")
    body = document.example(json_schema) if json_schema else None
    base_content = json.dumps(body).encode() if body is not None else None
    json_headers = {"Content-Type": "application/json"}

    for p in parameters:
        name, where, schema = p["name"], p["in"], p["schema"]
        integer = "integer" in (schema.get("type"), *(schema.get("type") or []))
        values = ["a%00b", "%00", "%FF%FE"]
        values += [str(n) for n in HUGE_INTEGERS] if integer else []
        # The calendar's ends: date arithmetic on them overflows.
        values += ["0001-01-01", "9999-12-31"] if schema.get("format") == "date" else []
        if where == "path":
            for value in values:
                yield Case(
                    f"path {name}={value}",
                    method,
                    url({**base_path, name: value}),
                    base_content,
                    json_headers,
                )
        elif where == "query":
            for value in values:
                yield Case(
                    f"query {name}={value}",
                    method,
                    url(base_path, f"{quote(name)}={value}"),
                    base_content,
                    json_headers,
                )
        elif where == "header":
            yield Case(
                f"header {name} NUL",
                method,
                url(base_path),
                base_content,
                {**json_headers, name: "a\x00b"},
            )
    for leaf, value in leaves(body) if body is not None else ():
        hostile: list[Any] = [f"a{NUL}b", "\udc00"] if isinstance(value, str) else []
        if isinstance(value, int) and not isinstance(value, bool):
            hostile = list(HUGE_INTEGERS)
        for bad in hostile:
            raw = json.dumps(replaced(body, leaf, bad)).encode()
            yield Case(
                f"body {'.'.join(map(str, leaf))}={bad!r}",
                method,
                url(base_path),
                raw,
                json_headers,
            )
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        shapes = WHOLE_BODIES + (WRONG_SHAPES if json_schema or "/webhooks/" in path else ())
        for what, raw in shapes:
            yield Case(f"body: {what}", method, url(base_path), raw, json_headers)
    if "multipart/form-data" in content:
        documented = content["multipart/form-data"]["schema"].get("properties", {})
        pdf = text_pdf(["A page to upload."])
        for name in {*documented, "data"}:
            for filename in (b"a\x00.pdf", b"\xff\xfe.pdf", b"x" * 5_000 + b".pdf"):
                raw, form = multipart(filename, pdf, name.encode())
                yield Case(
                    f"upload {name} named {filename[:8]!r}", method, url(base_path), raw, form
                )


async def send(api: Client, case: Case, headers: dict[str, str]) -> httpx.Response:
    return await api.request(
        case.method, case.url, content=case.content, headers={**case.headers, **headers}
    )


async def test_no_hostile_value_anywhere_causes_a_5xx(
    api: Client, make_account: MakeAccount
) -> None:
    """Each operation of the document, as an anonymous caller and as an admin, with each
    hostile value in each parameter and body field, and bodies broken as a whole."""
    document = Document((await api.get("/schema/openapi.json")).json())
    admin = await make_account(Role.ADMIN)
    failures: list[str] = []
    cases = 0
    for method, path, operation in document.operations():
        for role, headers in (("anonymous", {}), ("admin", admin.headers)):
            for case in hostile_cases(document, method, path, operation):
                cases += 1
                response = await send(api, case, headers)
                if response.status_code >= 500:
                    failures.append(
                        f"{role} {method} {path} [{case.what}] -> {response.status_code} "
                        f"{response.text[:200]}"
                    )
    assert cases > 500
    assert not failures, "\n".join(failures)


async def test_head_answers_as_get_on_every_get_operation(
    api: Client, make_account: MakeAccount
) -> None:
    document = Document((await api.get("/schema/openapi.json")).json())
    admin = await make_account(Role.ADMIN)
    for method, path, operation in document.operations():
        if method != "GET":
            continue
        parameters = operation.get("parameters", [])
        filled = path
        for p in parameters:
            if p["in"] == "path":
                filled = filled.replace("{" + p["name"] + "}", str(document.example(p["schema"])))
        for headers in ({}, admin.headers):
            get = await api.get(filled, headers=headers)
            head = await api.head(filled, headers=headers)
            assert head.status_code == get.status_code, path
            assert head.status_code != 405
            assert head.content == b""
