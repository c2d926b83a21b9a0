"""The generation worker: Dramatiq on the Redis broker, one asyncio loop for the async actors,
a task on that loop renewing the leases of the steps this worker runs, and a sweeper that
re-enqueues what lost messages or dead workers left behind. Stopping, it hands its steps back
at once instead of letting their leases run out."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import dramatiq
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.asyncio import AsyncIO
from opentelemetry import context as otel_context
from opentelemetry import propagate
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_domain.config import Settings
from momentum_domain.generation.service import generation
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.heartbeat import Heartbeat
from momentum_domain.kit.queue import GENERATION_QUEUE, RUN_GENERATION_STEP, Enqueuer, create_broker
from momentum_domain.kit.redis_clients import async_redis
from momentum_domain.kit.storage import create_storage
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.notifications.relay import OutboxRelay, RelayReport
from momentum_domain.notifications.service import create_sender
from momentum_generator.concurrency import RedisSemaphore
from momentum_generator.llm import LlmProvider, create_llm_provider
from momentum_generator.metrics import GenerationMetrics, broker_keys
from momentum_generator.pipeline import PipelineContext, StepRunner

logger = logging.getLogger(__name__)
ProviderFactory = Callable[[Settings, Redis], LlmProvider]


class Generator:
    """Everything a worker process needs, built lazily on the actors' event loop (asyncpg and
    redis.asyncio connections belong to the loop that made them)."""

    def __init__(
        self, settings: Settings, broker: RedisBroker, provider_factory: ProviderFactory
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.enqueuer = Enqueuer(broker)
        self._provider_factory = provider_factory
        # Built at start-up, so a worker missing a setting the sender needs fails at once;
        # None when notifications stay in the outbox (MOMENTUM_NOTIFY_BACKEND=outbox).
        self._sender = create_sender(settings)
        self._relay: OutboxRelay | None = None
        self._runner: StepRunner | None = None
        self._engine: AsyncEngine | None = None
        self._redis: Redis | None = None
        self.metrics = GenerationMetrics(
            settings.otel_metric_export_interval_seconds, broker_namespace=broker.namespace
        )
        self._heartbeat: Heartbeat | None = None
        # Names this process on the leases of the steps it runs.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lesson_slots: RedisSemaphore | None = None
        # The actors' tasks running now, and whether the worker is handing its steps back.
        self._tasks: set[asyncio.Task[None]] = set()
        self._handing_back = False
        self._unsent: set[uuid.UUID] = set()
        self.lease_keeper: Future[None] | None = None

    def runner(self) -> StepRunner:
        if self._runner is None:
            settings = self.settings
            self._engine = create_engine(settings, application_name="momentum-generator")
            self._redis = async_redis(settings.redis_url)
            self._lesson_slots = RedisSemaphore(
                self._redis,
                "generation:lesson-slots",
                limit=settings.generation_lesson_concurrency_global,
                lease_seconds=settings.generation_step_lease_seconds,
            )
            self._runner = StepRunner(
                PipelineContext(
                    settings=settings,
                    sessions=create_sessionmaker(self._engine),
                    llm=self._provider_factory(settings, self._redis),
                    storage=create_storage(settings),
                    lesson_slots=self._lesson_slots,
                    owner=self.owner,
                )
            )
        return self._runner

    async def run_step(self, step_id: str) -> None:
        if self._handing_back:  # stopping: for another worker
            await self.enqueuer.send_after_commit(RUN_GENERATION_STEP, step_id)
            return
        message = CurrentMessage.get_current_message()
        carrier = message.options.get("trace_context", {}) if message else {}
        token = otel_context.attach(propagate.extract(carrier))
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        # Run the first step this one unblocks right here (a day's script after its lesson,
        # the save after the last script) and enqueue the rest: no queue hop on the chain.
        # It is QUEUED in PostgreSQL like the others, so the sweeper covers a crash.
        pending = [uuid.UUID(step_id)]
        try:
            while pending:
                current, *others = pending
                await self.enqueuer.send_after_commit(RUN_GENERATION_STEP, *others)
                pending = await self.runner().run(current)
        except asyncio.CancelledError:
            if not self._handing_back:
                raise
            # Stopped by ``hand_back``, which sends these: the message itself is done with.
            self._unsent.update(pending)
        finally:
            self._tasks.discard(task)
            otel_context.detach(token)

    async def renew_leases(self) -> None:
        """Push back the leases of the steps and lesson slots this worker holds."""
        if self._runner is None:
            return
        assert self._lesson_slots is not None
        try:
            await self._lesson_slots.renew()
        except RedisError as exc:  # the slots' leases run out: at worst the cap is exceeded
            logger.warning("lesson slot leases not renewed: %s", exc)
        await self._runner.renew_leases()

    async def keep_leases(self) -> None:
        """Renew leases every few seconds until cancelled; a lease lasts several intervals, so
        a renewal or two may fail (a database blip) without losing a step."""
        interval = self.settings.generation_step_lease_renew_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew_leases()
            except Exception as exc:
                logger.warning("step leases not renewed: %s", exc)

    async def hand_back(self) -> None:
        """Stop running steps and give them back to the queue at once, for another worker:
        their model calls are cut short (a call made again costs less than a stalled job)."""
        self._handing_back = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._runner is None:
            return
        try:
            steps = set(await self._runner.hand_back()) | self._unsent
        except Exception as exc:  # the database is away: the sweeper takes them over instead
            logger.warning("steps not handed back, their leases will run out: %s", exc)
            return
        await self.enqueuer.send_after_commit(RUN_GENERATION_STEP, *steps)
        if steps:
            logger.info("handed back %d generation steps", len(steps))

    async def sweep(self) -> int:
        """One sweep, if no other worker swept within the interval (a Redis lock)."""
        runner = self.runner()
        assert self._redis is not None
        # On every worker, not locked.
        await self.metrics.refresh_if_due(runner.ctx.sessions, self._redis)
        interval = self.settings.generation_sweep_interval_seconds
        if not await self._redis.set("generation:sweep-lock", "1", nx=True, ex=interval):
            return 0
        ready, _, _ = broker_keys(self.broker.namespace)
        queue_idle = not await self._redis.llen(ready)
        async with transaction(runner.ctx.sessions) as session:
            resend = await generation.sweep(session, self.settings, queue_idle=queue_idle)
        for step_id in resend:
            await self.enqueuer.send_async(RUN_GENERATION_STEP, step_id)
        if resend:
            logger.warning("sweeper re-enqueued %d stuck generation steps", len(resend))
        return len(resend)

    async def heartbeat(self) -> None:
        """Tell the API (``/health/workers``) this worker is alive, at this version."""
        self.runner()
        assert self._redis is not None
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(
                self._redis,
                "generator",
                worker_id=f"{socket.gethostname()}:{os.getpid()}",
                version=self.settings.version,
            )
        await self._heartbeat.beat()

    @property
    def relays_notifications(self) -> bool:
        return self._sender is not None

    async def relay_notifications(self) -> RelayReport:
        """One pass of the outbox relay (SES and SNS); replicas share the work through the
        rows' leases, see momentum_domain.notifications.relay."""
        if self._sender is None:
            return RelayReport()
        if self._relay is None:
            self._relay = OutboxRelay(self.runner().ctx.sessions, self._sender, self.settings)
        return await self._relay.run_once()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._engine is not None:
            await self._engine.dispose()


