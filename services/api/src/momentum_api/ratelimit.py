"""Rate limits in Redis. When Redis is unreachable they are not enforced (logged): the API's
availability matters more than a limiter, and a shared breaker keeps requests from waiting on
a dead Redis."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_api.origin import client_address
from momentum_domain.config import Settings
from momentum_domain.errors import TooManyRequests
from momentum_domain.resilience import CircuitBreaker

logger = logging.getLogger(__name__)

SIGNIN_PATHS = frozenset({"/auth/sign-in", "/auth/sign-up", "/auth/refresh"})


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'600/60' is 600 requests per 60 seconds."""
        limit, _, window = text.partition("/")
        return cls(int(limit), int(window or 60))


class FailureLimiter:
    """Blocks a key (an account, an IP) after ``max_failures`` failures within ``window``
    seconds, until the window expires."""

    def __init__(
        self, redis: Redis, breaker: CircuitBreaker, *, prefix: str, max_failures: int, window: int
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._prefix = prefix
        self._max = max_failures
        self._window = window

    def _key(self, key: str) -> str:
        return f"ratelimit:{self._prefix}:{key}"

    async def check(self, *keys: str) -> None:
        if self._breaker.is_open:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(self._key(key))
                    pipe.ttl(self._key(key))
                results = await pipe.execute()
        except RedisError as exc:
            _unavailable(self._breaker, exc)
            return
        for count, ttl in zip(results[::2], results[1::2], strict=True):
            if count is not None and int(count) >= self._max:
                raise TooManyRequests(
                    "Too many failed attempts; try again later.", retry_after=max(int(ttl), 1)
                )

    async def record_failure(self, *keys: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    # The window starts at the first failure; INCR keeps the expiry.
                    pipe.set(self._key(key), 0, ex=self._window, nx=True)
                    pipe.incr(self._key(key))
                await pipe.execute()
        except RedisError as exc:
            _unavailable(self._breaker, exc)

    async def reset(self, *keys: str) -> None:
        try:
            await self._redis.delete(*(self._key(k) for k in keys))
        except RedisError as exc:
            _unavailable(self._breaker, exc)


class RequestLimiter:
    """Fixed-window request counts per caller: the user when signed in, else the client IP.
    Sign-in and admin endpoints have stricter limits of their own."""

    def __init__(self, redis: Redis, breaker: CircuitBreaker, settings: Settings) -> None:
        self._redis = redis
        self._breaker = breaker
        self._trusted_proxies = settings.api_trusted_proxies
        self._rates = {
            "default": Rate.parse(settings.rate_limit_default),
            "admin": Rate.parse(settings.rate_limit_admin),
            "signin": Rate.parse(settings.rate_limit_signin),
        }

    async def check(self, scope: Scope) -> None:
        if self._breaker.is_open:
            return
        path = scope["path"]
        bucket = (
            "signin"
            if path in SIGNIN_PATHS
            else "admin"
            if path.startswith("/admin")
            else "default"
        )
        rate = self._rates[bucket]
        user = scope.get("user")
        caller = (
            f"user:{user.id}"
            if user is not None
            else f"ip:{client_address(scope, self._trusted_proxies) or 'unknown'}"
        )
        now = time.time()
        window_index = int(now // rate.window)
        key = f"ratelimit:requests:{bucket}:{caller}:{window_index}"
        try:
            # One round trip but for the first request of a window, which sets its expiry (the
            # window is in the key: a key left without one is garbage, never a wrong count).
            count = await self._redis.incr(key)
            if count == 1:
                await self._redis.expire(key, rate.window)
            self._breaker.record_success()
        except RedisError as exc:
            _unavailable(self._breaker, exc)
            return
        if count > rate.limit:
            retry_after = max(int((window_index + 1) * rate.window - now), 1)
            raise TooManyRequests(
                f"Rate limit of {rate.limit} requests per {rate.window} s exceeded.",
                retry_after=retry_after,
            )


def _unavailable(breaker: CircuitBreaker, exc: Exception) -> None:
    breaker.record_failure()
    logger.warning("rate limiter unavailable, not enforcing: %s", exc)


class RateLimitMiddleware(ASGIMiddleware):
    def should_bypass_for_scope(self, scope: Scope) -> bool:
        # Load balancer probes and the API docs are never limited.
        return scope["path"].startswith(("/health/", "/schema"))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        limiter: RequestLimiter = scope["litestar_app"].state.request_limiter
        await limiter.check(scope)
        await next_app(scope, receive, send)


__all__ = ["FailureLimiter", "Rate", "RateLimitMiddleware", "RequestLimiter"]
