"""Cognito's OAuth2 userInfo endpoint: where the API learns the email of a user it sees for the
first time. Cognito access tokens carry no email (its ID tokens do, but APIs are sent access
tokens), and an invented address would be stored, shown and written to for ever.

Asked once per user, when the user's row is created; afterwards the row answers. A token whose
scopes cannot reveal the email is refused with a 403 naming the scope, never given a stand-in.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from typing import Any

import httpx

from momentum_domain.errors import Forbidden, ServiceUnavailable, Unauthorized
from momentum_domain.kit.resilience import retry_after_seconds

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
ATTEMPTS = 3
BACKOFF_SECONDS = 0.2
# A Retry-After from Cognito longer than this is not waited out inside a request.
MAX_WAIT_SECONDS = 2.0
# What a client is told to wait when userInfo cannot be reached.
RETRY_AFTER_SECONDS = 5
_CHALLENGE_DESCRIPTION = re.compile(r'error_description="([^"]*)"')


class IdentityProviderUnavailable(ServiceUnavailable):
    """userInfo could not be reached, or kept failing, while a new user was being set up."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    email: str
    email_verified: bool
    name: str | None


class UserInfoClient:
    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
        self._attempts = attempts
        self._backoff = backoff_seconds

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, token: str, claims: dict[str, Any]) -> UserInfo:
        """The attributes of the user ``token`` belongs to (``claims`` already verified)."""
        scope = claims.get("scope")
        # userInfo refuses tokens without openid (e.g. InitiateAuth's, scoped only
        # aws.cognito.signin.user.admin): say which scope is missing instead of asking.
        if isinstance(scope, str) and "openid" not in scope.split():
            raise Forbidden(
                "The access token lacks the openid scope, so the identity provider will not "
                "reveal the account's email address; sign in through the hosted sign-in asking "
                "for the 'openid email' scopes.",
                extra={"required_scopes": ["openid", "email"]},
            )
        answer = await self._get(token)
        if str(answer.get("sub")) != str(claims["sub"]):
            logger.warning("userInfo answered for another subject than the access token's")
            raise Unauthorized("The identity provider's user does not match the access token.")
        email = answer.get("email")
        if not isinstance(email, str) or not email.strip():
            raise Forbidden(
                "The identity provider returned no email address for this account: the access "
                "token needs the email scope (sign in asking for 'openid email').",
                extra={"required_scopes": ["openid", "email"]},
            )
        name = answer.get("name")
        return UserInfo(
            email=email,
            # Cognito sends "true"/"false" strings here, not the booleans OIDC specifies.
            email_verified=str(answer.get("email_verified", "")).lower() == "true",
            name=name if isinstance(name, str) and name.strip() else None,
        )

    async def _get(self, token: str) -> dict[str, Any]:
        failure = ""
        for attempt in range(1, self._attempts + 1):
            wait: float | None = None
            try:
                response = await self._client.get(
                    self._url,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            except httpx.HTTPError as exc:  # timeouts, refused or broken connections
                failure = repr(exc)
            else:
                status = response.status_code
                if status == 200:
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        return answer
                    failure = "a 200 answer that is not a JSON object"
                elif status in (400, 401):
                    raise Unauthorized(
                        "The identity provider rejected the access token: "
                        f"{_description(response)}."
                    )
                elif status == 403:
                    raise Forbidden(
                        f"The identity provider refused to describe the account: "
                        f"{_description(response)}."
                    )
                elif status == 429 or status >= 500:
                    failure = f"HTTP {status}"
                    wait = retry_after_seconds(response.headers)
                else:  # 404, 405...: the URL is wrong, and asking again will not help
                    logger.error(
                        "userInfo at %s answered HTTP %s; check MOMENTUM_AUTH_USERINFO_URL",
                        self._url,
                        status,
                    )
                    raise IdentityProviderUnavailable(
                        "The identity provider could not be asked about this account.",
                        retry_after=RETRY_AFTER_SECONDS,
                    )
            if attempt < self._attempts:
                backoff = self._backoff * 2 ** (attempt - 1)
                delay = min(wait if wait is not None else backoff, MAX_WAIT_SECONDS)
                await asyncio.sleep(delay + random.uniform(0, self._backoff))
        logger.warning("userInfo at %s failed %d times: %s", self._url, self._attempts, failure)
        raise IdentityProviderUnavailable(
            "The identity provider cannot be reached to set up this account; try again shortly.",
            retry_after=RETRY_AFTER_SECONDS,
        )


def _description(response: httpx.Response) -> str:
    """Cognito's reason: the JSON body's error_description, else the WWW-Authenticate one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error_description"):
        text = str(body["error_description"])
    elif isinstance(body, dict) and body.get("error"):
        text = str(body["error"])
    else:
        found = _CHALLENGE_DESCRIPTION.search(response.headers.get("www-authenticate", ""))
        text = found.group(1) if found else f"HTTP {response.status_code}"
    return text[:200].rstrip(".")
