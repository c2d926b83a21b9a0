"""Dependencies every controller may ask for by name."""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.cache import ResponseCache
from momentum_api.identity.service import Identity
from momentum_api.ratelimit import FailureLimiter
from momentum_domain.config import Settings
from momentum_domain.queue import Enqueuer
from momentum_domain.storage import ObjectStorage


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_redis(state: State) -> Redis:
    redis: Redis = state.redis
    return redis


def provide_identity(state: State) -> Identity:
    identity: Identity = state.identity
    return identity


def provide_catalog_cache(state: State) -> ResponseCache:
    cache: ResponseCache = state.catalog_cache
    return cache


def provide_enqueuer(state: State) -> Enqueuer:
    enqueuer: Enqueuer = state.enqueuer
    return enqueuer


def provide_storage(state: State) -> ObjectStorage:
    storage: ObjectStorage = state.storage
    return storage


def provide_signin_limiter(state: State) -> FailureLimiter:
    limiter: FailureLimiter = state.signin_limiter
    return limiter


# Handler parameters name their dependencies explicitly (Litestar 3 stops inferring them).
DbSession: TypeAlias = NamedDependency[AsyncSession]
AppSettings: TypeAlias = NamedDependency[Settings]
RedisClient: TypeAlias = NamedDependency[Redis]
IdentityDep: TypeAlias = NamedDependency[Identity]
SigninLimiter: TypeAlias = NamedDependency[FailureLimiter]
CatalogCache: TypeAlias = NamedDependency[ResponseCache]
EnqueuerDep: TypeAlias = NamedDependency[Enqueuer]
StorageDep: TypeAlias = NamedDependency[ObjectStorage]

dependencies = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "identity": Provide(provide_identity, sync_to_thread=False),
    "signin_limiter": Provide(provide_signin_limiter, sync_to_thread=False),
    "catalog_cache": Provide(provide_catalog_cache, sync_to_thread=False),
    "enqueuer": Provide(provide_enqueuer, sync_to_thread=False),
    "storage": Provide(provide_storage, sync_to_thread=False),
}
