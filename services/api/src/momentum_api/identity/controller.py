"""The built-in local identity provider (embedded setup): sign-up, sign-in, refresh, sign-out
and its JWKS. In production Cognito plays this part and these routes are not mounted.

A sign-in starts a session: its refresh tokens (rotated on every refresh) and the access tokens
issued with them (``sid`` claim) belong to it. Signing out, or replaying a refresh token that
was already used, ends the whole session at once, in every API process. Responses that carry
tokens or personal data are never stored by a cache (``Cache-Control: no-store``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from momentum_api.deps import AppSettings, DbSession, IdentityDep, SigninLimiter
from momentum_api.identity.guards import NO_STORE, authenticated
from momentum_api.identity.principal import Principal
from momentum_api.identity.schemas import (
    EmailPreferencesOut,
    ProfileOut,
    ProfilePatch,
    RefreshTokenBody,
    SignIn,
    SignUp,
    SignUpAccepted,
    TokenPair,
    UserOut,
)
from momentum_api.origin import request_origin
from momentum_api.schemas import changes
from momentum_domain.errors import Unauthorized
from momentum_domain.privacy.service import privacy
from momentum_domain.users.models import User
from momentum_domain.users.profile import Profile, ProfileChanges
from momentum_domain.users.service import normalize_email, users
from momentum_domain.users.sessions import RefreshTokenReused, SignedIn, user_sessions

SIGN_UP_ACCEPTED = (
    "Check your email: a message to this address tells you how to go on. If the account is "
    "new, sign in with the email and password you chose."
)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        email_verified=user.email_verified,
    )


def profile_out(profile: Profile) -> ProfileOut:
    preferences = profile.preferences
    return ProfileOut(
        id=profile.user_id,
        email=profile.email,
        name=profile.name,
        role=profile.role,
        email_verified=profile.email_verified,
        time_zone=preferences.time_zone,
        reminder_hour=preferences.reminder_hour,
        locale=preferences.locale,
        email_preferences=EmailPreferencesOut(
            lesson_reminders=preferences.email.lesson_reminders,
            product_updates=preferences.email.product_updates,
        ),
    )


def profile_changes(data: ProfilePatch) -> ProfileChanges:
    sent = changes(data)
    email = sent.pop("email_preferences", None)
    return ProfileChanges(**sent, **(changes(email) if email is not None else {}))


def token_pair(identity: IdentityDep, signed_in: SignedIn) -> TokenPair:
    """The session's tokens: its new refresh token and an access token of the session."""
    return TokenPair(
        access_token=identity.issue_access_token(signed_in.user, signed_in.session_id),
        refresh_token=signed_in.refresh_token,
        expires_in=identity.settings.auth_access_token_ttl_seconds,
        user=user_out(signed_in.user),
    )


def _refresh_ttl(identity: IdentityDep) -> timedelta:
    return timedelta(seconds=identity.settings.auth_refresh_token_ttl_seconds)


