"""Every test gets the kit's fixtures (see tests/fixtures): a real database and Redis database
per xdist worker, the API and its accounts, moto, worker processes and the fake Stripe. A
directory's conftest holds only fixtures no other directory uses."""

import pytest

# The kit's helpers assert too: their failures should read like the tests' own.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.app",
    "tests.fixtures.moto",
    "tests.fixtures.workers",
    "tests.fixtures.commerce",
]
