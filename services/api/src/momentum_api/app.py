"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import gc

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import PluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.access_log import AccessLog
from momentum_api.cache import ResponseCache
from momentum_api.decoding import InputGuardMiddleware
from momentum_api.deps import dependencies
from momentum_api.edge import HeadAsGet, SecurityHeaders
from momentum_api.identity.controller import LocalIdentityController
from momentum_api.identity.keys import SigningKey, load_or_create
from momentum_api.identity.middleware import BearerTokenMiddleware
from momentum_api.identity.service import Identity
from momentum_api.identity.userinfo import UserInfoClient
from momentum_api.identity.verifier import (
    KeySource,
    RemoteKeySource,
    StaticKeySource,
    TokenVerifier,
)
from momentum_api.openapi import document_problems
from momentum_api.problems import exception_handlers
from momentum_api.ratelimit import RateLimitMiddleware, RequestLimiter, SigninThrottle
from momentum_api.request_metrics import RequestMetrics
from momentum_api.routes import ROUTE_GROUPS
from momentum_api.unit_of_work import run_effects_after_requests
from momentum_api.videos.links import MediaLinks
from momentum_domain.audit.sink import bind_audit_sink, create_audit_sink
from momentum_domain.catalog.events import CatalogChanged
from momentum_domain.commerce.events import CoursePurchased
from momentum_domain.commerce.stripe_client import StripeGateway
from momentum_domain.community.service import badges
from momentum_domain.config import Settings, get_settings
from momentum_domain.generation.events import StepsReady
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.queue import RUN_GENERATION_STEP, Enqueuer, create_broker
from momentum_domain.kit.redis_clients import async_redis
from momentum_domain.kit.resilience import CircuitBreaker
from momentum_domain.kit.storage import create_storage
from momentum_domain.kit.telemetry import setup_telemetry
from momentum_domain.kit.unit_of_work import Handlers, bind_handlers
from momentum_domain.learning.events import LessonCompleted
from momentum_domain.learning.service import learning
from momentum_domain.users.events import SessionEnded, UserChanged

API_DESCRIPTION = """Momentum's REST API: the course catalog, learning and progress, content
management, AI course generation, payments and operations.

Authenticate with `Authorization: Bearer <access token>`: a Cognito token in production, or one
from `POST /auth/sign-in` on the built-in identity provider of the embedded setup. Errors are
RFC 9457 problem details (`application/problem+json`)."""


def tune_garbage_collector() -> None:
    """Collections of the oldest generation walk every object the process holds (the ORM's
    registries, the OpenAPI schema), pausing all requests. Freeze what start-up made, so
    collections skip it. (Larger young generations would collect less often but pause longer.)"""
    gc.collect()
    gc.freeze()


def _identity(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    autocommit_sessions: async_sessionmaker[AsyncSession],
    redis_url: str,
) -> tuple[Identity, SigningKey | None]:
    """Cognito's tokens when a JWKS URL is set; else the API's own identity provider, whose
    signing key is returned (its sign-in routes are mounted)."""
    signing_key = None
    key_source: KeySource
    if settings.auth_jwks_url:
        key_source = RemoteKeySource(settings.auth_jwks_url)
    else:
        signing_key = load_or_create(settings.data_dir / "identity" / "signing-key.pem")
        key_source = StaticKeySource({"keys": [signing_key.public_jwk]})
    verifier = TokenVerifier(
        key_source, issuer=settings.auth_issuer, audience=settings.auth_audience
    )
    identity = Identity(
        settings,
        verifier,
        sessions,
        autocommit_sessions,
        signing_key,
        announcements=Redis.from_url(redis_url, socket_connect_timeout=1.0),
        userinfo=(
            UserInfoClient(settings.auth_userinfo_url)
            if settings.auth_jwks_url and settings.auth_userinfo_url
            else None
        ),
    )

    return identity, signing_key


