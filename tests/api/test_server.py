"""The API server's configuration as ``python -m momentum_api`` builds it from the environment."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from momentum_api.__main__ import server_config
from momentum_domain.config import Settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("MOMENTUM_API_KEEP_ALIVE_SECONDS", "MOMENTUM_API_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_keep_alive_outlasts_a_load_balancer_by_default(environment: pytest.MonkeyPatch) -> None:
    config = server_config(Settings(_env_file=None), argv=[])
    # uvicorn's own default is 5 s; the ALB keeps idle connections for 60 s.
    assert config.timeout_keep_alive == 75


def test_keep_alive_comes_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MOMENTUM_API_KEEP_ALIVE_SECONDS", "120")
    config = server_config(Settings(_env_file=None), argv=["--port", "8123"])
    assert (config.timeout_keep_alive, config.port) == (120, 8123)
    # The client address is ours to decide (momentum_api.origin), not uvicorn's.
    assert config.proxy_headers is False


def test_trusted_proxies_are_a_json_list_of_networks(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MOMENTUM_API_TRUSTED_PROXIES", '["10.20.0.0/16", "fd00::/8", "10.9.9.9"]')
    assert Settings(_env_file=None).api_trusted_proxies == [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("10.9.9.9/32"),
    ]
    assert Settings(_env_file=None, api_trusted_proxies=[]).api_trusted_proxies == []


@pytest.mark.parametrize("value", ['["10.20.0.1/16"]', '["not a network"]', "10.20.0.0/16"])
def test_a_malformed_trusted_proxy_stops_the_start(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    environment.setenv("MOMENTUM_API_TRUSTED_PROXIES", value)
    with pytest.raises((ValidationError, ValueError)):
        Settings(_env_file=None)
