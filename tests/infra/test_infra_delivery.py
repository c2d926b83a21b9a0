"""What the delivery workflow and the deploy runbook rely on: outputs and resource URNs."""

from __future__ import annotations

from pulumi_harness import StackRun

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
