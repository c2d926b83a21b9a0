# syntax=docker/dockerfile:1.7
# Momentum API image. Build from the repository root:
#   docker build -f docker/api.Dockerfile --build-arg VERSION=$(git describe --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t momentum-api .

# Base images. Python is pinned by digest (the tag only tells readers which one), so every
# build of a commit gets the same interpreter and system libraries; the uv image is pinned by
# its version tag only until its digest is resolved. Build arguments, so that a build can
# substitute them: docker/build-and-run.sh builds these files on local stand-ins.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${UV_IMAGE} AS uv

# Builder: install the locked dependencies of this one workspace member into /app/.venv.
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, so this layer is reused until uv.lock or a pyproject.toml changes.
COPY pyproject.toml uv.lock ./
COPY libs/domain/pyproject.toml libs/domain/
COPY services/api/pyproject.toml services/api/
COPY services/generator/pyproject.toml services/generator/
COPY services/video-worker/pyproject.toml services/video-worker/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package momentum-api
COPY libs/domain/ libs/domain/
COPY services/api/ services/api/
# Non-editable: the runtime stage needs the virtualenv only, not the sources.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package momentum-api

# Runtime: the same Python base, the virtualenv, and an unprivileged user.
FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="momentum-api" \
      org.opencontainers.image.description="Momentum REST API (Litestar) on port 8000" \
      org.opencontainers.image.vendor="Momentum" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
RUN groupadd --system --gid 10001 momentum \
    && useradd --system --uid 10001 --gid momentum --no-create-home --shell /usr/sbin/nologin momentum \
    && install --directory --owner momentum --group momentum /data
# The root filesystem is read-only in production. Fargate creates a task's bind mount with the
# owner and mode of the image's VOLUME at the same path (root 0755 otherwise, unwritable for
# this user): /data is the service's own, /tmp (1777) takes spooled uploads and temp files.
VOLUME ["/data", "/tmp"]
COPY --from=builder /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MOMENTUM_API_HOST=0.0.0.0 \
    MOMENTUM_DATA_DIR=/data
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only; the load balancer checks /health/ready. Standard library, no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
CMD ["python", "-m", "momentum_api"]
