"""Every test gets the kit's fixtures (see tests/fixtures): a real database and Redis database
per xdist worker, the API and its accounts, moto, worker processes and the fake Stripe. A
directory's conftest holds only fixtures no other directory uses."""

import os

import pytest

# The suite runs many engines at once (two xdist workers, each app it starts, the services the
# drills spawn, which inherit this environment): small pools keep its peak well under
# PostgreSQL's default of 100 connections. Overflow connections close after use.
os.environ.setdefault("MOMENTUM_DATABASE_POOL_SIZE", "3")
os.environ.setdefault("MOMENTUM_DATABASE_MAX_OVERFLOW", "7")

# The kit's helpers assert too: their failures should read like the tests' own.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.app",
    "tests.fixtures.moto",
    "tests.fixtures.workers",
    "tests.fixtures.commerce",
]
