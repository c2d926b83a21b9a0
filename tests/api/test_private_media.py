"""Private media: ``/media`` serves a lesson's video only on a short-lived link signed for someone
who may open the lesson, reference PDFs only to administrators, and a published course's
thumbnail to anyone."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.videos.links import MediaLinks, load_or_create_secret
from momentum_domain.catalog.models import Course, CourseStatus, Lesson, VideoStatus
from momentum_domain.config import Settings
from momentum_domain.kit.storage import LocalStorage
from momentum_domain.users.models import Role, User
from tests.fixtures.app import Account, AppClient, MakeAccount, MakeCourse
from tests.fixtures.schedule import open_every_day

Client = httpx.AsyncClient
VIDEO = os.urandom(50_000)


@dataclass
class Media:
    course: Course
    key: str  # the day-2 video's storage key


async def _course_with_video(
    make_course: MakeCourse,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    **fields: object,
) -> Media:
    """A course whose day 1 and day 2 have a video stored locally, as the video worker leaves
    them."""
    course = await make_course(f"Knife skills {uuid.uuid4().hex[:8]}", **fields)
    storage = LocalStorage(settings.media_dir)
    keys = {}
    async with sessions() as session, session.begin():
        for day in (1, 2):
            key = f"videos/{course.id}/day{day}-{uuid.uuid4()}.mp4"
            await storage.put_bytes(key, VIDEO, "video/mp4")
            await session.execute(
                update(Lesson)
                .where(Lesson.course_id == course.id, Lesson.day_number == day)
                .values(video_url=f"/media/{key}", video_status=VideoStatus.READY)
            )
            keys[day] = key
    return Media(course, keys[2])


@pytest.fixture
async def premium(
    make_course: MakeCourse, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Media:
    return await _course_with_video(make_course, sessions, settings, is_premium=True)


@pytest.fixture
async def draft(
    make_course: MakeCourse, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Media:
    return await _course_with_video(make_course, sessions, settings, status=CourseStatus.DRAFT)


@pytest.fixture
async def subscriber(
    client: Client,
    make_account: MakeAccount,
    premium: Media,
    sessions: async_sessionmaker[AsyncSession],
) -> Account:
    """A premium member enrolled in the premium course long enough ago to watch day 2."""
    account = await make_account(Role.PREMIUM)
    enrolled = await client.put(f"/me/enrollments/{premium.course.id}", headers=account.headers)
    assert enrolled.status_code == 200
    await open_every_day(sessions, account.user.id, premium.course.id)
    return account


@pytest.fixture
def links(settings: Settings) -> MediaLinks:
    """Links signed with the API's own key, for forging the links the API would never give."""
    secret = load_or_create_secret(settings.data_dir / "media-signing.key")
    return MediaLinks(
        secret, public_url=settings.public_url, ttl_seconds=settings.media_url_ttl_seconds
    )


