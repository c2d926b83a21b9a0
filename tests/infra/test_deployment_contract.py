"""The contract between the Pulumi program and the services: each service starts from exactly the
environment its rendered task definition gives it (secrets as realistic stand-ins), passes its
start-up check, and builds every provider it would build at start-up without error.

What ECS does at start is reproduced here: the container's ``environment`` plus one value per
``secrets`` entry, nothing else (no .env file, no variable from the test's own environment).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pulumi_harness import STACKS, StackRun, stack_run_for

from momentum_domain.config import Settings
from momentum_domain.deployment import SERVICES, deployment_problems

# What an operator puts in Secrets Manager, in each third party's real shape. A secret the task
# definition names and this table does not is a failure: a new secret needs a stand-in here.
SECRET_STAND_INS: dict[str, dict[str, str]] = {
    "MOMENTUM_STRIPE_API_KEY": {
        "dev": "sk_test_51PcJ2xKq8yQbN3vT0aRf9LmW2sH7dE4uZ1oXyV6cB8nM5kJ3gF0pA",
        "staging": "sk_test_51PcJ2xKq8yQbN3vT0aRf9LmW2sH7dE4uZ1oXyV6cB8nM5kJ3gF0pB",
        "prod": "sk_live_51PcJ2xKq8yQbN3vT0aRf9LmW2sH7dE4uZ1oXyV6cB8nM5kJ3gF0pC",
    },
    "MOMENTUM_STRIPE_WEBHOOK_SECRET": {
        stack: "whsec_7b1f0c2d9e8a4b6c5d3e2f1a0b9c8d7e" for stack in STACKS
    },
    "MOMENTUM_HEYGEN_API_KEY": {stack: "sk_V2_hgu_kq3ZpX8wYbT4nR7mL2cD9vF6" for stack in STACKS},
    "MOMENTUM_HEYGEN_WEBHOOK_SECRET": {stack: "wh_sec_3c9b0f7e1d2a4c8b" for stack in STACKS},
    "MOMENTUM_DATABASE_USER": {stack: "momentum_app" for stack in STACKS},
    "MOMENTUM_DATABASE_PASSWORD": {stack: "Zq8#rotated-by-rds-Kx2!" for stack in STACKS},
}


def task_environment(stack: StackRun, service: str) -> dict[str, str]:
    container = stack.containers(service)[service]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    for secret in container.get("secrets", []):
        name = secret["name"]
        assert name in SECRET_STAND_INS, (
            f"{stack.stack}/{service}: secret {name} has no stand-in in SECRET_STAND_INS"
        )
        environment[name] = SECRET_STAND_INS[name][stack.stack]
    return environment


@contextmanager
def only_environment(environment: dict[str, str]) -> Iterator[None]:
    """os.environ holding exactly the task's variables (boto3 reads AWS_REGION from it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_api(settings: Settings) -> None:
    from momentum_api.app import create_app

    create_app(settings)


def build_generator(settings: Settings) -> None:
    from momentum_generator.worker import build

    _, generator = build(settings)
    generator.runner()  # the engine, Redis, model provider, storage and semaphore


def build_video_worker(settings: Settings) -> None:
    from momentum_domain.storage import create_storage
    from momentum_video_worker.providers import create_provider

    create_storage(settings)
    provider = create_provider(settings)
    asyncio.run(provider.aclose())


BUILDERS: dict[str, Any] = {
    "api": build_api,
    "generator": build_generator,
    "video-worker": build_video_worker,
}


@pytest.mark.parametrize("stack_name", STACKS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_starts_from_its_task_definition(stack_name: str, service: str) -> None:
    stack = stack_run_for(stack_name)
    with only_environment(task_environment(stack, service)):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.env == stack_name
        # Strict for every stack: the dev stack runs on AWS too, with real money.
        problems = deployment_problems(settings, service, strict=True)
        assert not problems, f"{stack_name}/{service}: " + "; ".join(problems)
        BUILDERS[service](settings)


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_model_the_generator_calls_is_allowed_and_nothing_else(stack_name: str) -> None:
    stack = stack_run_for(stack_name)
    with only_environment(task_environment(stack, "generator")):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    region, account = stack.config["aws:region"], stack.setting("accountId")
    expected = set()
    for model in (settings.llm_model_id, settings.image_model_id):
        base = model.split(".", 1)[1] if model.startswith(("us.", "eu.", "apac.")) else model
        if base != model:  # an inference profile, and the model it routes to in any region
            expected |= {
                f"arn:aws:bedrock:{region}:{account}:inference-profile/{model}",
                f"arn:aws:bedrock:*::foundation-model/{base}",
            }
        else:
            expected.add(f"arn:aws:bedrock:{region}::foundation-model/{model}")
    (bedrock,) = [
        statement
        for statement in stack.policy("generator-task")["Statement"]
        if any(action.startswith("bedrock:") for action in statement["Action"])
    ]
    assert set(bedrock["Resource"]) == expected
    # No other workload may call a model.
    for workload in ("api", "video-worker"):
        actions = [a for s in stack.policy(f"{workload}-task")["Statement"] for a in s["Action"]]
        assert not [a for a in actions if a.startswith("bedrock:")]
