"""What the delivery workflow and the deploy runbook rely on: outputs and resource URNs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from pulumi_harness import DEPLOY_TIME_CONFIG, REPO_ROOT, StackRun

from momentum_api.cli import build_parser

SERVICES = ("api", "generator", "video-worker")


def test_workflow_outputs_exist(stack: StackRun) -> None:
    exports = stack.exports
    assert set(exports["ecrRepositories"]) == set(SERVICES)
    assert exports["clusterName"] == f"momentum-{stack.stack}"
    assert exports["serviceNames"] == {service: service for service in SERVICES}
    assert exports["migrationTaskDefinitionUrn"] in stack.urns
    network = exports["migrationNetworkConfiguration"]["awsvpcConfiguration"]
    assert network["securityGroups"] == [
        stack.named("aws:ec2/securityGroup:SecurityGroup", "migrate-sg").id
    ]


def test_bootstrap_targets_in_the_runbook_exist(stack: StackRun) -> None:
    # docs/runbooks/deploy.md, "First deployment": the registry first, the services last.
    registry = f"urn:pulumi:{stack.stack}::momentum::momentum:infra:Registry"
    services = f"urn:pulumi:{stack.stack}::momentum::momentum:infra:Compute$aws:ecs/service:Service"
    for service in SERVICES:
        assert f"{registry}$aws:ecr/repository:Repository::{service}" in stack.urns
        assert f"{registry}$aws:ecr/lifecyclePolicy:LifecyclePolicy::{service}" in stack.urns
        assert f"{services}::{service}" in stack.urns
    # Top-level components: the engine's URN has no stack prefix; the mock's has one.
    assert any(urn.endswith("momentum:infra:Registry::registry") for urn in stack.urns)


def _urn(stack: StackRun, component: str, resource_type: str, name: str) -> str:
    urn = f"urn:pulumi:{stack.stack}::momentum::momentum:infra:{component}${resource_type}::{name}"
    assert urn in stack.urns, urn
    return urn


def test_the_api_service_waits_for_the_listeners(stack: StackRun) -> None:
    # ECS rejects a target group no listener attaches yet ("target group does not have an
    # associated load balancer"): on a first `pulumi up` the service must come after both.
    listeners = {
        _urn(stack, "Edge", "aws:lb/listener:Listener", name) for name in ("https", "http")
    }
    api = _urn(stack, "Compute", "aws:ecs/service:Service", "api")
    assert listeners <= stack.dependencies[api]
    # The workers register with no load balancer and need not wait.
    for worker in ("generator", "video-worker"):
        service = _urn(stack, "Compute", "aws:ecs/service:Service", worker)
        assert not listeners & stack.dependencies[service]


def test_every_task_knows_the_version_it_runs(stack: StackRun) -> None:
    # What /health/live reports and the workers' heartbeats carry; the smoke test compares it
    # with the tag the workflow deployed.
    for workload in (*SERVICES, "migrate"):
        environment = {
            variable["name"]: variable["value"]
            for variable in stack.containers(workload)[workload]["environment"]
        }
        assert environment["MOMENTUM_VERSION"] == DEPLOY_TIME_CONFIG["momentum:imageTag"]
        image = stack.containers(workload)[workload]["image"]
        assert image.endswith(f":{DEPLOY_TIME_CONFIG['momentum:imageTag']}")


WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def _workflow(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def _steps(name: str, job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow(name)["jobs"][job]["steps"]
    return steps


def test_every_action_is_pinned_by_commit() -> None:
    # A tag can be moved to other code; a commit cannot. The comment says which release it is.
    uses = [
        line.strip().removeprefix("- ").removeprefix("uses: ")
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for line in path.read_text().splitlines()
        if line.strip().removeprefix("- ").startswith("uses: ")
    ]
    assert len(uses) > 10
    unpinned = [use for use in uses if not use.startswith("./") and not PINNED.match(use)]
    assert unpinned == []


def _command(step: dict[str, Any]) -> str:
    """A step's script with continuation lines joined and spaces collapsed."""
    return " ".join(str(step.get("run", "")).replace("\\\n", " ").split())


def _step_index(steps: list[dict[str, Any]], fragment: str) -> int:
    """The one step, outside the failure path, whose script contains ``fragment``."""
    matches = [i for i, s in enumerate(steps) if fragment in _command(s) and "if" not in s]
    assert len(matches) == 1, f"expected one step running {fragment!r}, got {matches}"
    return matches[0]


