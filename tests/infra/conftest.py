"""Fixtures for the Pulumi program's unit tests (see pulumi_harness)."""

from __future__ import annotations

import pytest
from pulumi_harness import STACKS, StackRun, stack_run_for


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> StackRun:
    """The recorded run of each stack's configuration: dev, staging and prod."""
    return stack_run_for(request.param)