def build(
    settings: Settings, provider_factory: ProviderFactory = create_llm_provider
) -> tuple[RedisBroker, Generator]:
    """A broker with the generation actors declared on it."""
    broker = create_broker(settings)
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    generator = Generator(settings, broker, provider_factory)

    async def run_generation_step(step_id: str) -> None:
        await generator.run_step(step_id)

    # No broker-level retries: the provider layer retries model calls, the runner records
    # failures on the step, and a failed job is retried by an admin from where it failed.
    # The time limit bounds a step that hangs in a live worker (whose leases never lapse): it
    # is cancelled, and taken over once its lease runs out.
    declare = dramatiq.actor(
        broker=broker,
        actor_name=RUN_GENERATION_STEP,
        queue_name=GENERATION_QUEUE,
        max_retries=0,
        time_limit=settings.generation_step_timeout_seconds * 1000,
    )
    declare(run_generation_step)
    return broker, generator


class Sweeper(threading.Thread):
    """Runs ``generator.sweep`` on the actors' loop every interval, and a pass of the
    notification relay whenever the last one has finished, until stopped. While Redis is
    unreachable it sweeps less and less often (up to once a minute) and says so once."""

    MAX_BACKOFF = 60.0

    def __init__(self, generator: Generator, health_file: Path | None) -> None:
        super().__init__(name="generation-sweeper", daemon=True)
        self._generator = generator
        self._health_file = health_file
        # Not ``_stop``: that would shadow the Thread method join() calls once the thread ended.
        self._stopping = threading.Event()
        self._relay_pass: Future[RelayReport] | None = None
        self._backoff = 0.0  # seconds between sweeps while Redis is unreachable
        self._next_sweep = 0.0

    def run(self) -> None:
        self._beat()
        # A short tick keeps the health file fresh; the Redis lock in ``sweep`` limits real
        # sweeps to one per interval across all workers.
        while not self._stopping.wait(timeout=5):
            loop_thread = get_event_loop_thread()
            if loop_thread is None:
                continue
            self._start_relay_pass(loop_thread)
            # First, so a slow sweep does not delay it; a beat itself never raises.
            loop_thread.run_coroutine(self._generator.heartbeat())
            if time.monotonic() >= self._next_sweep:
                self._sweep(loop_thread)
            self._beat()

    def _sweep(self, loop_thread: EventLoopThread) -> None:
        try:
            loop_thread.run_coroutine(self._generator.sweep())
        except RedisError as exc:
            if not self._backoff:
                logger.warning("Redis unreachable, generation sweeps back off: %s", exc)
            self._backoff = min(max(self._backoff * 2, 5.0), self.MAX_BACKOFF)
            self._next_sweep = time.monotonic() + self._backoff
            return
        except Exception:
            logger.exception("generation sweep failed")
        if self._backoff:
            logger.info("Redis reachable again, generation sweeps resume")
            self._backoff = 0.0

    def _beat(self) -> None:
        if self._health_file is not None:
            self._health_file.write_text(str(time.time()))

    def _start_relay_pass(self, loop_thread: EventLoopThread) -> None:
        # Not waited for: a slow SES or SNS must hold up neither the sweep nor the health
        # beat (a stale health file gets the task replaced). One pass at a time.
        if not self._generator.relays_notifications:
            return
        if self._relay_pass is not None and not self._relay_pass.done():
            return
        self._relay_pass = asyncio.run_coroutine_threadsafe(
            self._generator.relay_notifications(), loop_thread.loop
        )
        self._relay_pass.add_done_callback(_log_relay_failure)

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
        # Let a pass in flight record its results (each send is bounded by the sender's
        # timeouts): cut short, its messages would be sent again once their lease ends.
        if self._relay_pass is not None:
            try:
                self._relay_pass.result(timeout)
            except Exception:  # logged by _log_relay_failure; a timeout leaves it leased
                self._relay_pass.cancel()