def test_a_deploy_fails_unless_the_new_version_rolled_out_and_passed_the_smoke_test() -> None:
    steps = _steps("deploy-stack.yml", "deploy")
    roll = next(i for i, step in enumerate(steps) if step.get("name") == "Roll the services")
    rollout = _step_index(steps, "wait_for_rollout.py --cluster")
    smoke = _step_index(steps, 'momentum smoke --base-url "$(pulumi stack output apiUrl)"')
    record = _step_index(steps, "pulumi stack tag set")
    rollback = next(i for i, step in enumerate(steps) if "failure()" in str(step.get("if")))
    assert roll < rollout < smoke < record < rollback
    assert '--image-tag "$IMAGE_TAG"' in _command(steps[rollout])
    assert '--expect-version "$IMAGE_TAG"' in _command(steps[smoke])
    # A failing check fails the job: nothing between the roll and the record is allowed to
    # fail quietly or be skipped, and the record runs only on success.
    for step in steps[roll : record + 1]:
        assert "continue-on-error" not in step
        assert "if" not in step
    # The rollback target is read from what the record step writes.
    assert '"$GOOD_IMAGE_TAG" "$IMAGE_TAG"' in steps[record]["run"]
    current = next(step for step in steps if step.get("id") == "current")
    assert 'pulumi stack tag get "$GOOD_IMAGE_TAG"' in current["run"]
    # The rollback checks its own rollout and version the same way.
    assert '--image-tag "$PREVIOUS_TAG"' in _command(steps[rollback])
    assert '--expect-version "$PREVIOUS_TAG"' in _command(steps[rollback])


def test_the_workflow_commands_are_ones_the_tools_accept(tmp_path: Path) -> None:
    # Read the smoke and rollout command lines out of the workflow and parse them with the real
    # parsers (`momentum smoke --base-url` once failed here: the option was top-level only).
    run = next(
        step["run"]
        for step in _steps("deploy-stack.yml", "deploy")
        if "momentum smoke" in step.get("run", "") and "PREVIOUS_TAG" not in step["run"]
    )
    command = shlex.split(
        run.replace("\\\n", " ")
        .replace('"$(pulumi stack output apiUrl)"', "https://api.example.com")
        .replace('"$IMAGE_TAG"', "9c4e2b7")
    )
    assert command[:4] == ["uv", "run", "--frozen", "momentum"]
    args = build_parser().parse_args(command[4:])
    assert (args.command, args.base_url, args.expect_version) == (
        "smoke",
        "https://api.example.com",
        "9c4e2b7",
    )
    assert (REPO_ROOT / "infra" / "scripts" / "wait_for_rollout.py").is_file()


def test_prod_promotes_the_images_staging_tested() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    assert jobs["prod"]["needs"] == "staging"
    assert jobs["prod"]["with"]["promote_images"] == "${{ needs.staging.outputs.images }}"
    assert "promote_images" not in jobs["staging"]["with"]
    steps = _steps("deploy-stack.yml", "deploy")
    build = next(step for step in steps if step.get("id") == "build")
    promote = next(step for step in steps if "imagetools create" in step.get("run", ""))
    # Promoting never builds, building never promotes, and what staging built is its output.
    assert build["if"] == "inputs.promote_images == ''"
    assert promote["if"] == "inputs.promote_images != ''"
    assert "docker buildx build" not in promote["run"]
    outputs = _workflow("deploy-stack.yml")["jobs"]["deploy"]["outputs"]
    assert outputs["images"] == "${{ steps.build.outputs.images || inputs.promote_images }}"
    # The copy is checked against the tested digest.
    assert '[ "$existing" != "$digest" ]' in promote["run"]


def test_the_services_roll_only_after_the_migration_of_their_image(stack: StackRun) -> None:
    """The first `pulumi up` of a deploy registers every task definition for the new image and
    changes everything but the ECS services, which keep their running revision until the
    migration (which creates the application role the new code logs in as) has run."""
    steps = _steps("deploy-stack.yml", "deploy")
    first = _step_index(steps, "--exclude-dependents")
    migrate = _step_index(steps, "aws ecs run-task")
    roll = next(i for i, step in enumerate(steps) if step.get("name") == "Roll the services")
    assert first < migrate < roll
    script = str(steps[first]["run"])
    assert '--config "momentum:imageTag=${IMAGE_TAG}"' in script
    (prefix,) = re.findall(r'^\s*services="([^"]+)"', script, flags=re.MULTILINE)
    prefix = prefix.replace("${STACK}", stack.stack).replace("\\$", "$")
    excluded = {
        name.replace("${services}", prefix) for name in re.findall(r'--exclude "([^"]+)"', script)
    }
    services = {urn for urn in stack.urns if "$aws:ecs/service:Service::" in urn}
    assert excluded == services
    assert "migrationTaskDefinitionArn" in _command(steps[migrate])
