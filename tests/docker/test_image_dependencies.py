"""What each image installs, read from uv.lock: the closure of its workspace member's runtime
dependencies, which is what its Dockerfile's `uv sync --frozen --no-dev --package` installs.
A library that only one service uses ships in that service's image only."""

from __future__ import annotations

import ast
import functools
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Image -> the sources that run in it: its service and the shared library.
IMAGE_SOURCES = {
    "momentum-api": ["services/api/src", "libs/domain/src"],
    "momentum-generator": ["services/generator/src", "libs/domain/src"],
    "momentum-video-worker": ["services/video-worker/src", "libs/domain/src"],
}
# Distributions that only some images need -> the module they are imported as.
SINGLE_USE = {"pillow": "PIL", "pypdf": "pypdf", "tenacity": "tenacity"}


@functools.cache
def locked_packages() -> dict[str, dict]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {package["name"]: package for package in lock["package"]}


@functools.cache
def installed(member: str) -> frozenset[str]:
    """Every distribution in the member's runtime closure, extras included; markers are ignored,
    so the closure holds what any platform would get."""
    packages = locked_packages()
    seen: set[str] = set()
    pending = [member]
    while pending:
        package = packages[pending.pop()]
        if package["name"] in seen:
            continue
        seen.add(package["name"])
        for dependency in package.get("dependencies", []):
            pending.append(dependency["name"])
            for extra in dependency.get("extra", []):
                target = packages[dependency["name"]]
                pending += [d["name"] for d in target["optional-dependencies"][extra]]
    return frozenset(seen)


@functools.cache
def imported(member: str) -> frozenset[str]:
    """The top-level modules the image's sources import."""
    modules: set[str] = set()
    for source in IMAGE_SOURCES[member]:
        for path in (REPO_ROOT / source).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
    return frozenset(modules)


def test_the_closure_is_read_from_the_lock() -> None:
    assert {"momentum-domain", "litestar", "sqlalchemy", "redis"} <= installed("momentum-api")
    assert "imageio-ffmpeg" in installed("momentum-video-worker")
    assert "imageio-ffmpeg" not in installed("momentum-api")


def test_the_api_image_ships_no_imaging_or_retry_library() -> None:
    """Thumbnails are the generator's, slides the video worker's, retries the LLM providers'."""
    assert {"pillow", "tenacity"} & installed("momentum-api") == set()


@pytest.mark.parametrize("member", ["momentum-generator", "momentum-video-worker"])
def test_only_the_api_ships_a_pdf_reader(member: str) -> None:
    """Reference PDFs are read where they are uploaded."""
    assert "pypdf" in installed("momentum-api")
    assert "pypdf" not in installed(member)


@pytest.mark.parametrize("member", IMAGE_SOURCES)
def test_an_image_ships_a_single_use_library_exactly_when_its_code_imports_it(
    member: str,
) -> None:
    shipped = {name for name in SINGLE_USE if name in installed(member)}
    needed = {name for name, module in SINGLE_USE.items() if module in imported(member)}
    assert shipped == needed
