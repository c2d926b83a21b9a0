"""One verifier for RS256 access tokens, whoever issued them: Cognito (keys fetched from its JWKS
URL) or the built-in local identity provider (its own published key set)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from momentum_api.lru import TtlCache
from momentum_domain.errors import Unauthorized

logger = logging.getLogger(__name__)
ALGORITHM = "RS256"


class KeySource(Protocol):
    async def get(self, kid: str) -> jwt.PyJWK | None: ...


class StaticKeySource:
    """A fixed JWKS document, e.g. the local identity provider's own."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}

    async def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)


class RemoteKeySource:
    """A JWKS URL, cached. An unknown kid triggers one refetch (key rotation), at most once per
    ``min_refresh_seconds`` so a flood of forged kids cannot hammer the identity provider."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        cache_seconds: float = 3600,
        min_refresh_seconds: float = 30,
    ) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        seen_fetch = self._fetched_at
        age = time.monotonic() - seen_fetch
        if age > self._cache_seconds or (kid not in self._keys and age > self._min_refresh_seconds):
            async with self._lock:
                if self._fetched_at == seen_fetch:  # nobody refreshed while we waited
                    await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            document = response.json()
            self._keys = {
                k["kid"]: jwt.PyJWK(k)
                for k in document.get("keys", [])
                if k.get("kty") == "RSA" and "kid" in k
            }
        except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
            logger.warning("could not refresh JWKS from %s: %s", self._url, exc)
        finally:
            self._fetched_at = time.monotonic()


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    claims: dict[str, Any]


class TokenVerifier:
    def __init__(self, keys: KeySource, *, issuer: str, audience: str, leeway: int = 30) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._verified: TtlCache[VerifiedToken] = TtlCache(50_000)

    async def verify(self, token: str) -> VerifiedToken:
        # A token verified once stays valid until it expires: skip the RSA check next time.
        known = self._verified.get(token)
        if known is not None:
            return known
        verified = await self._verify(token)
        ttl = float(verified.claims["exp"]) - time.time()
        if ttl > 0:
            self._verified.put(token, verified, ttl)
        return verified

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        # Only RS256: this shuts out "none" and HS256-with-the-public-key confusion attacks.
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The access token's algorithm is not accepted.")
        key = await self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise Unauthorized("The access token was signed by an unknown key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"The access token is invalid: {exc}.") from exc
        # Cognito's ID tokens are signed by the same keys and name the same client: only an
        # access token may call the API (the local provider marks its tokens the same way).
        if claims.get("token_use") != "access":
            raise Unauthorized("Only an access token is accepted (token_use must be 'access').")
        # The local provider's tokens carry "aud"; Cognito access tokens carry "client_id".
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise Unauthorized("The access token is not meant for this API.")
        return VerifiedToken(subject=str(claims["sub"]), claims=claims)
