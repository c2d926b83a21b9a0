"""Every setting of the platform, read once from the environment (prefix ``MOMENTUM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[4]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "staging", "prod"] = "dev"
    service_name: str = "momentum"
    data_dir: Path = REPO_ROOT / ".momentum"

    # Empty means "start the embedded server" (see momentum_domain.embedded).
    database_url: str = ""
    database_pool_size: int = 10
    database_max_overflow: int = 10
    redis_url: str = ""

    # Identity. An empty JWKS URL selects the built-in local identity provider.
    auth_jwks_url: str = ""
    auth_issuer: str = "momentum-local"
    auth_audience: str = "momentum-api"
    auth_groups_claim: str = "cognito:groups"
    auth_access_token_ttl_seconds: int = 900
    auth_refresh_token_ttl_seconds: int = 30 * 24 * 3600
    auth_signin_max_failures: int = 5
    auth_signin_failure_window_seconds: int = 900

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_public_url: str = ""
    api_max_body_bytes: int = 1024 * 1024
    # Behind the ALB the client address is the last hop the balancer appends to X-Forwarded-For.
    api_trust_forwarded_for: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    # "N/S": N requests per S seconds, per signed-in user or per client IP.
    rate_limit_default: str = "600/60"
    rate_limit_admin: str = "120/60"
    rate_limit_signin: str = "20/60"
    cache_ttl_seconds: int = 30

    # Telemetry: "none", "console" or "otlp".
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str = "http://localhost:4317"

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url.removeprefix(prefix)
        return url

    @property
    def public_url(self) -> str:
        return self.api_public_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
