"""Reviews: enrolled learners only, one each (editable), exact aggregates under concurrency,
hidden by admins."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.community.models import Review
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, MakeCourse

Client = httpx.AsyncClient


async def _enrolled(
    client: Client, make_account: MakeAccount, course_id: str, n: int
) -> list[Account]:
    accounts = [await make_account(Role.FREE) for _ in range(n)]
    for account in accounts:
        assert (
            await client.put(f"/me/enrollments/{course_id}", headers=account.headers)
        ).status_code == 200
    return accounts


async def test_only_enrolled_learners_review_once_and_can_edit(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    url = f"/me/reviews/{course.slug}"
    refused = await client.put(url, json={"rating": 5}, headers=learner.headers)
    assert refused.status_code == 403
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    first = await client.put(
        url, json={"rating": 2, "comment": "Hard going"}, headers=learner.headers
    )
    assert first.status_code == 200
    edited = await client.put(
        url, json={"rating": 4, "comment": "Grew on me"}, headers=learner.headers
    )
    assert edited.json()["id"] == first.json()["id"]
    assert await db.scalar(select(func.count()).select_from(Review)) == 1
    detail = (await client.get(f"/courses/{course.slug}")).json()
    assert (detail["rating_average"], detail["rating_count"]) == (4.0, 1)
    listed = (await client.get(f"/courses/{course.slug}/reviews")).json()
    assert [r["comment"] for r in listed["items"]] == ["Grew on me"]


async def test_bad_reviews(client: Client, make_course: MakeCourse, learner: Account) -> None:
    course = await make_course()
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    for body in ({"rating": 0}, {"rating": 6}, {"rating": "five"}, {}, {"rating": 3, "stars": 3}):
        response = await client.put(f"/me/reviews/{course.id}", json=body, headers=learner.headers)
        assert response.status_code == 400, body
    assert (
        await client.put("/me/reviews/no-such-course", json={"rating": 3}, headers=learner.headers)
    ).status_code == 404
    assert (await client.put(f"/me/reviews/{course.id}", json={"rating": 3})).status_code == 401


async def test_aggregate_is_exact_under_concurrent_reviews(
    client: Client, make_course: MakeCourse, make_account: MakeAccount
) -> None:
    course = await make_course()
    reviewers = await _enrolled(client, make_account, str(course.id), 12)
    ratings = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 5, 5]
    responses = await asyncio.gather(
        *(
            client.put(f"/me/reviews/{course.id}", json={"rating": r}, headers=a.headers)
            for a, r in zip(reviewers, ratings, strict=True)
        )
    )
    assert {r.status_code for r in responses} == {200}
    detail = (await client.get(f"/courses/{course.id}")).json()
    assert detail["rating_count"] == 12
    assert detail["rating_average"] == round(sum(ratings) / 12, 2)


async def test_admins_hide_reviews(
    client: Client, make_course: MakeCourse, make_account: MakeAccount, admin_account: Account
) -> None:
    course = await make_course()
    good, bad = await _enrolled(client, make_account, str(course.id), 2)
    await client.put(
        f"/me/reviews/{course.id}", json={"rating": 5, "comment": "Great"}, headers=good.headers
    )
    spam = await client.put(
        f"/me/reviews/{course.id}", json={"rating": 1, "comment": "spam"}, headers=bad.headers
    )
    url = f"/admin/reviews/{spam.json()['id']}/visibility"
    assert (await client.put(url, json={"hidden": True}, headers=good.headers)).status_code == 403
    hidden = await client.put(url, json={"hidden": True}, headers=admin_account.headers)
    assert hidden.json()["is_hidden"] is True
    detail = (await client.get(f"/courses/{course.id}")).json()
    assert (detail["rating_average"], detail["rating_count"]) == (5.0, 1)
    listed = (await client.get(f"/courses/{course.id}/reviews")).json()
    assert [r["comment"] for r in listed["items"]] == ["Great"]
