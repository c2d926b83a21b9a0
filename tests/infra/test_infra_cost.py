"""Each stack's monthly cost at its configured minimum, priced from the resources it declares.

The unit prices live in one table (infra/pricing.py), which docs/costs.md quotes; `pytest -s`
prints each stack's breakdown. A change that adds a fixed charge fails here until the ceiling
is raised on purpose.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from pulumi_harness import PROGRAM, STACKS, Recorded, StackRun, stack_run_for


def _load_pricing():  # type: ignore[no-untyped-def]
    """infra/pricing.py, which the program (a script directory) does not put on sys.path."""
    spec = importlib.util.spec_from_file_location("pricing", PROGRAM / "pricing.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["pricing"] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


pricing = _load_pricing()
HOURS_PER_MONTH, PRICES = pricing.HOURS_PER_MONTH, pricing.PRICES
monthly_cost, total = pricing.monthly_cost, pricing.total

# USD a month at minimum size, before traffic: the targets for dev and prod (prod at 1,000
# users, Multi-AZ database and broker); staging is held where it is.
CEILINGS = {"dev": 100.0, "staging": 140.0, "prod": 220.0}


def breakdown(stack: StackRun) -> str:
    lines = monthly_cost(stack.resources)
    rows = [f"{line.item:<24}{line.usd:>9.2f}  {line.basis}" for line in lines]
    return "\n".join([f"{stack.stack}:", *rows, f"{'total':<24}{total(lines):>9.2f}"])


@pytest.mark.parametrize("name", STACKS)
def test_stack_costs_no_more_than_its_ceiling(name: str) -> None:
    stack = stack_run_for(name)
    print("\n" + breakdown(stack))
    assert total(monthly_cost(stack.resources)) <= CEILINGS[name]


def test_the_table_prices_what_is_declared() -> None:
    """The computation reads counts and sizes from the declarations, not from constants."""
    dev = stack_run_for("dev").resources
    before = total(monthly_cost(dev))
    gateway = Recorded("aws:ec2/natGateway:NatGateway", "extra", {}, None, "nat-extra")
    assert total(monthly_cost([*dev, gateway])) == pytest.approx(
        before + PRICES["nat_gateway_hour"] * HOURS_PER_MONTH, abs=0.02
    )
    without_services = [r for r in dev if r.type != "aws:ecs/service:Service"]
    assert total(monthly_cost(without_services)) < before


def test_prod_keeps_database_and_broker_multi_az_within_its_target() -> None:
    prod = stack_run_for("prod")
    subnets = {s.id: s.inputs["availabilityZone"] for s in prod.of_type("aws:ec2/subnet:Subnet")}
    # A writer and a reader that takes over (promotion tier 1), never paused, over two zones.
    instances = prod.of_type("aws:rds/clusterInstance:ClusterInstance")
    assert [i.inputs["promotionTier"] for i in instances] == [0, 1]
    scaling = prod.named("aws:rds/cluster:Cluster", "aurora").inputs
    assert scaling["serverlessv2ScalingConfiguration"]["minCapacity"] >= 0.5
    assert "secondsUntilAutoPause" not in scaling["serverlessv2ScalingConfiguration"]
    db_subnets = prod.named("aws:rds/subnetGroup:SubnetGroup", "db-subnets").inputs["subnetIds"]
    assert len({subnets[s] for s in db_subnets}) >= 2
    # A primary and a replica in another zone that ElastiCache promotes on failure.
    cache = prod.named("aws:elasticache/replicationGroup:ReplicationGroup", "cache").inputs
    assert cache["numCacheClusters"] >= 2
    assert cache["multiAzEnabled"] is True
    assert cache["automaticFailoverEnabled"] is True
    cache_subnets = prod.named("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets")
    assert len({subnets[s] for s in cache_subnets.inputs["subnetIds"]}) >= 2
