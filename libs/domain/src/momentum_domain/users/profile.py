"""A learner's profile: their time zone, reminder hour, email preferences and locale, kept as a
validated document in ``users.preferences``. A key the document lacks (or holds badly) reads as
its default, so accounts older than a preference need no migration."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, fields
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import msgspec

from momentum_domain.errors import Unprocessable
from momentum_domain.users.models import Role

# A short BCP 47 tag: a language, optionally a script and a region (en, en-GB, pt-BR, zh-Hant-TW).
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"
_LOCALE = re.compile(LOCALE_PATTERN)
NAME_MAX = 200


class EmailPreferences(msgspec.Struct, frozen=True, kw_only=True):
    lesson_reminders: bool = True  # the daily reminder at reminder_hour
    product_updates: bool = False


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    time_zone: str = "UTC"  # IANA; every day a learner counts (streaks) is a day in this zone
    reminder_hour: int = 8  # 0-23, local time
    locale: str = "en"
    email: EmailPreferences = EmailPreferences()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    preferences: Preferences


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileChanges:
    """What a PATCH changes: a field left None stays as it is."""

    name: str | None = None
    time_zone: str | None = None
    reminder_hour: int | None = None
    locale: str | None = None
    lesson_reminders: bool | None = None
    product_updates: bool | None = None

    def sent(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def read_preferences(document: dict[str, Any] | None) -> Preferences:
    """The stored document as Preferences: each missing or invalid key reads as its default."""
    document = document or {}
    email = document.get("email")
    email = email if isinstance(email, dict) else {}
    stored = {
        "time_zone": document.get("time_zone"),
        "reminder_hour": document.get("reminder_hour"),
        "locale": document.get("locale"),
        "lesson_reminders": email.get("lesson_reminders"),
        "product_updates": email.get("product_updates"),
    }
    kept = {name: value for name, value in stored.items() if _problem(name, value) is None}
    return _apply(Preferences(), ProfileChanges(**kept))


def write_preferences(preferences: Preferences) -> dict[str, Any]:
    return msgspec.to_builtins(preferences)  # type: ignore[no-any-return]


def validate(changes: ProfileChanges) -> None:
    """Raise a 422 naming every field of ``changes`` that may not be stored."""
    errors = [
        {"field": name, "source": "body", "message": problem}
        for name, value in changes.sent().items()
        if (problem := _problem(name, value)) is not None
    ]
    if errors:
        raise Unprocessable(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), extra={"errors": errors}
        )


def apply(preferences: Preferences, changes: ProfileChanges) -> Preferences:
    validate(changes)
    return _apply(preferences, changes)


def _apply(preferences: Preferences, changes: ProfileChanges) -> Preferences:
    sent = changes.sent()
    email = msgspec.structs.replace(
        preferences.email,
        **{k: sent.pop(k) for k in ("lesson_reminders", "product_updates") if k in sent},
    )
    sent.pop("name", None)  # a column of its own, not a preference
    return msgspec.structs.replace(preferences, email=email, **sent)


def _problem(name: str, value: Any) -> str | None:
    if value is None:
        return "missing"
    if name == "name":
        ok = isinstance(value, str) and 0 < len(value.strip()) <= NAME_MAX
        return None if ok else f"Expected between 1 and {NAME_MAX} characters, not only spaces"
    if name == "time_zone":
        ok = isinstance(value, str) and value in _zones()
        return None if ok else "Expected an IANA time zone, such as Europe/London"
    if name == "reminder_hour":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23
        return None if ok else "Expected an hour from 0 to 23"
    if name == "locale":
        ok = isinstance(value, str) and _LOCALE.fullmatch(value) is not None
        return None if ok else "Expected a language tag, such as en, en-GB or pt-BR"
    return None if isinstance(value, bool) else "Expected true or false"
