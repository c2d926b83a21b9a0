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

from litestar import Controller, Request, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.deps import AppSettings, DbSession, IdentityDep, SigninLimiter
from momentum_api.identity.guards import NO_STORE, authenticated
from momentum_api.identity.principal import Principal
from momentum_api.identity.schemas import (
    RefreshTokenBody,
    SignIn,
    SignUp,
    SignUpAccepted,
    TokenPair,
    UserOut,
)
from momentum_api.origin import request_origin
from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.errors import Unauthorized
from momentum_domain.privacy.service import privacy
from momentum_domain.unit_of_work import transaction
from momentum_domain.users.models import User
from momentum_domain.users.service import RefreshTokenReused, normalize_email, users

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


async def issue_tokens(
    session: AsyncSession,
    identity: IdentityDep,
    user: User,
    origin: RequestOrigin,
    session_id: uuid.UUID | None = None,
) -> TokenPair:
    """Tokens of the session ``session_id`` (a refresh), or of a new one (a sign-in)."""
    settings = identity.settings
    session_id = session_id or uuid.uuid4()
    refresh = await users.issue_refresh_token(
        session,
        user,
        session_id=session_id,
        ttl=timedelta(seconds=settings.auth_refresh_token_ttl_seconds),
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
    return TokenPair(
        access_token=identity.issue_access_token(user, session_id),
        refresh_token=refresh.token,
        expires_in=settings.auth_access_token_ttl_seconds,
        user=user_out(user),
    )


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
        signed_up = await users.sign_up(
            db_session, email=data.email, password=data.password, name=data.name
        )
        await audit.record(
            db_session,
            actor_id=signed_up.user.id if signed_up.created else None,
            action="user.sign_up" if signed_up.created else "user.sign_up_existing_email",
            resource_type="user",
            resource_id=signed_up.user.id,
            origin=request_origin(request, settings),
        )
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
            user = await users.authenticate(db_session, email=email, password=data.password)
        except Unauthorized:
            await signin_limiter.record_failure(email, origin.ip)
            # Its own transaction: the request's is rolled back with the 401.
            async with transaction(identity.sessions) as session:
                await audit.record(
                    session,
                    actor_id=None,
                    action="user.sign_in_failed",
                    resource_type="user",
                    resource_id=None,
                    origin=origin,
                    details={"email": email},
                )
            raise
        finally:  # after the failure is recorded: the next attempt sees it
            await signin_limiter.finish(email, origin.ip)
        await signin_limiter.record_success(email, origin.ip)
        await audit.record(
            db_session,
            actor_id=user.id,
            action="user.sign_in",
            resource_type="user",
            resource_id=user.id,
            origin=origin,
        )
        return await issue_tokens(db_session, identity, user, origin)

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
            redeemed = await users.redeem_refresh_token(db_session, data.refresh_token)
        except RefreshTokenReused as reused:
            # Its own transaction: the request's is rolled back with the 401.
            async with transaction(identity.sessions) as session:
                live = await users.end_session(session, reused.session_id)
                if live:  # not a session already over (signed out, or ended like this before)
                    await audit.record(
                        session,
                        actor_id=None,
                        action="user.refresh_token_reused",
                        resource_type="session",
                        resource_id=reused.session_id,
                        origin=origin,
                    )
            if live:
                await identity.end_session(reused.session_id)
            raise
        return await issue_tokens(db_session, identity, redeemed.user, origin, redeemed.session_id)

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
        user = await users.get(db_session, request.user.id)
        if user is None:
            return
        sid = (await identity.verifier.verify(request.auth)).claims.get("sid")
        candidates = {
            await users.session_of(db_session, user, data.refresh_token),
            _uuid_or_none(sid) if isinstance(sid, str) else None,
        }
        ended = {session_id for session_id in candidates if session_id is not None}
        for session_id in ended:
            await users.end_session(db_session, session_id)
        await audit.record(
            db_session,
            actor_id=user.id,
            action="user.sign_out",
            resource_type="user",
            resource_id=user.id,
            origin=request_origin(request, settings),
        )
        await db_session.commit()
        for session_id in ended:
            await identity.end_session(session_id)

    @get("/jwks.json", operation_id="getJwks", summary="Public signing keys (JWKS)")
    async def jwks(self, identity: IdentityDep) -> dict[str, Any]:
        assert identity.signing_key is not None
        return {"keys": [identity.signing_key.public_jwk]}


class AccountController(Controller):
    path = "/me"
    tags = ["Account"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/", operation_id="getMe", summary="The signed-in user")
    async def me(self, request: Request[Principal, Any, Any], db_session: DbSession) -> UserOut:
        user = await users.get(db_session, request.user.id)
        if user is None:
            raise Unauthorized("The account behind this token no longer exists.")
        return user_out(user)

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
        # Recorded without the person: the trail shows an erasure happened, not who it was.
        await audit.record(
            db_session,
            actor_id=request.user.id,
            action="privacy.erase",
            resource_type="user",
            resource_id=request.user.id,
        )
        await db_session.commit()
        await request.app.state.identity.forget(request.user.id)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