def _handlers(catalog_cache: ResponseCache, identity: Identity, enqueuer: Enqueuer) -> Handlers:
    """What follows a commit in this process, whichever use case committed; and the reactions
    that take part in another domain's unit of work."""
    handlers = Handlers()
    handlers.on(CatalogChanged, lambda _: catalog_cache.invalidate())
    handlers.on(UserChanged, lambda changed: identity.forget(changed.user_id))
    handlers.on(SessionEnded, lambda ended: identity.end_session(ended.session_id))
    handlers.within(LessonCompleted, badges.on_lesson_completed)
    handlers.within(CoursePurchased, learning.on_course_purchased)
    handlers.on(
        StepsReady, lambda ready: enqueuer.send_after_commit(RUN_GENERATION_STEP, *ready.step_ids)
    )
    return handlers


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Momentum API",
        version="1.0.0",
        description=API_DESCRIPTION,
        path="/schema",
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
        render_plugins=[ScalarRenderPlugin()],
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    telemetry = setup_telemetry(settings, "momentum-api")
    tracing = telemetry.tracer_provider is not None
    engine = create_engine(settings, application_name=f"{settings.service_name}-api")
    sessions = create_sessionmaker(engine)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    autocommit_sessions = create_sessionmaker(autocommit)
    # Both kinds of session write audit entries (admin writes, sign-in events).
    audit_sink = create_audit_sink(settings)
    bind_audit_sink(sessions, audit_sink)
    bind_audit_sink(autocommit_sessions, audit_sink)
    redis_url = settings.redis_url or "redis://127.0.0.1:6379/0"
    # One retry: a connection a Redis restart killed is replaced at once, and a request never
    # waits out a longer backoff (the breaker below covers an outage).
    redis = async_redis(redis_url, retries=1, socket_timeout=1.0, socket_connect_timeout=1.0)

    # One breaker for every Redis use: when Redis is down, stop waiting on it for a while.
    redis_breaker = CircuitBreaker("redis", failure_threshold=1, reset_after=2.0)

    identity, signing_key = _identity(settings, sessions, autocommit_sessions, redis_url)

    route_handlers: list[type] = [c for group in ROUTE_GROUPS.values() for c in group]
    if signing_key is not None:
        route_handlers.append(LocalIdentityController)

    # An enqueue that fails is left to the sweeper: a request does not wait out a backoff.
    broker = create_broker(settings, retries=1)
    enqueuer = Enqueuer(broker)
    stripe_gateway = StripeGateway(settings)
    catalog_cache = ResponseCache(
        redis, redis_breaker, namespace="catalog", ttl=settings.cache_ttl_seconds
    )

    for factory in (sessions, autocommit_sessions):
        bind_handlers(factory, _handlers(catalog_cache, identity, enqueuer))

    async def close_connections() -> None:
        await identity.aclose()
        broker.close()
        await stripe_gateway.aclose()
        await redis.aclose()
        await engine.dispose()
        # Off the loop: the sink's thread may still be sending the last entries.
        await asyncio.to_thread(audit_sink.close, 10.0)
        telemetry.flush()  # the process exits next: send the last spans and metrics

    database = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_maker=sessions,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        create_all=False,
    )
    run_effects_after_requests(database)
    plugins: list[PluginProtocol] = [SQLAlchemyPlugin(config=database)]
    if tracing:
        # One span per request: the per-message receive/send spans cost more than they tell.
        # With tracing off there is no middleware at all: even a no-op span costs every request.
        plugins.append(
            OpenTelemetryPlugin(
                OpenTelemetryConfig(exclude=["/health"], exclude_spans=["receive", "send"])
            )
        )

    app = Litestar(
        route_handlers=route_handlers,
        dependencies=dependencies,
        state=State(
            {
                "settings": settings,
                "sessions": sessions,
                "autocommit_sessions": autocommit_sessions,
                "redis": redis,
                "identity": identity,
                "catalog_cache": catalog_cache,
                "request_limiter": RequestLimiter(redis, redis_breaker, settings),
                "storage": create_storage(settings),
                "media_links": MediaLinks.from_settings(settings),
                "stripe_gateway": stripe_gateway,
                "audit_sink": audit_sink,
                "signin_limiter": SigninThrottle.from_settings(redis, redis_breaker, settings),
            }
        ),
        plugins=plugins,
        # Hostile text is refused before anything reads it; then authentication, so the rate
        # limiter can count per user.
        middleware=[
            InputGuardMiddleware(),
            DefineMiddleware(BearerTokenMiddleware, exclude=["^/schema", "^/health"]),
            RateLimitMiddleware(),
        ],
        exception_handlers=exception_handlers,
        # Logging is the process's (momentum_domain.kit.logging_setup), not reconfigured by the app.
        logging_config=None,
        request_max_body_size=settings.api_max_body_bytes,
        cors_config=CORSConfig(allow_origins=settings.cors_origins)
        if settings.cors_origins
        else None,
        openapi_config=_openapi_config(),
        on_startup=[tune_garbage_collector, identity.start_listening],
        on_shutdown=[close_connections],
    )
    document_problems(app)
    # Around everything the app runs (its tracing middleware included), so every request is
    # logged once with the status the client got, even one no route matched.
    app.asgi_handler = AccessLog(
        SecurityHeaders(HeadAsGet(app.asgi_handler), settings.api_trusted_proxies)
    )
    if telemetry.meter_provider is not None:
        app.asgi_handler = RequestMetrics(
            app.asgi_handler, telemetry.meter_provider.get_meter("momentum_api")
        )
    return app
