"""The public catalog over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CourseStatus
from tests.fixtures.app import Account, MakeCourse

Client = httpx.AsyncClient


async def _titles(client: Client, query: str = "") -> list[str]:
    response = await client.get(f"/courses{query}")
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


async def test_only_published_courses_are_listed(client: Client, make_course: MakeCourse) -> None:
    await make_course("Published one")
    await make_course("A draft", status=CourseStatus.DRAFT)
    await make_course("An archived one", status=CourseStatus.ARCHIVED)
    body = (await client.get("/courses")).json()
    assert [item["title"] for item in body["items"]] == ["Published one"]
    assert body["total"] == 1


async def test_filters(client: Client, make_course: MakeCourse) -> None:
    await make_course("Free week", days=7, category="business")
    await make_course("Premium fortnight", days=14, is_premium=True)
    await make_course("Paid three weeks", days=21, price_cents=1900)

    assert await _titles(client, "?category=business") == ["Free week"]
    assert await _titles(client, "?duration=14") == ["Premium fortnight"]
    assert await _titles(client, "?price=free") == ["Free week"]
    assert await _titles(client, "?price=premium") == ["Premium fortnight"]
    assert await _titles(client, "?price=paid") == ["Paid three weeks"]
    assert await _titles(client, "?price=paid&duration=7") == []


async def test_sorting_and_pagination(
    client: Client, make_course: MakeCourse, db: AsyncSession
) -> None:
    for index, title in enumerate(["Alpha", "Bravo", "Charlie"]):
        course = await make_course(title)
        await db.execute(
            update(Course)
            .where(Course.id == course.id)
            .values(rating_average=[3.0, 4.5, 4.0][index], enrollment_count=[10, 5, 50][index])
        )
    await db.commit()

    assert await _titles(client, "?sort=newest") == ["Charlie", "Bravo", "Alpha"]
    assert await _titles(client, "?sort=rating") == ["Bravo", "Charlie", "Alpha"]
    assert await _titles(client, "?sort=popularity") == ["Charlie", "Alpha", "Bravo"]

    page = (await client.get("/courses?sort=newest&limit=2&offset=2")).json()
    assert [item["title"] for item in page["items"]] == ["Alpha"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 2)
    beyond = (await client.get("/courses?limit=2&offset=10")).json()
    assert (beyond["items"], beyond["total"]) == ([], 3)


async def test_search_ranks_by_relevance(client: Client, make_course: MakeCourse) -> None:
    await make_course("Gardening for beginners", description="Soil, seeds and watering.")
    await make_course("Python basics", description="Learn python and a little gardening.")
    await make_course("Sourdough", description="Bread baking at home.")
    # A title match outweighs a description match.
    assert await _titles(client, "?q=gardening") == ["Gardening for beginners", "Python basics"]
    assert await _titles(client, "?q=python") == ["Python basics"]
    assert await _titles(client, "?q=baking%20bread") == ["Sourdough"]


@pytest.mark.parametrize(
    "attack", ["'; drop table courses; --", "%", "\\", "' OR 1=1 --", "a:* | !b", "&&&"]
)
async def test_search_terms_are_data(
    client: Client, make_course: MakeCourse, db: AsyncSession, attack: str
) -> None:
    await make_course("Still here")
    response = await client.get("/courses", params={"q": attack})
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert await db.scalar(select(func.count()).select_from(Course)) == 1


@pytest.mark.parametrize(
    "query",
    ["?duration=10", "?limit=0", "?limit=101", "?offset=-1", "?sort=cheapest", "?price=gratis"],
)
async def test_bad_list_parameters(client: Client, query: str) -> None:
    response = await client.get(f"/courses{query}")
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_course_detail_by_id_and_slug(client: Client, make_course: MakeCourse) -> None:
    course = await make_course("Knife skills", days=7, price_cents=900)
    by_id = (await client.get(f"/courses/{course.id}")).json()
    by_slug = (await client.get(f"/courses/{course.slug}")).json()
    assert by_id == by_slug
    assert by_id["slug"] == "knife-skills"
    assert by_id["category"]["slug"] == "technology"
    assert by_id["pricing"] == "paid"
    assert [lesson["day"] for lesson in by_id["lessons"]] == list(range(1, 8))
    assert by_id["lessons"][0] == {"day": 1, "title": "Knife skills, day 1", "has_video": False}
    assert by_id["is_enrolled"] is False


async def test_unpublished_courses_are_404_except_for_admins(
    client: Client, make_course: MakeCourse, learner: Account, admin_account: Account
) -> None:
    draft = await make_course("Secret draft", status=CourseStatus.DRAFT)
    archived = await make_course("Old one", status=CourseStatus.ARCHIVED)
    for course in (draft, archived):
        for ref in (str(course.id), course.slug):
            assert (await client.get(f"/courses/{ref}")).status_code == 404
            assert (await client.get(f"/courses/{ref}", headers=learner.headers)).status_code == 404
            assert (await client.get(f"/courses/{ref}/lessons/1")).status_code == 404
        admin_view = await client.get(f"/courses/{course.id}", headers=admin_account.headers)
        assert admin_view.status_code == 200
    assert (await client.get("/courses/no-such-course")).status_code == 404


async def test_detail_says_whether_the_caller_is_enrolled(
    client: Client, make_course: MakeCourse, learner: Account
) -> None:
    course = await make_course()
    before = (await client.get(f"/courses/{course.slug}", headers=learner.headers)).json()
    assert before["is_enrolled"] is False
    assert (
        await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    ).status_code == 200
    after = (await client.get(f"/courses/{course.slug}", headers=learner.headers)).json()
    assert after["is_enrolled"] is True
    # The anonymous view is unchanged (and still served from the cache).
    assert (await client.get(f"/courses/{course.slug}")).json()["is_enrolled"] is False


async def test_categories_with_published_counts(client: Client, make_course: MakeCourse) -> None:
    await make_course("One", category="business")
    await make_course("Two", category="business")
    await make_course("Draft", category="business", status=CourseStatus.DRAFT)
    categories = (await client.get("/categories")).json()
    assert len(categories) == 6
    counts = {c["slug"]: c["published_course_count"] for c in categories}
    assert counts["business"] == 2
    assert counts["technology"] == 0


async def test_etag_and_conditional_requests(client: Client, make_course: MakeCourse) -> None:
    await make_course()
    first = await client.get("/courses")
    assert first.headers["cache-control"] == "public, max-age=30"
    etag = first.headers["etag"]
    again = await client.get("/courses", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = await client.get("/courses", headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200
