"""The built-in local identity provider (embedded setup): sign-up, sign-in, refresh, sign-out
and its JWKS. In production Cognito plays this part and these routes are not mounted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.deps import AppSettings, DbSession, IdentityDep, SigninLimiter
from momentum_api.identity.guards import authenticated
from momentum_api.identity.principal import Principal
from momentum_api.identity.schemas import RefreshTokenBody, SignIn, SignUp, TokenPair, UserOut
from momentum_api.origin import request_origin
from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.errors import Unauthorized
from momentum_domain.privacy.service import privacy
from momentum_domain.users.models import User
from momentum_domain.users.service import normalize_email, users


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        email_verified=user.email_verified,
    )


async def issue_tokens(
    session: AsyncSession, identity: IdentityDep, user: User, origin: RequestOrigin
) -> TokenPair:
    settings = identity.settings
    refresh = await users.issue_refresh_token(
        session,
        user,
        ttl=timedelta(seconds=settings.auth_refresh_token_ttl_seconds),
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
    return TokenPair(
        access_token=identity.issue_access_token(user),
        refresh_token=refresh.token,
        expires_in=settings.auth_access_token_ttl_seconds,
        user=user_out(user),
    )


class LocalIdentityController(Controller):
    path = "/auth"
    tags = ["Identity"]

    @post(
        "/sign-up", operation_id="signUp", status_code=HTTP_201_CREATED, summary="Create an account"
    )
    async def sign_up(
        self,
        data: JSONBody[SignUp],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        identity: IdentityDep,
        settings: AppSettings,
    ) -> TokenPair:
        origin = request_origin(request, settings)
        user = await users.create_local(
            db_session, email=data.email, password=data.password, name=data.name
        )
        await audit.record(
            db_session,
            actor_id=user.id,
            action="user.sign_up",
            resource_type="user",
            resource_id=user.id,
            origin=origin,
        )
        return await issue_tokens(db_session, identity, user, origin)

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
        """Failed attempts are limited per account and per client IP (429 with Retry-After)."""
        origin = request_origin(request, settings)
        email = normalize_email(data.email)
        limit_keys = (f"account:{email}", *([f"ip:{origin.ip}"] if origin.ip else []))
        await signin_limiter.check(*limit_keys)
        try:
            user = await users.authenticate(db_session, email=email, password=data.password)
        except Unauthorized:
            await signin_limiter.record_failure(*limit_keys)
            # Its own transaction: the request's is rolled back with the 401.
            async with identity.sessions() as session, session.begin():
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
        await signin_limiter.reset(limit_keys[0])
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
        """Exchange a refresh token for new tokens; the old refresh token stops working."""
        user = await users.redeem_refresh_token(db_session, data.refresh_token)
        return await issue_tokens(db_session, identity, user, request_origin(request, settings))

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
        settings: AppSettings,
    ) -> None:
        """Revoke the given refresh token of the caller."""
        user = await users.get(db_session, request.user.id)
        if user is not None:
            await users.revoke_refresh_token(db_session, user, data.refresh_token)
            await audit.record(
                db_session,
                actor_id=user.id,
                action="user.sign_out",
                resource_type="user",
                resource_id=user.id,
                origin=request_origin(request, settings),
            )

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
        "/", operation_id="eraseMe", status_code=HTTP_204_NO_CONTENT, summary="Erase my account"
    )
    async def erase(self, request: Request[Principal, Any, Any], db_session: DbSession) -> None:
        """Personal data is anonymised or deleted; payments are kept without it; every token
        stops working at once."""
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
