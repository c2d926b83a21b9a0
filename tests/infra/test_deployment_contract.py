"""The contract between the Pulumi program and the services: each service starts from exactly the
environment its rendered task definition gives it (secrets as realistic stand-ins), passes its
start-up check, and builds every provider it would build at start-up without error.

What ECS does at start is reproduced here: the container's ``environment`` plus one value per
``secrets`` entry, nothing else (no .env file, no variable from the test's own environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pulumi_harness import STACKS, StackRun, stack_file_config, stack_run_for
from sqlalchemy.engine import make_url

from momentum_domain.config import Settings
from momentum_domain.deployment import SERVICES, deployment_problems
from momentum_domain.model_ids import base_model_id

STARTUP_SCRIPT = Path(__file__).with_name("service_startup.py")

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
    # The migration task: the RDS-managed master secret, and the application role's secret.
    "MOMENTUM_DATABASE_USER": {stack: "postgres" for stack in STACKS},
    "MOMENTUM_DATABASE_PASSWORD": {stack: "Zq8#rotated-by-rds-Kx2!" for stack in STACKS},
    "MOMENTUM_DATABASE_APP_USER": {stack: "momentum_app" for stack in STACKS},
    "MOMENTUM_DATABASE_APP_PASSWORD": {stack: "Wm3!rotated-by-secrets-Pq7" for stack in STACKS},
}
# Stack-file keys an operator sets per account, and the variables they become.
ACCOUNT_KEYS = {
    "stripePricePremiumMonthly": ("api", "MOMENTUM_STRIPE_PRICE_PREMIUM_MONTHLY"),
    "stripePricePremiumYearly": ("api", "MOMENTUM_STRIPE_PRICE_PREMIUM_YEARLY"),
    "heygenAvatarId": ("video-worker", "MOMENTUM_HEYGEN_AVATAR_ID"),
    "heygenVoiceId": ("video-worker", "MOMENTUM_HEYGEN_VOICE_ID"),
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
    """os.environ holding exactly the task's variables, while settings are read from it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_service(environment: dict[str, str], service: str, cwd: Path) -> dict[str, Any]:
    """Run tests/infra/service_startup.py in an interpreter that sees only ``environment``."""
    finished = subprocess.run(
        [sys.executable, str(STARTUP_SCRIPT), service],
        env={**environment, "PATH": os.environ.get("PATH", "")},
        cwd=cwd,  # no .env file here
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("stack_name", STACKS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_starts_from_its_task_definition(
    stack_name: str, service: str, tmp_path: Path
) -> None:
    stack = stack_run_for(stack_name)
    started = start_service(task_environment(stack, service), service, tmp_path)
    assert started["problems"] == [], f"{stack_name}/{service}: " + "; ".join(started["problems"])
    assert started["env"] == stack_name
    assert started["region"] == stack.config["aws:region"]


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_model_the_generator_calls_is_allowed_and_nothing_else(stack_name: str) -> None:
    stack = stack_run_for(stack_name)
    with only_environment(task_environment(stack, "generator")):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    region, account = stack.config["aws:region"], stack.setting("accountId")
    expected = set()
    for model in (settings.llm_model_id, settings.image_model_id):
        base = base_model_id(model)
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


@pytest.mark.parametrize("stack_name", STACKS)
def test_the_committed_placeholders_stop_the_services_that_use_them(stack_name: str) -> None:
    """The stack files carry REPLACE_ME for what only an operator knows: deployed as they are,
    the services refuse to start and say which variable (the harness runs with the values an
    operator sets, pulumi_harness.ACCOUNT_CONFIG)."""
    stack = stack_run_for(stack_name)
    committed = stack_file_config(stack_name)
    for service in ("api", "video-worker"):
        environment = task_environment(stack, service)
        variables = [v for s, v in ACCOUNT_KEYS.values() if s == service]
        for key, (owner, variable) in ACCOUNT_KEYS.items():
            if owner == service:
                environment[variable] = committed[f"momentum:{key}"]
        with only_environment(environment):
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        problems = deployment_problems(settings, service, strict=True)
        assert problems == [f"{variable} looks like a placeholder" for variable in variables]


@pytest.mark.parametrize("stack_name", STACKS)
def test_the_migration_task_gets_what_it_provisions_the_application_role_with(
    stack_name: str,
) -> None:
    stack = stack_run_for(stack_name)
    environment = task_environment(stack, "migrate")
    with only_environment(environment):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    url = make_url(settings.database_url)
    assert settings.env == stack_name
    assert (url.username, url.host) == ("postgres", environment["MOMENTUM_DATABASE_HOST"])
    assert settings.database_app_user == environment["MOMENTUM_DATABASE_APP_USER"]
    assert settings.database_app_password == environment["MOMENTUM_DATABASE_APP_PASSWORD"]
