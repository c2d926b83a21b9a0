"""Wait until every ECS service runs the image just deployed, or say why it does not.

`pulumi up` waits for the services to be steady, but a deployment the circuit breaker rolled
back is steady too: on the previous task definition. This reads each service's PRIMARY
deployment until its rollout is COMPLETED with a task definition whose application container
(named after the service) runs ``<repository>:<image tag>``, and fails at once when a rollout
FAILED or the PRIMARY deployment runs another image (ECS rolled back).

    python infra/scripts/wait_for_rollout.py --cluster momentum-prod \
        --image-tag 3f2c1a9 api generator video-worker

Exit status: 0 all services rolled out; 1 a rollout failed or was rolled back; 2 timed out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3

COMPLETED, FAILED = "COMPLETED", "FAILED"
# describe_services takes at most ten services a call.
DESCRIBE_BATCH = 10


class RolloutFailed(Exception):
    """A service will not reach the new image: its rollout failed or ECS rolled it back."""


@dataclass(frozen=True)
class Status:
    service: str
    done: bool
    detail: str


class Rollout:
    def __init__(self, ecs: Any, cluster: str, image_tag: str) -> None:
        self._ecs = ecs
        self._cluster = cluster
        self._tag = image_tag
        self._images: dict[str, dict[str, str]] = {}  # task definition ARN -> container -> image

    def check(self, services: Sequence[str]) -> list[Status]:
        """One look at every service; raises RolloutFailed if one can no longer succeed."""
        statuses = []
        for start in range(0, len(services), DESCRIBE_BATCH):
            batch = list(services[start : start + DESCRIBE_BATCH])
            response = self._ecs.describe_services(cluster=self._cluster, services=batch)
            if response.get("failures"):
                reasons = ", ".join(
                    f"{f.get('arn')}: {f.get('reason')}" for f in response["failures"]
                )
                raise RolloutFailed(f"cannot describe services: {reasons}")
            found = {service["serviceName"]: service for service in response["services"]}
            statuses += [self._status(name, found[name]) for name in batch]
        return statuses

    def _status(self, name: str, service: dict[str, Any]) -> Status:
        primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
        task_definition = primary["taskDefinition"]
        image = self._image(task_definition, name)
        if not image.endswith(f":{self._tag}"):
            raise RolloutFailed(
                f"{name}: ECS rolled back: the PRIMARY deployment runs {image} "
                f"({_revision(task_definition)}), not the tag {self._tag}" + _last_event(service)
            )
        state = primary.get("rolloutState")
        if state == FAILED:
            raise RolloutFailed(
                f"{name}: rollout FAILED: {primary.get('rolloutStateReason', 'no reason given')}"
                + _last_event(service)
            )
        running, desired = primary.get("runningCount", 0), primary.get("desiredCount", 0)
        older = len(service["deployments"]) - 1
        done = state == COMPLETED and running >= desired and older == 0
        detail = (
            f"{state} on {_revision(task_definition)}: {running}/{desired} running"
            + (f", {older} older deployment(s) draining" if older else "")
            + (f", {primary['failedTasks']} failed task(s)" if primary.get("failedTasks") else "")
        )
        return Status(name, done, detail)

    def _image(self, task_definition: str, container: str) -> str:
        if task_definition not in self._images:
            described = self._ecs.describe_task_definition(taskDefinition=task_definition)
            self._images[task_definition] = {
                c["name"]: c["image"] for c in described["taskDefinition"]["containerDefinitions"]
            }
        images = self._images[task_definition]
        if container not in images:
            raise RolloutFailed(f"{task_definition} has no container named {container!r}")
        return images[container]


def _revision(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1]


def _last_event(service: dict[str, Any]) -> str:
    events = service.get("events") or []
    return f" (last event: {events[0]['message']})" if events else ""


def wait(
    rollout: Rollout,
    services: Sequence[str],
    *,
    timeout: float,
    poll: float,
    report: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once every service is done; False at the timeout. Raises RolloutFailed."""
    deadline = clock() + timeout
    last: dict[str, str] = {}
    while True:
        statuses = rollout.check(services)
        for status in statuses:
            if last.get(status.service) != status.detail:
                report(f"{status.service}: {status.detail}")
                last[status.service] = status.detail
        if all(status.done for status in statuses):
            return True
        if clock() >= deadline:
            pending = ", ".join(s.service for s in statuses if not s.done)
            report(f"timed out after {timeout:.0f} s waiting for: {pending}")
            return False
        sleep(poll)


def main(argv: Sequence[str] | None = None, *, ecs: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--image-tag", required=True, help="the tag the stack just deployed")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds (default 1800)")
    parser.add_argument("--poll", type=float, default=15, help="seconds between looks")
    parser.add_argument("--region", help="default: the AWS SDK's")
    parser.add_argument("services", nargs="+")
    args = parser.parse_args(argv)
    ecs = ecs or boto3.client("ecs", region_name=args.region)
    try:
        rolled_out = wait(
            Rollout(ecs, args.cluster, args.image_tag),
            args.services,
            timeout=args.timeout,
            poll=args.poll,
        )
    except RolloutFailed as failure:
        print(f"::error::{failure}")
        return 1
    if not rolled_out:
        print(f"::error::the services did not finish rolling out {args.image_tag}")
        return 2
    print(f"every service runs {args.image_tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
