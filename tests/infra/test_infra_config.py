"""Stack files and the program agree: every key set is read, every required key is set."""

from __future__ import annotations

import json

import pulumi
import pytest
from pulumi_harness import (
    DEPLOY_TIME_CONFIG,
    STACKS,
    StackRun,
    run_program,
    stack_file_config,
)

# Namespaces whose keys the program itself must read; `pulumi:` keys configure the engine.
PROGRAM_NAMESPACES = ("momentum:", "aws:")
# How Pulumi marks a secret value on the wire (and so in state): a signature key and value.
SECRET_MARKER = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def unread_keys(run: StackRun) -> set[str]:
    """Program-namespace keys the stack sets that the program never asked for."""
    program_keys = {key for key in run.config if key.startswith(PROGRAM_NAMESPACES)}
    return program_keys - run.config_reads


def dev_config(**changes: str | None) -> dict[str, str]:
    config = {**stack_file_config("dev"), **DEPLOY_TIME_CONFIG}
    for key, value in changes.items():
        if value is None:
            del config[f"momentum:{key}"]
        else:
            config[f"momentum:{key}"] = value
    return config


def test_every_key_a_stack_file_sets_is_read_by_the_program(stack: StackRun) -> None:
    # The run itself fails with ConfigMissingError if the file misses a required key.
    assert unread_keys(stack) == set()


@pytest.mark.parametrize("name", STACKS)
def test_stack_files_set_the_same_keys_and_never_a_deploy_time_key(name: str) -> None:
    keys = set(stack_file_config(name))
    assert keys == set(stack_file_config("dev"))
    assert not keys & set(DEPLOY_TIME_CONFIG)
    assert json.loads(stack_file_config(name)["pulumi:disable-default-providers"]) == ["aws"]


def test_a_key_the_program_does_not_read_is_reported() -> None:
    run = run_program("dev", dev_config(natGatewayCount="2"))
    assert unread_keys(run) == {"momentum:natGatewayCount"}


@pytest.mark.parametrize("missing", ["dbMaxAcu", "imageTag", "certificateArn"])
def test_a_missing_required_key_stops_the_program(missing: str) -> None:
    with pytest.raises(pulumi.ConfigMissingError, match=missing):
        run_program("dev", dev_config(**{missing: None}))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mfa", "SOMETIMES", "momentum:mfa"),
        ("apiMemory", "4096", "Fargate size"),
        ("dbMinAcu", "8", "dbMinAcu"),
        # The audit trail outlives the application logs, in a period CloudWatch accepts.
        ("auditLogRetentionDays", "14", "auditLogRetentionDays"),
        ("auditLogRetentionDays", "100", "auditLogRetentionDays"),
    ],
)
def test_invalid_values_are_rejected_with_the_key_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_program("dev", dev_config(**{key: value}))


def test_optional_social_sign_in_adds_an_identity_provider() -> None:
    secrets_key = "momentum:socialIdentityProviderSecrets"
    config = {
        **dev_config(socialIdentityProviders=json.dumps({"Google": {"clientId": "google-id"}})),
        secrets_key: json.dumps({"Google": "google-secret"}),
    }
    run = run_program("dev", config, secret_keys=(secrets_key,))
    assert unread_keys(run) == set()
    (provider,) = run.of_type("aws:cognito/identityProvider:IdentityProvider")
    assert provider.inputs["providerType"] == "Google"
    details = provider.inputs["providerDetails"]
    # The client secret came from a secret config key, so the whole map stays a secret.
    assert details[SECRET_MARKER[0]] == SECRET_MARKER[1]
    assert details["value"] == {
        "client_id": "google-id",
        "client_secret": "google-secret",
        "authorize_scopes": "openid email profile",
    }
    client = run.named("aws:cognito/userPoolClient:UserPoolClient", "frontend").inputs
    assert client["supportedIdentityProviders"] == ["COGNITO", "Google"]
