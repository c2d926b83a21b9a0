"""Dependencies every controller may ask for by name: the app's shared objects, kept in its
state by the app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.cache import ResponseCache
from momentum_api.identity.service import Identity
from momentum_api.ratelimit import SigninThrottle
from momentum_domain.commerce.stripe_client import StripeGateway
from momentum_domain.config import Settings
from momentum_domain.kit.storage import ObjectStorage

# Handler parameters name their dependencies explicitly (Litestar 3 stops inferring them).
DbSession: TypeAlias = NamedDependency[AsyncSession]
# Each statement commits on its own, with no BEGIN/COMMIT round trips: for handlers that read, or
# whose writes each stand alone as one atomic statement (a progress write, then its recount or a
# badge). Work that needs a transaction (locks, writes that stand or fall together) takes a
# DbSession.
AutocommitSession: TypeAlias = NamedDependency[AsyncSession]
AppSettings: TypeAlias = NamedDependency[Settings]
IdentityDep: TypeAlias = NamedDependency[Identity]
SigninLimiter: TypeAlias = NamedDependency[SigninThrottle]
CatalogCache: TypeAlias = NamedDependency[ResponseCache]
StorageDep: TypeAlias = NamedDependency[ObjectStorage]
StripeGatewayDep: TypeAlias = NamedDependency[StripeGateway]


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return state[name]

    return Provide(provide, sync_to_thread=False)


async def provide_autocommit_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state["autocommit_sessions"]() as session:
        yield session


# The parameter name a handler uses is the key in the app state.
dependencies = {
    "autocommit_session": Provide(provide_autocommit_session),
} | {
    name: _from_state(name)
    for name in (
        "settings",
        "identity",
        "signin_limiter",
        "catalog_cache",
        "storage",
        "stripe_gateway",
    )
}