async def _video_link(client: Client, media: Media, day: int, account: Account | None) -> str:
    response = await client.get(
        f"/courses/{media.course.id}/lessons/{day}", headers=account.headers if account else {}
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["video_url"]
    return url


def _with(url: str, **changes: str) -> str:
    """The link with some of its query parameters replaced."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.headers
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Media link refused"


@pytest.mark.parametrize("who", ["anonymous", "free learner", "other premium learner"])
async def test_a_premium_lessons_video_is_not_served_without_a_link(
    client: Client, premium: Media, make_account: MakeAccount, who: str
) -> None:
    """The file's path alone (what the lesson row stores) opens nothing, whoever asks."""
    headers = {"Range": "bytes=0-99"}
    if who != "anonymous":
        account = await make_account(Role.FREE if who == "free learner" else Role.PREMIUM)
        headers |= account.headers

    response = await client.get(f"/media/{premium.key}", headers=headers)

    _assert_refused(response)


async def test_those_who_may_not_open_the_lesson_get_no_link(
    client: Client, premium: Media, draft: Media, make_account: MakeAccount
) -> None:
    free = await make_account(Role.FREE)
    other = await make_account(Role.PREMIUM)  # may enroll, has not

    anonymous = await client.get(f"/courses/{premium.course.id}/lessons/2")
    refused = [
        await client.get(f"/courses/{premium.course.id}/lessons/2", headers=account.headers)
        for account in (free, other)
    ]
    hidden = await client.get(f"/courses/{draft.course.id}/lessons/1", headers=other.headers)

    assert anonymous.status_code == 401
    assert [response.status_code for response in refused] == [403, 403]
    assert hidden.status_code == 404
    assert "video_url" not in anonymous.text + refused[0].text + hidden.text


async def test_a_draft_courses_video_is_not_served_without_a_link(
    client: Client, draft: Media, learner: Account
) -> None:
    _assert_refused(await client.get(f"/media/{draft.key}", headers=learner.headers))
    _assert_refused(await client.get(f"/media/{draft.key}"))


async def test_the_entitled_learner_gets_a_short_lived_link_that_plays_privately(
    client: Client, premium: Media, subscriber: Account, settings: Settings
) -> None:
    lesson = (
        await client.get(f"/courses/{premium.course.id}/lessons/2", headers=subscriber.headers)
    ).json()
    url = lesson["video_url"]

    # Absolute on the configured public base, so a frontend elsewhere can use it; no header.
    assert url.startswith(f"{settings.public_url}/media/{premium.key}?")
    assert parse_qs(urlsplit(url).query)["viewer"] == [str(subscriber.user.id)]
    assert isinstance(client, AppClient)
    player_transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=player_transport) as player:  # no Authorization
        whole = await player.get(url)
        part = await player.get(url, headers={"Range": "bytes=100-199"})

    assert whole.status_code == 200
    assert whole.content == VIDEO
    assert part.status_code == 206
    assert part.content == VIDEO[100:200]
    for response in (whole, part):
        directive, max_age = response.headers["cache-control"].split(", ")
        assert directive == "private"
        assert 0 < int(max_age.removeprefix("max-age=")) <= settings.media_url_ttl_seconds
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires - time.time() <= settings.media_url_ttl_seconds
    assert lesson["video_url_expires_at"] is not None


async def test_anyone_gets_a_link_to_a_free_preview(client: Client, premium: Media) -> None:
    """Day 1 is a preview of every published course: its link is signed for an anonymous
    viewer."""
    url = await _video_link(client, premium, 1, None)

    assert parse_qs(urlsplit(url).query)["viewer"] == ["anonymous"]
    assert (await client.get(url)).content == VIDEO


async def test_an_admin_gets_a_link_to_a_draft_courses_video(
    client: Client, draft: Media, admin_account: Account
) -> None:
    url = await _video_link(client, draft, 2, admin_account)

    assert (await client.get(url)).status_code == 200


async def test_an_expired_link_is_refused(
    client: Client, premium: Media, subscriber: Account, links: MediaLinks, settings: Settings
) -> None:
    a_while_ago = MediaLinks(
        links._secret,
        public_url=settings.public_url,
        ttl_seconds=60,
        clock=lambda: time.time() - 61,
    )

    expired = a_while_ago.sign(premium.key, subscriber.user.id).url

    _assert_refused(await client.get(expired))
    assert links.sign(premium.key, subscriber.user.id).url != expired  # the key is the API's
    assert (await client.get(links.sign(premium.key, subscriber.user.id).url)).status_code == 200


async def test_an_altered_link_is_refused(
    client: Client, premium: Media, subscriber: Account, learner: Account, settings: Settings
) -> None:
    url = await _video_link(client, premium, 2, subscriber)
    query = parse_qs(urlsplit(url).query)
    later = str(int(query["expires"][0]) + 3600)
    other_file = url.replace(premium.key, f"videos/{uuid.uuid4()}/other.mp4")

    altered = [
        _with(url, expires=later),  # a longer life
        _with(url, viewer=str(learner.user.id)),  # viewer A's signature for viewer B
        _with(url, viewer="anonymous"),
        _with(url, signature=query["signature"][0][:-2] + "AA"),
        _with(url, signature="é" * 43),  # not ASCII: a 403 like any other, not a 500
        other_file,  # the signature of one file for another
        url.split("?")[0] + "?" + urlencode({"expires": later, "viewer": "anonymous"}),
    ]

    for link in altered:
        _assert_refused(await client.get(link))
    assert (await client.get(url)).status_code == 200


@pytest.fixture
async def reference_pdf(settings: Settings) -> str:
    key = f"references/{os.urandom(32).hex()}.pdf"
    await LocalStorage(settings.media_dir).put_bytes(key, b"%PDF-1.4 notes", "application/pdf")
    return key


