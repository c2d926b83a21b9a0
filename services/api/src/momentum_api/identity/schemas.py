from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from momentum_api.schemas import Strict
from momentum_domain.users import passwords
from momentum_domain.users.models import Role
from momentum_domain.users.profile import LOCALE_PATTERN, NAME_MAX

_PART = r"[^@\s\x00-\x20\x7f-\x9f]+"
Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=320,
        # Control characters spelled out: Python's \s also matches \x1c-\x1f and \x85, which
        # JSON Schema's (ECMA-262) does not, and the document must refuse what we refuse.
        pattern=rf"^{_PART}@{_PART}\.{_PART}$",
        description="An email address",
        examples=["learner@example.com"],
    ),
]
Password = Annotated[
    str,
    msgspec.Meta(
        min_length=passwords.MIN_LENGTH,
        max_length=passwords.MAX_LENGTH,
        description="A new password: not among the 30,000 most common ones, not only spaces, "
        "and not containing the email address or the name",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=16, max_length=200)]


class SignUp(Strict):
    email: Email
    password: Password
    name: Name


class SignUpAccepted(msgspec.Struct):
    detail: str


class SignIn(Strict):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RefreshTokenBody(Strict):
    refresh_token: OpaqueToken


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    email_verified: bool


TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="An IANA time zone; an unknown one is a 422",
        examples=["Europe/London"],
    ),
]
ReminderHour = Annotated[
    int, msgspec.Meta(ge=0, le=23, description="The local hour of the daily lesson reminder")
]
Locale = Annotated[
    str,
    msgspec.Meta(
        pattern=LOCALE_PATTERN, description="A BCP 47 language tag", examples=["en", "pt-BR"]
    ),
]
UNSET: Any = msgspec.UNSET


class EmailPreferencesOut(msgspec.Struct):
    lesson_reminders: bool
    product_updates: bool


class ProfileOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    time_zone: str
    reminder_hour: int
    locale: str
    email_preferences: EmailPreferencesOut


class EmailPreferencesPatch(Strict):
    lesson_reminders: bool = UNSET
    product_updates: bool = UNSET


class ProfilePatch(Strict):
    name: Name = UNSET
    time_zone: TimeZone = UNSET
    reminder_hour: ReminderHour = UNSET
    locale: Locale = UNSET
    email_preferences: EmailPreferencesPatch = UNSET


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    user: UserOut
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
