"""Every setting of the platform, read once from the environment (prefix ``MOMENTUM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

REPO_ROOT = Path(__file__).resolve().parents[4]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "staging", "prod"] = "dev"
    service_name: str = "momentum"
    # The deployed image tag (the task definition sets it); reported by /health/live and beats.
    version: str = "dev"
    data_dir: Path = REPO_ROOT / ".momentum"

    # Empty means "start the embedded server" (see momentum_dev.embedded).
    database_url: str = ""
    # On ECS the managed secret holds only user and password: the URL is assembled from pieces.
    database_host: str = ""
    database_port: int = 5432
    database_name: str = "momentum"
    database_user: str = ""
    database_password: str = ""
    # On AWS the services log in with this Secrets Manager secret (JSON username and password),
    # read at each new connection and cached this long: rotation needs no restart. It replaces
    # the URL's user and password.
    database_secret_arn: str = ""
    database_secret_cache_seconds: float = Field(default=60.0, ge=0)
    # The role the services log in as, which the migration command provisions (DML only, not
    # the owner) when given its password; the password then lives in the secret above.
    database_app_user: str = "momentum_app"
    database_app_password: str = ""
    # Connections this old are replaced when next checked out.
    database_pool_recycle_seconds: float = Field(default=1800.0, gt=0)
    # At least a worker's usual concurrency: overflow connections are opened and closed per use.
    database_pool_size: int = 20
    database_max_overflow: int = 10
    redis_url: str = ""

    # Identity. An empty JWKS URL selects the built-in local identity provider.
    auth_jwks_url: str = ""
    # Cognito's OAuth2 userInfo endpoint (https://<domain>/oauth2/userInfo): where the API learns
    # a new user's email, which Cognito access tokens do not carry. Empty: local identity.
    auth_userinfo_url: str = ""
    auth_issuer: str = "momentum-local"
    auth_audience: str = "momentum-api"
    auth_groups_claim: str = "cognito:groups"
    auth_access_token_ttl_seconds: int = 900
    auth_refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # Failed sign-ins (momentum_api.ratelimit.SigninThrottle): per account and address, free
    # failures then a doubling wait up to the maximum; per address, at most max_failures over
    # all accounts within the window. No account is ever locked.
    auth_signin_free_failures: int = 3
    auth_signin_max_backoff_seconds: int = 900
    auth_signin_max_failures: int = 50
    auth_signin_failure_window_seconds: int = 900

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_public_url: str = ""
    api_max_body_bytes: int = 1024 * 1024
    # Networks of the proxies in front of the API (JSON list of CIDRs; on AWS the VPC's, where
    # the load balancer lives). Only a peer in them is believed about X-Forwarded-For.
    api_trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Longer than the load balancer's idle timeout, or it reuses connections the API has just
    # closed (502s).
    api_keep_alive_seconds: int = Field(default=75, gt=0)
    cors_origins: list[str] = Field(default_factory=list)
    # "N/S": N requests per S seconds, per signed-in user or per client IP.
    rate_limit_default: str = "600/60"
    rate_limit_admin: str = "120/60"
    rate_limit_signin: str = "20/60"
    cache_ttl_seconds: int = 30

    # Object storage: a local folder (embedded) or S3.
    storage_backend: Literal["local", "s3"] = "local"
    storage_bucket: str = ""
    storage_local_dir: Path | None = None  # default: <data_dir>/media
    aws_region: str = "us-east-1"
    s3_endpoint_url: str | None = None  # a test double such as moto's server
    # moto's server in tests: every AWS client the platform builds (S3 too, unless
    # s3_endpoint_url is set). Unset in production.
    aws_endpoint_url: str | None = None
    # How long a signed media link (a lesson's video, a reference PDF) works.
    media_url_ttl_seconds: int = Field(default=900, gt=0)
    # The HMAC key of /media links on local storage. Empty: a random key kept in the data
    # folder, shared by every API process on the machine (S3 storage hands out presigned URLs).
    media_signing_secret: str = ""

    # LLM providers: "offline" (embedded default), "bedrock" or "openai".
    llm_provider: Literal["offline", "bedrock", "openai"] = "offline"
    llm_model_id: str = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    llm_openai_base_url: str = "http://127.0.0.1:11434/v1"
    llm_openai_api_key: str = ""
    llm_timeout_seconds: float = 120.0
    llm_max_attempts: int = 4
    llm_tokens_per_minute: int = 400_000
    # USD per 1,000 tokens: model id -> [input, output].
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "anthropic.claude-3-5-sonnet-20240620-v1:0": (0.003, 0.015),
            "anthropic.claude-3-haiku-20240307-v1:0": (0.00025, 0.00125),
            "anthropic.claude-sonnet-4-20250514-v1:0": (0.003, 0.015),
            "amazon.nova-lite-v1:0": (0.00006, 0.00024),
            "offline": (0.0, 0.0),
        }
    )
    image_model_id: str = "amazon.titan-image-generator-v2:0"
    # Seconds the offline provider waits per call purpose, e.g. {"lesson": 1.0}: benchmarks
    # and tests use it to stand in for a real model's latency.
    llm_offline_latency: dict[str, float] = Field(default_factory=dict)

    # Course generation
    generation_jobs_per_admin_per_day: int = 10
    generation_lesson_concurrency_per_job: int = 10
    generation_lesson_concurrency_global: int = 20
    generation_job_budget_usd: float = 5.0
    # A generator holds each step it runs with a lease it renews every few seconds; a dead
    # worker's steps are re-run once their leases end (a sweep after). The timeout only bounds
    # a step that hangs in a live worker.
    generation_step_lease_seconds: float = Field(default=15.0, gt=0)
    generation_step_lease_renew_seconds: float = Field(default=5.0, gt=0)
    generation_step_timeout_seconds: int = 600
    generation_sweep_interval_seconds: int = 10
    # A step QUEUED this long without starting has lost its message; the sweeper re-sends it.
    generation_queued_timeout_seconds: int = 60
    generation_script_words_per_minute: int = 150
    generation_script_target_minutes: float = 3.0
    reference_pdf_max_bytes: int = 20 * 1024 * 1024

    # Video
    video_provider: Literal["local", "heygen"] = "local"
    # The local renderer's voice: espeak-ng where installed, or Amazon Polly on AWS.
    video_narration: Literal["espeak", "polly"] = "espeak"
    polly_voice_id: str = "Joanna"
    heygen_api_key: str = ""
    heygen_base_url: str = "https://api.heygen.com"
    heygen_avatar_id: str = ""
    heygen_voice_id: str = ""
    heygen_webhook_secret: str = ""
    heygen_max_concurrent_videos: int = 3
    video_poll_interval_seconds: float = 60.0
    # A video worker renews its leases every few seconds; a dead worker's leases run out soon
    # after, and another replica takes its videos over and frees its provider slots.
    video_lease_seconds: float = Field(default=20.0, gt=0)
    video_lease_renew_seconds: float = Field(default=5.0, gt=0)
    video_max_attempts: int = 3

    # Payments (Stripe). The API base can point at a local fake that speaks Stripe's wire format.
    stripe_api_key: str = "sk_test_momentum_local"
    stripe_webhook_secret: str = "whsec_momentum_local"  # noqa: S105 - the embedded default
    stripe_api_base: str | None = None
    stripe_webhook_tolerance_seconds: int = 300
    stripe_price_premium_monthly: str = "price_premium_monthly"
    stripe_price_premium_yearly: str = "price_premium_yearly"
    # What those prices charge, shown by GET /plans (Stripe's prices must say the same).
    premium_monthly_cents: int = Field(default=1200, ge=0)
    premium_yearly_cents: int = Field(default=9900, ge=0)
    premium_currency: str = Field(default="usd", min_length=3, max_length=3)
    # Whether premium members may open every day of a daily course at once (the schedule).
    schedule_premium_unlocks_all: bool = False
    frontend_url: str = "http://localhost:3000"

    # Notifications: "outbox" (embedded; readable through the admin API) or "aws" (SES + SNS).
    notify_backend: Literal["outbox", "aws"] = "outbox"
    ses_sender: str = ""
    sns_topic_arn: str = ""
    # The relay (in the generator worker): messages per pass (sent side by side, each result
    # written on a pooled connection), how long a claimed message is leased to the relay
    # sending it, and retries with exponential backoff and jitter.
    notify_relay_batch: int = Field(default=10, gt=0)
    notify_lease_seconds: int = Field(default=300, gt=0)
    notify_max_attempts: int = Field(default=8, gt=0)
    notify_retry_base_seconds: float = Field(default=30.0, gt=0)
    notify_retry_max_seconds: float = Field(default=3600.0, gt=0)

    # Where committed audit entries are copied outside the database (momentum_domain.audit.sink):
    # "log" (the momentum.audit logger) or "cloudwatch" (this log group, its own retention).
    audit_sink: Literal["log", "cloudwatch"] = "log"
    audit_log_group: str = ""

    # Telemetry: "none", "console" or "otlp".
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str = "http://localhost:4317"
    # How often metrics are exported (CloudWatch's standard resolution is one minute).
    otel_metric_export_interval_seconds: float = Field(default=60.0, gt=0)
    # The share of root traces kept (parent-based: a child follows its parent's decision).
    otel_trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # Log lines: "text" for people at a terminal, "json" (with trace and request ids) for
    # CloudWatch Logs.
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url.removeprefix(prefix)
        return url

    @model_validator(mode="after")
    def _assemble_database_url(self) -> Settings:
        if not self.database_url and self.database_host:
            url = URL.create(
                "postgresql+asyncpg",
                username=self.database_user or None,
                password=self.database_password or None,  # escaped by URL.create
                host=self.database_host,
                port=self.database_port,
                database=self.database_name,
            )
            self.database_url = url.render_as_string(hide_password=False)
        return self

    @property
    def media_dir(self) -> Path:
        return self.storage_local_dir or self.data_dir / "media"

    @property
    def public_url(self) -> str:
        return self.api_public_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