async def test_reference_pdfs_are_for_admins_only(
    client: Client,
    reference_pdf: str,
    learner: Account,
    admin_account: Account,
    links: MediaLinks,
) -> None:
    """Not on the bare path, and not on a link signed for a learner (were one ever handed out,
    say through a lesson resource): the viewer must be an administrator."""
    _assert_refused(await client.get(f"/media/{reference_pdf}", headers=learner.headers))
    _assert_refused(await client.get(f"/media/{reference_pdf}", headers=admin_account.headers))
    _assert_refused(await client.get(links.sign(reference_pdf, learner.user.id).url))
    _assert_refused(await client.get(links.sign(reference_pdf, None).url))
    refused = await client.get(f"/admin/media-links/{reference_pdf}", headers=learner.headers)
    assert refused.status_code == 403

    link = await client.get(f"/admin/media-links/{reference_pdf}", headers=admin_account.headers)
    assert link.status_code == 200
    pdf = await client.get(link.json()["url"])
    assert pdf.status_code == 200
    assert pdf.content == b"%PDF-1.4 notes"
    assert pdf.headers["cache-control"].startswith("private, max-age=")


async def test_a_reference_link_dies_with_its_viewers_admin_role(
    client: Client,
    reference_pdf: str,
    admin_account: Account,
    db: AsyncSession,
) -> None:
    link = await client.get(f"/admin/media-links/{reference_pdf}", headers=admin_account.headers)
    url = link.json()["url"]
    await db.execute(update(User).where(User.id == admin_account.user.id).values(role=Role.FREE))
    await db.commit()

    _assert_refused(await client.get(url))


async def test_a_published_courses_thumbnail_stays_public(
    client: Client, make_course: MakeCourse, settings: Settings
) -> None:
    key = f"thumbnails/{uuid.uuid4()}.png"
    draft_key = f"thumbnails/{uuid.uuid4()}.png"
    storage = LocalStorage(settings.media_dir)
    for each in (key, draft_key):
        await storage.put_bytes(each, b"\x89PNG thumbnail", "image/png")
    course = await make_course(f"Bread {uuid.uuid4().hex[:8]}", thumbnail_url=f"/media/{key}")
    await make_course(
        f"Cake {uuid.uuid4().hex[:8]}",
        status=CourseStatus.DRAFT,
        thumbnail_url=f"/media/{draft_key}",
    )

    listed = (await client.get(f"/courses/{course.id}")).json()["thumbnail_url"]
    thumbnail = await client.get(listed)

    assert listed == f"{settings.public_url}/media/{key}"
    assert thumbnail.status_code == 200
    assert thumbnail.content == b"\x89PNG thumbnail"
    assert thumbnail.headers["cache-control"] == "public, max-age=3600"
    _assert_refused(await client.get(f"/media/{draft_key}"))


async def test_head_answers_what_get_would_without_the_body(
    client: Client, premium: Media, subscriber: Account
) -> None:
    url = await _video_link(client, premium, 2, subscriber)

    whole = await client.head(url)
    part = await client.head(url, headers={"Range": "bytes=0-9"})
    unsigned = await client.head(f"/media/{premium.key}")

    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(VIDEO))
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["cache-control"].startswith("private, max-age=")
    assert whole.content == b""
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-9/{len(VIDEO)}"
    assert unsigned.status_code == 403


async def test_a_lessons_stored_resources_are_linked_but_never_a_reference_pdf(
    client: Client,
    premium: Media,
    subscriber: Account,
    reference_pdf: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    worksheet = f"resources/{uuid.uuid4()}.pdf"
    await LocalStorage(settings.media_dir).put_bytes(
        worksheet, b"%PDF worksheet", "application/pdf"
    )
    resources = [
        {"title": "Worksheet", "url": f"{settings.public_url}/media/{worksheet}"},
        {"title": "Notes", "url": f"{settings.public_url}/media/{reference_pdf}"},
        {"title": "Elsewhere", "url": "https://example.com/knives"},
    ]
    async with sessions() as session, session.begin():
        await session.execute(
            update(Lesson)
            .where(Lesson.course_id == premium.course.id, Lesson.day_number == 2)
            .values(resources=resources)
        )

    lesson = await client.get(f"/courses/{premium.course.id}/lessons/2", headers=subscriber.headers)
    linked = [resource["url"] for resource in lesson.json()["resources"]]

    assert linked[0].startswith(f"{resources[0]['url']}?expires=")
    assert (await client.get(linked[0])).content == b"%PDF worksheet"
    assert linked[1:] == [resources[1]["url"], resources[2]["url"]]
    _assert_refused(await client.get(linked[1]))
