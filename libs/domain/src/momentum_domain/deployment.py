"""The start-up check: what each service needs from its configuration before it serves anything.

A service that would fail later (a provider missing a setting, a model without a price, a
placeholder secret) refuses to start with one line naming every problem, instead of crash-looping
or running wrong. Providers are checked always; placeholders and prices are the strict part,
enforced in staging and prod, and by the deployment contract test for every stack.
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse

from sqlalchemy.engine import make_url

from momentum_domain.config import Settings
from momentum_domain.generation.pricing import price_of

SERVICES = ("api", "generator", "video-worker")
STRICT_ENVIRONMENTS = ("staging", "prod")
# Words operators type into a secret they mean to fill in later.
_PLACEHOLDER_WORDS = ("placeholder", "changeme", "change-me", "replace", "todo", "xxxx", "dummy")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1")  # noqa: S104 - names, not binds


class DeploymentError(RuntimeError):
    """The configuration cannot run this service; the message is one line."""


def deployment_problems(
    settings: Settings, service: str, *, strict: bool | None = None
) -> list[str]:
    """Every reason ``service`` cannot start with ``settings``, as ``MOMENTUM_*`` names."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
    strict = settings.env in STRICT_ENVIRONMENTS if strict is None else strict
    problems: list[str] = []

    def need(condition: bool, problem: str) -> None:
        if not condition:
            problems.append(problem)

    def value_of(name: str, *, prefixes: tuple[str, ...] = ()) -> None:
        value = str(getattr(settings, name))
        variable = _variable(name)
        placeholder = placeholder_problem(settings, name)
        if not value:
            problems.append(f"{variable} is not set")
        elif strict and placeholder:
            problems.append(placeholder)
        elif prefixes and not value.startswith(prefixes):
            problems.append(f"{variable} must start with {' or '.join(prefixes)}")

    if strict:
        need(
            bool(settings.database_url),
            "MOMENTUM_DATABASE_URL or MOMENTUM_DATABASE_HOST is not set",
        )
        need(bool(settings.redis_url), "MOMENTUM_REDIS_URL is not set")
        login = make_url(settings.database_url).username if settings.database_url else None
        need(
            bool(settings.database_secret_arn or login),
            "MOMENTUM_DATABASE_SECRET_ARN (or a database user) is not set",
        )
    if settings.storage_backend == "s3":
        need(bool(settings.storage_bucket), "storage s3 needs MOMENTUM_STORAGE_BUCKET")

    if service == "api":
        if strict:
            need(bool(settings.auth_jwks_url), "MOMENTUM_AUTH_JWKS_URL is not set (local identity)")
            # Behind the load balancer, without them every caller is the balancer's address.
            need(
                bool(settings.api_trusted_proxies),
                "MOMENTUM_API_TRUSTED_PROXIES is not set (all clients would share one address)",
            )
            # Cognito access tokens carry no email: a new user's comes from userInfo.
            need(
                bool(settings.auth_userinfo_url),
                "MOMENTUM_AUTH_USERINFO_URL is not set (new Cognito users would have no email)",
            )
            live = settings.env == "prod"
            value_of(
                "stripe_api_key", prefixes=("sk_live_", "rk_live_") if live else ("sk_", "rk_")
            )
            value_of("stripe_webhook_secret", prefixes=("whsec_",))
            value_of("stripe_price_premium_monthly", prefixes=("price_",))
            value_of("stripe_price_premium_yearly", prefixes=("price_",))
            url = urlparse(settings.frontend_url)
            need(
                url.scheme == "https" and url.hostname not in _LOCAL_HOSTS,
                f"MOMENTUM_FRONTEND_URL must be an https URL, not {settings.frontend_url}",
            )
        if settings.video_provider == "heygen":
            # The API receives HeyGen's signed webhooks: without the secret every one is a 401.
            value_of("heygen_webhook_secret")

    if service == "generator":
        # The outbox would fill with notices nobody sends.
        need(not strict or settings.notify_backend == "aws", "MOMENTUM_NOTIFY_BACKEND is not aws")
        # Notifications link to the draft: the API's public address, not the default loopback.
        need(
            not strict or settings.api_public_url.startswith("https://"),
            "MOMENTUM_API_PUBLIC_URL must be the API's https URL (links in notifications)",
        )
        if settings.llm_provider == "offline":
            need(not strict, "MOMENTUM_LLM_PROVIDER is offline (placeholder content)")
        else:
            if settings.llm_provider == "openai":
                value_of("llm_openai_api_key")
            model = settings.llm_model_id
            need(
                not strict or price_of(model, settings.llm_prices) is not None,
                f"model {model} has no price in MOMENTUM_LLM_PRICES",
            )
        if settings.llm_provider == "bedrock":
            need(bool(settings.image_model_id), "MOMENTUM_IMAGE_MODEL_ID is not set")

    if service == "video-worker" and settings.video_provider == "heygen":
        for name in ("heygen_api_key", "heygen_avatar_id", "heygen_voice_id"):
            value_of(name)

    # The outbox relay runs in the generator.
    if service == "generator" and settings.notify_backend == "aws":
        need(bool(settings.ses_sender), "notifications aws needs MOMENTUM_SES_SENDER")
        need(bool(settings.sns_topic_arn), "notifications aws needs MOMENTUM_SNS_TOPIC_ARN")
    return problems


def placeholder_problem(settings: Settings, name: str) -> str | None:
    """Why the setting ``name`` is not a real value (unset, the embedded default, or a word
    operators type into a secret to fill in later), as one phrase naming its variable; None
    when it may be real."""
    value = str(getattr(settings, name) or "")
    variable = _variable(name)
    if not value:
        return f"{variable} is not set"
    if value == str(getattr(Settings.model_construct(), name)):
        return f"{variable} is the embedded placeholder"
    if any(word in value.lower() for word in _PLACEHOLDER_WORDS):
        return f"{variable} looks like a placeholder"
    return None


def require_deployable(settings: Settings, service: str) -> None:
    problems = deployment_problems(settings, service)
    if problems:
        raise DeploymentError(
            f"momentum-{service} cannot start in {settings.env}: " + "; ".join(problems)
        )


def exit_unless_deployable(settings: Settings, service: str) -> None:
    """For a service's ``main``: print the one line and exit 78 (EX_CONFIG) on a bad setup."""
    try:
        require_deployable(settings, service)
    except DeploymentError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(78) from None


def _variable(name: str) -> str:
    return f"MOMENTUM_{name.upper()}"
