"""The application's metrics, in one table: the code that emits them creates its instruments
from it, and the Pulumi program (infra/) takes from it the names its alarms, scaling policies
and dashboard read, and the collector's CloudWatch configuration.

Each service exports over OTLP to its task's collector, whose EMF exporter publishes every
metric here in the namespace ``Momentum/<environment>`` under its OpenTelemetry name, with
exactly ``dimensions`` as its CloudWatch dimensions (``attributes`` unless it says otherwise;
most have none; the alarms and scaling policies query each metric with exactly its
dimensions). A producer attaches no other attribute, and each dimension takes a few values
only (every combination is a CloudWatch metric, billed). Attributes that are not dimensions
stay in the EMF log events, for CloudWatch Logs Insights.

Pure data: the Pulumi program imports it without OpenTelemetry or a database driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Service = Literal["api", "generator", "video-worker"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    # UCUM, as OpenTelemetry expects ("s", or a count of things in braces).
    unit: str
    # The CloudWatch unit the collector publishes it with (CloudWatch knows no UCUM).
    cloudwatch_unit: str
    description: str
    # The service whose processes emit it.
    service: Service
    attributes: tuple[str, ...] = ()
    # The attributes published as CloudWatch dimensions, when not all of them (None: all).
    dimensions: tuple[str, ...] | None = None

    @property
    def cloudwatch_dimensions(self) -> tuple[str, ...]:
        return self.attributes if self.dimensions is None else self.dimensions


GENERATION_QUEUE_DEPTH = MetricSpec(
    "generation.queue_depth",
    "gauge",
    "{step}",
    "Count",
    "Generation steps queued or running, across all jobs",
    "generator",
)
GENERATION_JOBS_FINISHED = MetricSpec(
    "generation.jobs.finished",
    "counter",
    "{job}",
    "Count",
    "Generation jobs that reached an outcome, succeeded or failed (not cancelled)",
    "generator",
)
GENERATION_JOBS_FAILED = MetricSpec(
    "generation.jobs.failed",
    "counter",
    "{job}",
    "Count",
    "Generation jobs that failed",
    "generator",
)
GENERATION_COST = MetricSpec(
    "generation.cost_usd",
    "counter",
    "{USD}",
    "None",
    "What the model calls of generation steps cost, in US dollars",
    "generator",
)
GENERATION_TOKENS = MetricSpec(
    "generation.tokens",
    "counter",
    "{token}",
    "Count",
    "Tokens the model calls of generation steps read (direction=input) and wrote (output)",
    "generator",
    ("direction",),
)
GENERATION_PROVIDER_THROTTLES = MetricSpec(
    "generation.provider.throttles",
    "counter",
    "{call}",
    "Count",
    "Model calls the provider throttled, or that the shared token budget gave up on",
    "generator",
    ("provider",),
)
GENERATION_PROVIDER_BREAKER_OPEN = MetricSpec(
    "generation.provider.breaker_open",
    "gauge",
    "1",
    "None",
    "1 while the model provider's circuit breaker is open (calls fail fast), else 0",
    "generator",
    ("provider",),
)
GENERATION_BROKER_QUEUE_DEPTH = MetricSpec(
    "generation.broker.queue_depth",
    "gauge",
    "{message}",
    "Count",
    "Messages waiting in the broker's generation queue (ready or delayed)",
    "generator",
)
GENERATION_BROKER_DEAD_LETTERS = MetricSpec(
    "generation.broker.dead_letters",
    "gauge",
    "{message}",
    "Count",
    "Messages in the broker's generation dead-letter queue (kept for a day)",
    "generator",
)
NOTIFICATIONS_OUTBOX_PENDING = MetricSpec(
    "notifications.outbox_pending",
    "gauge",
    "{message}",
    "Count",
    "Notifications in the outbox not sent yet",
    "generator",
)
GENERATOR_HEARTBEAT = MetricSpec(
    "generator.heartbeat",
    "gauge",
    "{worker}",
    "Count",
    "1 while a generator's sweeper ticks (missing when none does)",
    "generator",
)
VIDEO_WORKER_HEARTBEAT = MetricSpec(
    "video_worker.heartbeat",
    "gauge",
    "{worker}",
    "Count",
    "1 while a video worker's loop ticks (missing when none does)",
    "video-worker",
)
VIDEOS_PENDING = MetricSpec(
    "videos.pending",
    "gauge",
    "{video}",
    "Count",
    "Videos waiting to be submitted",
    "video-worker",
)
VIDEOS_IN_FLIGHT = MetricSpec(
    "videos.in_flight",
    "gauge",
    "{video}",
    "Count",
    "Videos at the provider or downloading",
    "video-worker",
)
VIDEOS_COMPLETED = MetricSpec(
    "videos.completed", "gauge", "{video}", "Count", "Videos stored", "video-worker"
)
VIDEOS_FAILED = MetricSpec(
    "videos.failed",
    "gauge",
    "{video}",
    "Count",
    "Videos that ran out of attempts",
    "video-worker",
)
VIDEOS_OLDEST_PENDING_AGE = MetricSpec(
    "videos.oldest_pending_age_seconds",
    "gauge",
    "s",
    "Seconds",
    "Age of the oldest pending video",
    "video-worker",
)
HTTP_SERVER_REQUEST_DURATION = MetricSpec(
    # OpenTelemetry's semantic conventions for HTTP servers.
    "http.server.request.duration",
    "histogram",
    "s",
    "Seconds",
    "API requests and how long they took, by route template, method and status. Published to "
    "CloudWatch without dimensions (rate and latency of all requests: one metric, not one per "
    "route and status); per route in the metrics log group, through CloudWatch Logs Insights",
    "api",
    ("http.route", "http.request.method", "http.response.status_code"),
    dimensions=(),
)

METRICS: tuple[MetricSpec, ...] = (
    GENERATION_QUEUE_DEPTH,
    GENERATION_JOBS_FINISHED,
    GENERATION_JOBS_FAILED,
    GENERATION_COST,
    GENERATION_TOKENS,
    GENERATION_PROVIDER_THROTTLES,
    GENERATION_PROVIDER_BREAKER_OPEN,
    GENERATION_BROKER_QUEUE_DEPTH,
    GENERATION_BROKER_DEAD_LETTERS,
    NOTIFICATIONS_OUTBOX_PENDING,
    GENERATOR_HEARTBEAT,
    VIDEO_WORKER_HEARTBEAT,
    VIDEOS_PENDING,
    VIDEOS_IN_FLIGHT,
    VIDEOS_COMPLETED,
    VIDEOS_FAILED,
    VIDEOS_OLDEST_PENDING_AGE,
    HTTP_SERVER_REQUEST_DURATION,
)
BY_NAME = {metric.name: metric for metric in METRICS}

__all__ = ["BY_NAME", "METRICS", "MetricSpec"]
