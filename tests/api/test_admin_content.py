"""Content management by admins: courses, lessons, status, categories, users; every write
audited and visible to the next public read."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.models import AuditLog, Category, Course, Lesson
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, MakeCourse

Client = httpx.AsyncClient


async def _create_course(client: Client, admin: Account, **fields: object) -> dict:
    body = {"title": "Intro to SQL", "duration_days": 7, **fields}
    response = await client.post("/admin/courses", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _add_days(client: Client, admin: Account, course_id: str, days: range) -> None:
    for day in days:
        response = await client.post(
            f"/admin/courses/{course_id}/lessons",
            json={"day_number": day, "title": f"Day {day}", "content_markdown": f"Lesson {day}"},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text


async def test_author_and_publish_a_course(
    client: Client, admin_account: Account, db: AsyncSession
) -> None:
    course = await _create_course(client, admin_account, description="Queries from scratch")
    assert (course["status"], course["slug"]) == ("DRAFT", "intro-to-sql")
    assert (await client.get(f"/courses/{course['slug']}")).status_code == 404

    await _add_days(client, admin_account, course["id"], range(1, 6))
    status_url = f"/admin/courses/{course['id']}/status"
    incomplete = await client.put(
        status_url, json={"status": "PUBLISHED"}, headers=admin_account.headers
    )
    assert incomplete.status_code == 409
    assert incomplete.json()["missing_days"] == [6, 7]

    await _add_days(client, admin_account, course["id"], range(6, 8))
    published = await client.put(
        status_url, json={"status": "PUBLISHED"}, headers=admin_account.headers
    )
    assert published.status_code == 200
    assert published.json()["published_at"] is not None
    public = await client.get(f"/courses/{course['slug']}")
    assert public.status_code == 200
    assert len(public.json()["lessons"]) == 7

    actions = list(await db.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))
    assert actions.count("lesson.create") == 7
    assert actions[0] == "course.create"
    assert actions[-1] == "course.status"
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "course.status"))
    assert entry is not None
    assert entry.actor_id == admin_account.user.id
    assert entry.details == {"from": "DRAFT", "to": "PUBLISHED"}


@pytest.mark.parametrize(
    ("path", "target"),
    [(("DRAFT",), "ARCHIVED"), (("DRAFT",), "DRAFT"), (("PUBLISHED", "ARCHIVED"), "DRAFT")],
    ids=["draft-to-archived", "draft-to-draft", "archived-to-draft"],
)
async def test_invalid_transitions_are_409(
    client: Client, admin_account: Account, path: tuple[str, ...], target: str
) -> None:
    course = await _create_course(client, admin_account)
    await _add_days(client, admin_account, course["id"], range(1, 8))
    url = f"/admin/courses/{course['id']}/status"
    for status in path[1:] if path[0] == "DRAFT" else path:
        assert (
            await client.put(url, json={"status": status}, headers=admin_account.headers)
        ).status_code == 200
    response = await client.put(url, json={"status": target}, headers=admin_account.headers)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_archived_courses_can_be_republished(
    client: Client, admin_account: Account, make_course: MakeCourse
) -> None:
    course = await make_course()
    url = f"/admin/courses/{course.id}/status"
    assert (
        await client.put(url, json={"status": "ARCHIVED"}, headers=admin_account.headers)
    ).status_code == 200
    assert (await client.get(f"/courses/{course.id}")).status_code == 404
    assert (
        await client.put(url, json={"status": "PUBLISHED"}, headers=admin_account.headers)
    ).status_code == 200
    assert (await client.get(f"/courses/{course.id}")).status_code == 200


async def test_lesson_markdown_is_sanitised(client: Client, admin_account: Account) -> None:
    course = await _create_course(client, admin_account)
    markdown = (
        "# Hello\n\n<script>alert(1)</script>\n\n"
        '<img src=x onerror="alert(2)">\n\n'
        "[click](javascript:alert(3)) and [safe](https://example.com)\n\n"
        '<a href="javascript:alert(4)" onclick="alert(5)">raw link</a>'
    )
    response = await client.post(
        f"/admin/courses/{course['id']}/lessons",
        json={"day_number": 1, "title": "XSS", "content_markdown": markdown},
        headers=admin_account.headers,
    )
    html = response.json()["content_html"]
    tags, attributes = _parse(html)
    assert "h1" in tags
    assert "script" not in tags
    assert "img" not in tags  # raw HTML in markdown is escaped, never rendered
    assert not [name for name, _ in attributes if name.startswith("on")]
    hrefs = [value for name, value in attributes if name == "href"]
    assert hrefs == ["https://example.com"]


def _parse(html: str) -> tuple[set[str], list[tuple[str, str]]]:
    tags: set[str] = set()
    attributes: list[tuple[str, str]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.add(tag)
            attributes.extend((name, value or "") for name, value in attrs)

    Collector().feed(html)
    return tags, attributes


async def test_lesson_rules(client: Client, admin_account: Account, db: AsyncSession) -> None:
    course = await _create_course(client, admin_account)
    url = f"/admin/courses/{course['id']}/lessons"
    beyond = await client.post(
        url, json={"day_number": 8, "title": "Too late"}, headers=admin_account.headers
    )
    assert beyond.status_code == 422  # well-formed, but beyond the course's days
    await _add_days(client, admin_account, course["id"], range(1, 2))
    duplicate = await client.post(
        url, json={"day_number": 1, "title": "Again"}, headers=admin_account.headers
    )
    assert duplicate.status_code == 409
    bad_resource = await client.post(
        url,
        json={
            "day_number": 2,
            "title": "R",
            "resources": [{"title": "x", "url": "javascript:alert(1)"}],
        },
        headers=admin_account.headers,
    )
    assert bad_resource.status_code == 400
    assert await db.scalar(select(func.count()).select_from(Lesson)) == 1


async def test_edit_and_delete(
    client: Client, admin_account: Account, make_course: MakeCourse, db: AsyncSession
) -> None:
    draft = await _create_course(client, admin_account)
    await _add_days(client, admin_account, draft["id"], range(1, 3))
    lesson_id = str(await db.scalar(select(Lesson.id).where(Lesson.day_number == 2)))
    patched = await client.patch(
        f"/admin/lessons/{lesson_id}",
        json={"content_markdown": "**bold**", "day_number": 3},
        headers=admin_account.headers,
    )
    assert patched.status_code == 200
    assert (patched.json()["content_html"], patched.json()["day_number"]) == (
        "<p><strong>bold</strong></p>\n",
        3,
    )

    renamed = await client.patch(
        f"/admin/courses/{draft['id']}",
        json={"title": "Advanced SQL", "price_cents": 1500},
        headers=admin_account.headers,
    )
    assert (renamed.json()["title"], renamed.json()["price_cents"]) == ("Advanced SQL", 1500)
    assert (
        await client.delete(f"/admin/lessons/{lesson_id}", headers=admin_account.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/admin/courses/{draft['id']}", headers=admin_account.headers)
    ).status_code == 204
    assert await db.scalar(select(func.count()).select_from(Course)) == 0

    published = await make_course()
    first_lesson = str(
        await db.scalar(
            select(Lesson.id).where(Lesson.course_id == published.id, Lesson.day_number == 1)
        )
    )
    refused = await client.delete(f"/admin/lessons/{first_lesson}", headers=admin_account.headers)
    assert refused.status_code == 409
    shrink = await client.patch(
        f"/admin/courses/{published.id}", json={"duration_days": 14}, headers=admin_account.headers
    )
    assert shrink.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"title": "X", "duration_days": 10},
        {"title": "", "duration_days": 7},
        {"duration_days": 7},
        {"title": "X", "duration_days": 7, "price_cents": -1},
        {"title": "X", "duration_days": 7, "status": "PUBLISHED"},
        {"title": "X", "duration_days": 7, "currency": "dollars"},
        {"title": "X", "duration_days": 7, "category_id": str(uuid.uuid4())},
    ],
)
async def test_bad_course_input_writes_nothing(
    client: Client, admin_account: Account, db: AsyncSession, body: dict
) -> None:
    response = await client.post("/admin/courses", json=body, headers=admin_account.headers)
    # An unknown category is well-formed (422); the rest do not match the schema (400).
    assert response.status_code == (422 if "category_id" in body else 400), response.text
    assert await db.scalar(select(func.count()).select_from(Course)) == 0
    assert await db.scalar(select(func.count()).select_from(AuditLog)) == 0


async def test_admin_routes_are_for_admins(
    client: Client, learner: Account, admin_account: Account
) -> None:
    routes = [
        ("GET", "/admin/courses"),
        ("POST", "/admin/courses"),
        ("PATCH", f"/admin/courses/{uuid.uuid4()}"),
        ("PUT", f"/admin/courses/{uuid.uuid4()}/status"),
        ("DELETE", f"/admin/lessons/{uuid.uuid4()}"),
        ("POST", "/admin/categories"),
        ("GET", "/admin/users"),
        ("PUT", f"/admin/users/{uuid.uuid4()}/role"),
    ]
    for method, path in routes:
        assert (await client.request(method, path, json={})).status_code == 401, path
        assert (
            await client.request(method, path, json={}, headers=learner.headers)
        ).status_code == 403, path
    assert (
        await client.get(f"/admin/courses/{uuid.uuid4()}", headers=admin_account.headers)
    ).status_code == 404


async def test_categories_crud(client: Client, admin_account: Account, db: AsyncSession) -> None:
    created = await client.post(
        "/admin/categories", json={"name": "Data Science"}, headers=admin_account.headers
    )
    assert created.status_code == 201
    category = created.json()
    assert category["slug"] == "data-science"
    duplicate = await client.post(
        "/admin/categories", json={"name": "Data Science"}, headers=admin_account.headers
    )
    assert duplicate.status_code == 409
    clash = await client.patch(
        f"/admin/categories/{category['id']}",
        json={"name": "Business"},
        headers=admin_account.headers,
    )
    assert clash.status_code == 409
    renamed = await client.patch(
        f"/admin/categories/{category['id']}", json={"name": "Data"}, headers=admin_account.headers
    )
    assert renamed.json()["name"] == "Data"
    assert (
        await client.delete(f"/admin/categories/{category['id']}", headers=admin_account.headers)
    ).status_code == 204
    assert await db.scalar(select(func.count()).select_from(Category)) == 6


async def test_user_admin(
    client: Client, admin_account: Account, make_account: MakeAccount
) -> None:
    target = await make_account(Role.FREE, email="grace.hopper@example.com")
    found = await client.get("/admin/users?q=hopper", headers=admin_account.headers)
    assert [u["email"] for u in found.json()["items"]] == ["grace.hopper@example.com"]
    wildcard = await client.get("/admin/users?q=%25", headers=admin_account.headers)
    assert wildcard.json()["total"] == 0  # '%' is matched literally
    admins = await client.get("/admin/users?role=ADMIN", headers=admin_account.headers)
    assert admins.json()["total"] == 1

    promoted = await client.put(
        f"/admin/users/{target.user.id}/role",
        json={"role": "PREMIUM"},
        headers=admin_account.headers,
    )
    assert promoted.json()["role"] == "PREMIUM"
    assert (await client.get("/me", headers=target.headers)).json()["role"] == "PREMIUM"


async def test_the_last_admin_cannot_be_demoted(
    client: Client, admin_account: Account, make_account: MakeAccount
) -> None:
    url = f"/admin/users/{admin_account.user.id}/role"
    refused = await client.put(url, json={"role": "FREE"}, headers=admin_account.headers)
    assert refused.status_code == 409
    assert "last administrator" in refused.json()["detail"]
    other = await make_account(Role.ADMIN)
    allowed = await client.put(url, json={"role": "FREE"}, headers=other.headers)
    assert allowed.status_code == 200
    again = await client.put(
        f"/admin/users/{other.user.id}/role", json={"role": "FREE"}, headers=other.headers
    )
    assert again.status_code == 409
