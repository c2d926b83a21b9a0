"""Rate limits in Redis. When Redis is unreachable they are not enforced (logged): the API's
availability matters more than a limiter, and a shared breaker keeps requests from waiting on
a dead Redis.

Failed sign-ins are throttled, never locked (SigninThrottle). The rules follow the OWASP
Authentication Cheat Sheet (login throttling with an exponentially growing delay rather than a
fixed lockout; an attacker must not be able to lock other users out) and NIST SP 800-63B 5.2.2
(limit failed attempts by rate, not by locking the subscriber out):

1. Per account and client address: the first 3 failures (``auth_signin_free_failures``) cost
   nothing; each further one makes that pair wait, 1 s after the first of them, doubling to at
   most 15 min (``auth_signin_max_backoff_seconds``). While it waits, its attempts are answered
   429 with Retry-After and the password is not checked. The pair's count is kept for a day
   after its last failure; a success from that address clears it. The account itself is never
   locked: its owner signing in from another address is not slowed by anyone else's failures.
   One attempt at a time per pair (a second one meanwhile is a 429 with Retry-After 1), so
   guesses sent together are counted like guesses sent in turn.
2. Per client address, over every account (credential stuffing, password spraying): at most
   ``auth_signin_max_failures`` (50) failures in ``auth_signin_failure_window_seconds`` (15
   min), then 429 until the window ends. This only ever stops the address that failed.
3. Every request to the sign-in endpoints also counts against the per-address request rate
   (RequestLimiter, ``rate_limit_signin``), and every failure is audited with its address
   ("user.sign_in_failed"), for alerting on distributed guessing. Guessing one account slowly
   from many addresses is what the password rules (momentum_domain.users.passwords: no common
   password) answer, rather than a lock anyone could trigger."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_api.origin import client_address
from momentum_domain.config import Settings
from momentum_domain.errors import TooManyRequests
from momentum_domain.kit.resilience import CircuitBreaker

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


class SigninThrottle:
    """Failed sign-ins slow the guesser down without locking the account's owner out: the
    rules are in this module's docstring. Emails are kept in Redis only as digests."""

    PAIR_MEMORY_SECONDS = 24 * 3600
    # One attempt at a time per account and address, or guesses sent together would all pass
    # the check before the first failure is recorded. Freed when the attempt ends; the expiry
    # only covers a process that died in between.
    IN_FLIGHT_MS = 10_000

    def __init__(
        self,
        redis: Redis,
        breaker: CircuitBreaker,
        *,
        free_failures: int,
        max_backoff: int,
        address_max_failures: int,
        address_window: int,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._free = free_failures
        self._max_backoff = max_backoff
        self._address_max = address_max_failures
        self._address_window = address_window

    @classmethod
    def from_settings(
        cls, redis: Redis, breaker: CircuitBreaker, settings: Settings
    ) -> SigninThrottle:
        return cls(
            redis,
            breaker,
            free_failures=settings.auth_signin_free_failures,
            max_backoff=settings.auth_signin_max_backoff_seconds,
            address_max_failures=settings.auth_signin_max_failures,
            address_window=settings.auth_signin_failure_window_seconds,
        )

    @staticmethod
    def _pair(email: str, address: str | None) -> str:
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        return f"ratelimit:signin:pair:{account}:{address or 'unknown'}"

    @classmethod
    def _keys(cls, email: str, address: str | None) -> tuple[str, str, str]:
        pair = cls._pair(email, address)
        return (
            f"{pair}:failures",
            f"{pair}:wait",
            f"ratelimit:signin:address:{address or 'unknown'}",
        )

    async def check(self, email: str, address: str | None) -> None:
        """429 when this account and address must wait, this address has failed too often, or
        another attempt for this account from this address is under way; else the attempt is
        this one's until ``finish``."""
        if self._breaker.is_open:
            return
        _, wait, per_address = self._keys(email, address)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.pttl(wait)
                pipe.get(per_address)
                pipe.ttl(per_address)
                wait_ms, address_failures, address_ttl = await pipe.execute()
        except RedisError as exc:
            _unavailable(self._breaker, exc)
            return
        if wait_ms > 0:
            raise TooManyRequests(
                "Too many failed attempts for this account from here; try again later.",
                retry_after=math.ceil(wait_ms / 1000),
            )
        if address_failures is not None and int(address_failures) >= self._address_max:
            raise TooManyRequests(
                "Too many failed sign-ins from this address; try again later.",
                retry_after=max(int(address_ttl), 1),
            )
        try:
            mine = await self._redis.set(
                f"{self._pair(email, address)}:in-flight", 1, nx=True, px=self.IN_FLIGHT_MS
            )
        except RedisError as exc:
            _unavailable(self._breaker, exc)
            return
        if not mine:
            raise TooManyRequests(
                "A sign-in for this account from here is under way; try again in a moment.",
                retry_after=1,
            )

    async def finish(self, email: str, address: str | None) -> None:
        """The attempt ``check`` let through has ended, however it ended."""
        try:
            await self._redis.delete(f"{self._pair(email, address)}:in-flight")
        except RedisError as exc:
            _unavailable(self._breaker, exc)

    async def record_failure(self, email: str, address: str | None) -> None:
        failures_key, wait, per_address = self._keys(email, address)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(failures_key)
                pipe.expire(failures_key, self.PAIR_MEMORY_SECONDS)
                # The address's window starts at its first failure; INCR keeps the expiry.
                pipe.set(per_address, 0, ex=self._address_window, nx=True)
                pipe.incr(per_address)
                failures = (await pipe.execute())[0]
            if failures > self._free:
                backoff = min(2 ** min(failures - self._free - 1, 30), self._max_backoff)
                await self._redis.set(wait, 1, ex=backoff)
        except RedisError as exc:
            _unavailable(self._breaker, exc)

    async def record_success(self, email: str, address: str | None) -> None:
        failures_key, wait, _ = self._keys(email, address)
        try:
            await self._redis.delete(failures_key, wait)
        except RedisError as exc:
            _unavailable(self._breaker, exc)


class RequestLimiter:
    """Request counts per caller (the user when signed in, else the client address) over a
    sliding window: this window's count plus the previous window's, weighted by how much of it
    the sliding window still covers. A fixed window would let a caller send twice its limit
    across a window's edge, and reset a caller's count mid-burst. Sign-in and admin endpoints
    have stricter limits of their own."""

    def __init__(
        self,
        redis: Redis,
        breaker: CircuitBreaker,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._clock = clock
        self._count = redis.register_script(_SLIDING_COUNT)
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
        now = self._clock()
        window_index = int(now // rate.window)
        elapsed = now - window_index * rate.window
        # One hash slot per caller and bucket (the braces): both windows' keys go to one script.
        prefix = f"ratelimit:requests:{{{bucket}:{caller}}}"
        try:
            allowed, accepted, previous = await self._count(
                keys=[f"{prefix}:{window_index}", f"{prefix}:{window_index - 1}"],
                args=[rate.limit, 2 * rate.window, 1 - elapsed / rate.window],
            )
            self._breaker.record_success()
        except RedisError as exc:
            _unavailable(self._breaker, exc)
            return
        if not allowed:
            raise TooManyRequests(
                f"Rate limit of {rate.limit} requests per {rate.window} s exceeded.",
                retry_after=_seconds_until_allowed(rate, elapsed, int(accepted), int(previous)),
            )


# KEYS: this window's count, the previous window's. ARGV: the limit, how long a count is kept
# (two windows: it is the next window's past), the previous window's weight now. Only requests
# let through count: a caller over the limit is slowed to it, never shut out by its own retries.
_SLIDING_COUNT = """
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if previous * tonumber(ARGV[3]) + count + 1 > tonumber(ARGV[1]) then
  return {0, count, previous}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {1, count, previous}
"""


def _seconds_until_allowed(rate: Rate, elapsed: float, accepted: int, previous: int) -> int:
    """When one more request fits under the sliding count, if the caller sends nothing before."""
    if accepted >= rate.limit:
        # This window's count must first become the previous one and fade far enough.
        wait = rate.window - elapsed + rate.window * (1 - (rate.limit - 1) / accepted)
    else:
        wait = rate.window * (1 - (rate.limit - accepted - 1) / previous) - elapsed
    return max(math.ceil(wait), 1)


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


__all__ = ["Rate", "RateLimitMiddleware", "RequestLimiter", "SigninThrottle"]
