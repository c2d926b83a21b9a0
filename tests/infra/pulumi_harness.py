"""Runs the Pulumi program under Pulumi's mocks, once per stack and test process.

Each run happens in a fresh thread: Pulumi keeps its settings, configuration and root stack in
context variables, so a new thread starts from a clean runtime and the three stacks cannot see
each other's state. The mocks record every resource (type, name, inputs, provider) and every
data-source call; tests assert on those records. No CLI, no cloud, no credentials.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.config
import pulumi.runtime.mocks
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAM = REPO_ROOT / "infra"
STACKS = ("dev", "staging", "prod")
PROJECT = "momentum"
# What the delivery workflow passes with --config on every preview and deploy.
DEPLOY_TIME_CONFIG = {"momentum:imageTag": "3f2c1a9"}
# What an operator sets per account (`pulumi config set`) over the stack files' REPLACE_ME
# placeholders, in the real shapes; the placeholders themselves stop the services at start-up.
ACCOUNT_CONFIG = {
    "momentum:stripePricePremiumMonthly": "price_1QpRdPremMonthly9aBf4Qs",
    "momentum:stripePricePremiumYearly": "price_1QpRdPremYearly2tLz8Wn",
    "momentum:heygenAvatarId": "Daisy-inskirt-20220818",
    "momentum:heygenVoiceId": "2d5b0e6cf36f460aa7fc47e3eee4ba54",
}
ELB_ACCOUNT_ARN = "arn:aws:iam::127311923021:root"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
BUCKET = "aws:s3/bucket:Bucket"
# What Secrets Manager's GetRandomPassword returns under the mocks.
FIRST_APP_PASSWORD = "FirstAppPassword0123456789abcdefghijklmn"
# What the Amazon Linux AMI parameter resolves to under the mocks.
NAT_AMI = "ami-0a1b2c3d4e5f60718"


@dataclass(frozen=True)
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    id: str


@dataclass
class StackRun:
    stack: str
    config: dict[str, str]
    resources: list[Recorded] = field(default_factory=list)
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    config_reads: set[str] = field(default_factory=set)
    urns: set[str] = field(default_factory=set)
    # URN -> the URNs the engine would wait for (explicit depends_on and input dependencies).
    dependencies: dict[str, set[str]] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == resource_type]

    def named(self, resource_type: str, name: str) -> Recorded:
        matches = [r for r in self.of_type(resource_type) if r.name == name]
        assert len(matches) == 1, f"expected one {resource_type} named {name!r}, got {matches}"
        return matches[0]

    def by_id(self, resource_id: str) -> Recorded:
        matches = [r for r in self.resources if r.id == resource_id]
        assert len(matches) == 1, f"no single resource with id {resource_id!r}"
        return matches[0]

    def setting(self, key: str) -> str:
        return self.config[f"momentum:{key}"]

    def arn_of(self, resource_type: str, name: str) -> str:
        """The ARN the mocks gave a resource (what other resources received as input)."""
        recorded = self.named(resource_type, name)
        return RecordingMocks(self).outputs_for(recorded)["arn"]

    def policy(self, role_policy_name: str) -> dict[str, Any]:
        return json.loads(self.named(IAM_ROLE_POLICY, role_policy_name).inputs["policy"])

    def containers(self, task_definition_name: str) -> dict[str, dict[str, Any]]:
        task_definition = self.named(TASK_DEFINITION, task_definition_name)
        return {c["name"]: c for c in json.loads(task_definition.inputs["containerDefinitions"])}


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns plausible provider outputs so every downstream input resolves to a real value."""

    def __init__(self, run: StackRun) -> None:
        self.run = run
        self.region = run.config["aws:region"]
        self.account = run.config["momentum:accountId"]

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_type = args.typ.rsplit(":", 1)[-1].lower()
        # A bucket's id is its name, as in AWS; other ids just need to be unique and readable.
        resource_id = args.inputs.get("bucket") if args.typ == BUCKET else None
        resource_id = resource_id or f"{resource_type}-{args.name}"
        self.run.resources.append(
            Recorded(args.typ, args.name, args.inputs, args.provider, resource_id)
        )
        return resource_id, {**args.inputs, **self._outputs(args.typ, args.name, args.inputs)}

    def outputs_for(self, recorded: Recorded) -> dict[str, Any]:
        return self._outputs(recorded.type, recorded.name, recorded.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.run.calls.append((args.token, args.provider))
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zone_ids = [f"use1-az{index}" for index in range(1, len(ZONES) + 1)]
            return {"id": self.region, "names": list(ZONES), "zoneIds": zone_ids}
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"id": "127311923021", "arn": ELB_ACCOUNT_ARN}
        if args.token == "aws:ssm/getParameter:getParameter":
            # The public parameters that name the current Amazon Linux AMIs.
            assert args.args["name"].startswith("/aws/service/ami-amazon-linux-latest/")
            return {**args.args, "id": args.args["name"], "value": NAT_AMI, "type": "String"}
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            return {**args.args, "id": "random", "randomPassword": FIRST_APP_PASSWORD}
        raise AssertionError(f"unexpected data source call {args.token}")

    def _outputs(self, type_token: str, logical_name: str, inputs: dict[str, Any]) -> dict:
        region, account = self.region, self.account
        resource_type = type_token.rsplit(":", 1)[-1].lower()
        name = inputs.get("name") or logical_name
        outputs: dict[str, Any] = {
            "name": name,
            "arn": f"arn:aws:mock:{region}:{account}:{resource_type}/{name}",
        }
        match type_token:
            case "aws:kms/key:Key":
                outputs["keyId"] = f"key-{logical_name}"
                outputs["arn"] = f"arn:aws:kms:{region}:{account}:key/key-{logical_name}"
            case "aws:s3/bucket:Bucket":
                outputs["arn"] = f"arn:aws:s3:::{inputs['bucket']}"
            case "aws:rds/cluster:Cluster":
                outputs["endpoint"] = (
                    f"{inputs['clusterIdentifier']}.cluster-c0.{region}.rds.amazonaws.com"
                )
                secret = f"arn:aws:secretsmanager:{region}:{account}:secret:rds!cluster-1"
                outputs["masterUserSecrets"] = [
                    {
                        "secretArn": secret,
                        "kmsKeyId": inputs["masterUserSecretKmsKeyId"],
                        "secretStatus": "active",
                    }
                ]
            case "aws:elasticache/replicationGroup:ReplicationGroup":
                group = inputs["replicationGroupId"]
                outputs["primaryEndpointAddress"] = (
                    f"master.{group}.x1y2z3.use1.cache.amazonaws.com"
                )
                outputs["readerEndpointAddress"] = (
                    f"replica.{group}.x1y2z3.use1.cache.amazonaws.com"
                )
            case "aws:serverlessrepository/cloudFormationStack:CloudFormationStack":
                function = inputs["parameters"]["functionName"]
                outputs["outputs"] = {
                    "RotationLambdaARN": f"arn:aws:lambda:{region}:{account}:function:{function}"
                }
            case "aws:secretsmanager/secret:Secret":
                outputs["arn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-Ab12Cd"
            case "aws:lb/loadBalancer:LoadBalancer":
                outputs["dnsName"] = f"{name}.{region}.elb.amazonaws.com"
                outputs["zoneId"] = "Z35SXDOTRQ7X7K"
                outputs["arnSuffix"] = f"app/{name}/50dc6c495c0c9188"
            case "aws:ec2/instance:Instance":
                outputs["primaryNetworkInterfaceId"] = f"eni-{logical_name}"
            case "aws:lb/targetGroup:TargetGroup":
                outputs["arnSuffix"] = f"targetgroup/{name}/73e2d6bc24d8a067"
            case "aws:ecr/repository:Repository":
                outputs["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"
            case "aws:cloudwatch/logGroup:LogGroup":
                outputs["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
            case "aws:sns/topic:Topic":
                outputs["arn"] = f"arn:aws:sns:{region}:{account}:{name}"
            case "aws:sesv2/emailIdentity:EmailIdentity":
                identity = inputs["emailIdentity"]
                outputs["arn"] = f"arn:aws:ses:{region}:{account}:identity/{identity}"
                outputs["dkimSigningAttributes"] = {"tokens": ["dkima", "dkimb", "dkimc"]}
        return outputs


def stack_file_config(stack: str) -> dict[str, str]:
    """The stack file's config as the Pulumi CLI hands it to the program: strings or JSON."""
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {key: _as_config_string(value) for key, value in document["config"].items()}


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def run_program(stack: str, config: dict[str, str], secret_keys: tuple[str, ...] = ()) -> StackRun:
    """Run infra/__main__.py under mocks in a fresh thread (a clean Pulumi runtime)."""
    run = StackRun(stack=stack, config=config)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            _run_in_current_thread(run, secret_keys)
        except BaseException as error:  # re-raised in the calling thread
            failure.append(error)

    thread = threading.Thread(target=target, name=f"pulumi-{stack}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return run


def _run_in_current_thread(run: StackRun, secret_keys: tuple[str, ...]) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with warnings.catch_warnings():
            # pulumi_aws modules warn on first import about deprecated classes they define,
            # which the program does not use.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\.")
            _run_program(run, secret_keys)
    finally:
        loop.close()


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """Also records each registration's dependencies, which MockResourceArgs does not carry."""

    def __init__(self, run: StackRun) -> None:
        super().__init__(RecordingMocks(run))
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        self.run.dependencies[response.urn] = set(request.dependencies)
        return response


def _run_program(run: StackRun, secret_keys: tuple[str, ...]) -> None:
    monitor = RecordingMonitor(run)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=run.stack, preview=False, monitor=monitor
    )
    program_config = {k: v for k, v in run.config.items() if not k.startswith("pulumi:")}
    pulumi.runtime.set_all_config(program_config, list(secret_keys))

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        outputs = pulumi.runtime.get_root_resource().outputs
        return pulumi.Output.all(**outputs).apply(run.exports.update)

    # Every config read goes through pulumi.config.get_config; record the keys asked for. Runs
    # are sequential (the caller joins each thread), so patching the module is safe.
    original = pulumi.config.get_config

    def recording_get_config(key: str) -> Any:
        run.config_reads.add(key)
        return original(key)

    pulumi.config.get_config = recording_get_config
    try:
        program()
    finally:
        pulumi.config.get_config = original
    run.urns = set(monitor.resources)


_RUNS: dict[str, StackRun] = {}


def stack_run_for(stack: str) -> StackRun:
    """The recorded run of a stack, computed once per test process."""
    if stack not in _RUNS:
        config = {**stack_file_config(stack), **ACCOUNT_CONFIG, **DEPLOY_TIME_CONFIG}
        _RUNS[stack] = run_program(stack, config)
    return _RUNS[stack]