def _log_relay_failure(done: Future[RelayReport]) -> None:
    if not done.cancelled() and done.exception() is not None:
        logger.error("notification relay pass failed", exc_info=done.exception())


def start_worker(
    settings: Settings,
    *,
    threads: int,
    provider_factory: ProviderFactory = create_llm_provider,
    health_file: Path | None = None,
) -> tuple[dramatiq.Worker, Generator, Sweeper]:
    broker, generator = build(settings, provider_factory)
    # An idle consumer polls Redis with backoff up to worker_timeout: a short one keeps the
    # hop from one step to the next at a few tens of milliseconds.
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=25)
    # No messages waiting in this process beyond those it runs: a killed worker strands only
    # steps it holds (re-run once their leases end), not QUEUED ones (found after a minute).
    worker.queue_prefetch = threads
    worker.start()
    loop_thread = get_event_loop_thread()
    assert loop_thread is not None
    generator.lease_keeper = asyncio.run_coroutine_threadsafe(
        generator.keep_leases(), loop_thread.loop
    )
    sweeper = Sweeper(generator, health_file)
    sweeper.start()
    return worker, generator, sweeper


def stop_worker(worker: dramatiq.Worker, generator: Generator, sweeper: Sweeper) -> None:
    """Stop at once (ECS gives a task 30 s after SIGTERM, Spot two minutes): the steps running
    here are handed back to the queue, not finished nor left to their leases."""
    sweeper.stop()
    loop_thread = get_event_loop_thread()
    if loop_thread is not None:
        loop_thread.run_coroutine(generator.hand_back())
        if generator.lease_keeper is not None:
            generator.lease_keeper.cancel()
        loop_thread.run_coroutine(generator.close())
    worker.stop(timeout=30_000)
    worker.broker.close()


__all__ = ["Generator", "build", "start_worker", "stop_worker"]
