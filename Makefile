# Two commands on a fresh clone: `make dev` runs the platform, `make test` runs the test suite.
# Both install what they need: a pinned uv in .tools/, then the locked workspace in .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen
EMBEDDED := $(RUN) python -m momentum_dev.embedded --data-dir .momentum/test

.PHONY: dev test lint install bench-api bench-generator bench-video

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --frozen --all-packages

dev: install
	$(RUN) python -m momentum_dev

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs/domain/src libs/dev/src services

test: lint
	$(EMBEDDED) -- pytest -n auto --dist loadfile $(PYTEST_ARGS)

bench-generator: install
	$(RUN) python bench/generator_bench.py

bench-video: install
	$(RUN) python bench/video_bench.py $(BENCH_ARGS)

bench-api: install
	$(RUN) python bench/api_bench.py $(BENCH_ARGS)
