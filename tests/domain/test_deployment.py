"""The start-up check: a service that cannot work refuses to start, in one line, naming why."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from momentum_domain.config import Settings
from momentum_domain.deployment import SERVICES, deployment_problems

PROD_API = {
    "env": "prod",
    "redis_url": "rediss://cache.example:6379/0",
    "database_url": "postgresql://momentum_app@db.example/momentum",
    "auth_jwks_url": "https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json",
    "auth_userinfo_url": "https://momentum-prod.auth.us-east-1.amazoncognito.com/oauth2/userInfo",
    "stripe_api_key": "sk_live_51PcJ2xKq8yQbN3vT0aRf9LmW2sH7dE4uZ1oXyV6cB8nM5kJ3gF0pC",
    "stripe_webhook_secret": "whsec_7b1f0c2d9e8a4b6c5d3e2f1a0b9c8d7e",
    "stripe_price_premium_monthly": "price_1QpRdPremMonthly9aBf4Qs",
    "stripe_price_premium_yearly": "price_1QpRdPremYearly2tLz8Wn",
    "frontend_url": "https://app.momentum.example",
    "video_provider": "heygen",
    "heygen_webhook_secret": "wh_sec_3c9b0f7e1d2a4c8b",
    "api_trusted_proxies": ["10.30.0.0/16"],
}


def test_the_embedded_setup_starts_every_service() -> None:
    for service in SERVICES:
        assert deployment_problems(Settings(env="dev"), service) == []


def test_a_complete_production_api_configuration_passes() -> None:
    assert deployment_problems(Settings(**PROD_API), "api") == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stripe_api_key": "sk_test_momentum_local"}, "MOMENTUM_STRIPE_API_KEY is the embedded"),
        ({"stripe_api_key": "sk_test_51PcJ2xKq8yQbN3vT0aRf9"}, "must start with sk_live_"),
        ({"stripe_webhook_secret": "whsec_REPLACE_ME"}, "MOMENTUM_STRIPE_WEBHOOK_SECRET looks"),
        ({"stripe_price_premium_monthly": "price_premium_monthly"}, "PRICE_PREMIUM_MONTHLY is"),
        ({"frontend_url": "http://localhost:3000"}, "MOMENTUM_FRONTEND_URL must be"),
        ({"heygen_webhook_secret": ""}, "MOMENTUM_HEYGEN_WEBHOOK_SECRET is not set"),
        ({"auth_jwks_url": ""}, "MOMENTUM_AUTH_JWKS_URL is not set"),
        ({"api_trusted_proxies": []}, "MOMENTUM_API_TRUSTED_PROXIES is not set"),
        ({"database_url": "postgresql://db.example/momentum"}, "DATABASE_SECRET_ARN (or a"),
        ({"auth_userinfo_url": ""}, "MOMENTUM_AUTH_USERINFO_URL is not set"),
    ],
)
def test_production_api_refuses_placeholders(change: dict[str, str], problem: str) -> None:
    problems = deployment_problems(Settings(**{**PROD_API, **change}), "api")
    assert any(problem in p for p in problems), problems


def test_staging_accepts_stripe_test_keys() -> None:
    settings = Settings(**{**PROD_API, "env": "staging", "stripe_api_key": "sk_test_51PcJ2x"})
    assert deployment_problems(settings, "api") == []


def test_an_unpriced_model_is_refused_where_it_costs_money() -> None:
    settings = Settings(
        env="staging",
        redis_url="redis://r",
        database_url="postgresql://d/m",
        llm_provider="bedrock",
        llm_model_id="us.meta.llama3-3-70b-instruct-v1:0",
        api_public_url="https://api.momentum.example",
        notify_backend="aws",
        ses_sender="no-reply@momentum.example",
        sns_topic_arn="arn:aws:sns:us-east-1:222222222222:momentum-staging-notifications",
        database_secret_arn="arn:aws:secretsmanager:us-east-1:222222222222:secret:app-Ab12Cd",
    )
    assert deployment_problems(settings, "generator") == [
        "model us.meta.llama3-3-70b-instruct-v1:0 has no price in MOMENTUM_LLM_PRICES"
    ]
    priced = settings.model_copy(update={"llm_model_id": "us.amazon.nova-lite-v1:0"})
    assert deployment_problems(priced, "generator") == []
    loopback = priced.model_copy(update={"api_public_url": ""})
    assert deployment_problems(loopback, "generator") == [
        "MOMENTUM_API_PUBLIC_URL must be the API's https URL (links in notifications)"
    ]


def test_a_provider_missing_its_settings_is_named_in_any_environment() -> None:
    settings = Settings(env="dev", video_provider="heygen", heygen_api_key="sk_V2_hgu_k")
    assert deployment_problems(settings, "video-worker") == [
        "MOMENTUM_HEYGEN_AVATAR_ID is not set",
        "MOMENTUM_HEYGEN_VOICE_ID is not set",
    ]
    aws = Settings(env="dev", notify_backend="aws", storage_backend="s3")
    assert deployment_problems(aws, "generator") == [
        "storage s3 needs MOMENTUM_STORAGE_BUCKET",
        "notifications aws needs MOMENTUM_SES_SENDER",
        "notifications aws needs MOMENTUM_SNS_TOPIC_ARN",
    ]


@pytest.mark.parametrize(
    ("module", "service"),
    [
        ("momentum_api", "api"),
        ("momentum_generator", "generator"),
        ("momentum_video_worker", "video-worker"),
    ],
)
def test_a_service_process_refuses_to_start_with_one_line(module: str, service: str) -> None:
    """The real entry point, as the container runs it, in prod with the embedded defaults."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("MOMENTUM_")
    }
    environment |= {
        "MOMENTUM_ENV": "prod",
        "MOMENTUM_VIDEO_PROVIDER": "heygen",
        "MOMENTUM_LLM_PROVIDER": "bedrock",
        "MOMENTUM_LLM_MODEL_ID": "us.meta.llama3-3-70b-instruct-v1:0",
    }
    finished = subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 78, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith(f"momentum-{service} cannot start in prod: ")
    assert "MOMENTUM_REDIS_URL is not set" in lines[0]
