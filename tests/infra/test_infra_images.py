"""The task definitions and the images agree on where a service may write.

ECS runs every container with a read-only root filesystem, so a service can write only to the
task's bind mounts. On Fargate such a mount starts with the owner and mode of the image's VOLUME
at the same path, and is owned by root with mode 0755 where the image declares none: unwritable
for the images' unprivileged user. docker/build-and-run.sh runs the built images this way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

from pulumi_harness import TASK_DEFINITION, StackRun

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
# The migration task runs the API image.
DOCKERFILE_OF = {
    "api": "api",
    "generator": "generator",
    "video-worker": "video-worker",
    "migrate": "api",
}


def image_contract(dockerfile: Path) -> tuple[set[str], str]:
    """The final stage's VOLUME paths and its MOMENTUM_DATA_DIR."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    final = text[text.rindex("\nFROM ") :]
    volumes: set[str] = set()
    for arguments in re.findall(r"^VOLUME (.+)$", final, re.MULTILINE):
        volumes.update(json.loads(arguments))
    (data_dir,) = re.findall(r"^ENV .*MOMENTUM_DATA_DIR=(\S+)", final, re.MULTILINE)
    return volumes, data_dir


def test_every_path_a_task_writes_is_a_volume_of_its_image(stack: StackRun) -> None:
    task_definitions = stack.of_type(TASK_DEFINITION)
    assert {td.name for td in task_definitions} >= set(DOCKERFILE_OF)
    for task_definition in task_definitions:
        container = stack.containers(task_definition.name)[task_definition.name]
        volumes, image_data_dir = image_contract(
            DOCKER_DIR / f"{DOCKERFILE_OF[task_definition.name]}.Dockerfile"
        )
        assert container["readonlyRootFilesystem"] is True
        assert container.get("user") in {None, "10001", "10001:10001"}
        mounts = [PurePosixPath(m["containerPath"]) for m in container.get("mountPoints", [])]
        for mount in mounts:
            assert str(mount) in volumes, (
                f"{task_definition.name}: {mount} is mounted but is not a VOLUME of its image, "
                "so Fargate creates it root-owned and the service cannot write there"
            )
        environment = {e["name"]: e["value"] for e in container.get("environment", [])}
        data_dir = PurePosixPath(environment.get("MOMENTUM_DATA_DIR", image_data_dir))
        assert any(data_dir == mount or mount in data_dir.parents for mount in mounts), (
            f"{task_definition.name}: MOMENTUM_DATA_DIR={data_dir} is on the read-only root "
            f"(mounts: {[str(m) for m in mounts]})"
        )