class LocalIdentityController(Controller):
    path = "/auth"
    tags = ["Identity"]
    cache_control = NO_STORE

    @post(
        "/sign-up",
        operation_id="signUp",
        status_code=HTTP_202_ACCEPTED,
        summary="Create an account",
        response_description="Accepted: an email to the address says how to go on",
    )
    async def sign_up(
        self,
        data: JSONBody[SignUp],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
    ) -> SignUpAccepted:
        """The answer is the same whether or not the email already has an account, so sign-up
        does not tell who has one: a new account gets a welcome email, an existing one's owner
        a notice that someone tried. Then sign in (`POST /auth/sign-in`). The password needs at
        least 10 characters and must not be a commonly used one, only spaces, or contain the
        email or the name (400 naming the field)."""
        await users.sign_up(
            db_session, email=data.email, password=data.password, name=data.name,
            origin=request_origin(request, settings),
        )  # fmt: skip
        return SignUpAccepted(detail=SIGN_UP_ACCEPTED)

    @post("/sign-in", operation_id="signIn", status_code=HTTP_200_OK, summary="Sign in")
    async def sign_in(
        self,
        data: JSONBody[SignIn],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        identity: IdentityDep,
        settings: AppSettings,
        signin_limiter: SigninLimiter,
    ) -> TokenPair:
        """Failed attempts slow down further ones from the same address for the same account
        (a doubling wait after 3) and an address that fails too often over any accounts: 429
        with Retry-After. An account is never locked: its owner elsewhere is not affected."""
        origin = request_origin(request, settings)
        email = normalize_email(data.email)
        await signin_limiter.check(email, origin.ip)
        try:
            signed_in = await user_sessions.sign_in(
                db_session, email=email, password=data.password, origin=origin,
                ttl=_refresh_ttl(identity),
            )  # fmt: skip
        except Unauthorized:
            await signin_limiter.record_failure(email, origin.ip)
            # A session of its own: the request's is rolled back with the 401.
            async with identity.sessions() as session:
                await user_sessions.record_failed_sign_in(session, email=email, origin=origin)
            raise
        finally:  # after the failure is recorded: the next attempt sees it
            await signin_limiter.finish(email, origin.ip)
        await signin_limiter.record_success(email, origin.ip)
        return token_pair(identity, signed_in)

    @post("/refresh", operation_id="refreshTokens", status_code=HTTP_200_OK, summary="Refresh")
    async def refresh(
        self,
        data: JSONBody[RefreshTokenBody],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        identity: IdentityDep,
        settings: AppSettings,
    ) -> TokenPair:
        """Exchange a refresh token for new tokens of the same session; the old refresh token
        stops working. Presenting it again ends the whole session (someone holds a copy): every
        token of it is refused from then on."""
        origin = request_origin(request, settings)
        try:
            signed_in = await user_sessions.refresh(
                db_session, data.refresh_token, origin=origin, ttl=_refresh_ttl(identity)
            )
        except RefreshTokenReused as reused:
            # A session of its own: the request's is rolled back with the 401.
            async with identity.sessions() as session:
                await user_sessions.end_reused_session(session, reused.session_id, origin=origin)
            raise
        return token_pair(identity, signed_in)

    @post(
        "/sign-out",
        operation_id="signOut",
        status_code=HTTP_204_NO_CONTENT,
        guards=[authenticated],
        summary="Sign out",
        security=[{"BearerToken": []}],
    )
    async def sign_out(
        self,
        data: JSONBody[RefreshTokenBody],
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        identity: IdentityDep,
        settings: AppSettings,
    ) -> None:
        """End the caller's session: the access token used here, the given refresh token and
        every other token of their sessions stop working, in every API process."""
        sid = (await identity.verifier.verify(request.auth)).claims.get("sid")
        await user_sessions.sign_out(
            db_session, request.user.id, refresh_token=data.refresh_token,
            access_session_id=_uuid_or_none(sid) if isinstance(sid, str) else None,
            origin=request_origin(request, settings),
        )  # fmt: skip

    @get("/jwks.json", operation_id="getJwks", summary="Public signing keys (JWKS)")
    async def jwks(self, identity: IdentityDep) -> dict[str, Any]:
        assert identity.signing_key is not None
        return {"keys": [identity.signing_key.public_jwk]}


class AccountController(Controller):
    path = "/me"
    tags = ["Account"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/", operation_id="getMe", summary="The signed-in user and their profile")
    async def me(self, request: Request[Principal, Any, Any], db_session: DbSession) -> ProfileOut:
        """Who the caller is, and their preferences: time zone (the days their streaks count),
        daily reminder hour, email preferences and locale."""
        return profile_out(await users.profile(db_session, request.user.id))

    @patch("/", operation_id="updateMe", summary="Change my profile")
    async def update(
        self,
        data: JSONBody[ProfilePatch],
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
    ) -> ProfileOut:
        """Only the fields sent change. A time zone that is not an IANA one is a 422 naming
        the field, and then nothing changes."""
        profile = await users.update_profile(
            db_session, request.user.id, profile_changes(data),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return profile_out(profile)

    @delete(
        "/",
        operation_id="eraseMe",
        status_code=HTTP_204_NO_CONTENT,
        summary="Erase my account",
        responses={409: ResponseSpec(None, description="The last administrator")},
    )
    async def erase(self, request: Request[Principal, Any, Any], db_session: DbSession) -> None:
        """Personal data is anonymised or deleted; payments are kept without it; every token
        stops working at once. The last administrator cannot be erased (409): promote another
        user first."""
        await privacy.erase(db_session, request.user.id)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
