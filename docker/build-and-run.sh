#!/usr/bin/env bash
# Proves that each image builds and that its container starts its service, without a Docker
# engine. buildah builds docker/*.Dockerfile unmodified, with stand-ins for the base images
# passed as build arguments (a debootstrapped Debian bookworm with its Python 3.11 at the
# official image's path for python:3.11-slim; the project's pinned uv binary for the uv image).
# runc then runs each image the way ECS runs the task: as the image's user, with a read-only
# root filesystem, and the task's bind mounts made as Fargate makes them (a mount at a path the
# image declares as a VOLUME starts with that directory's owner, mode and content; any other
# starts empty, owned by root, mode 0755).
#
# Not part of `make test`: the first run debootstraps Debian and downloads every locked wheel.
# Needs: root; buildah, runc and debootstrap (installed with apt-get when missing); PostgreSQL
# on 127.0.0.1:5432 with trust auth for the user postgres; redis-server; the project installed
# (`make install`: .tools/bin/uv is the stand-in's uv).
#
# Usage: docker/build-and-run.sh [api] [generator] [video-worker]     (default: all three)
# Settings (environment): MOMENTUM_IMAGE_BUILD_DIR (cache, default .momentum/image-build),
# DEBIAN_MIRROR, POSTGRES_URL (server URL without a database), REDIS_PORT, API_PORT, and what
# infra/compute.py gives each task: TASK_MOUNTS (its mount points' container paths, default
# "/tmp") and TASK_DATA_DIR (its MOMENTUM_DATA_DIR, default /tmp/momentum).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${MOMENTUM_IMAGE_BUILD_DIR:-$REPO_ROOT/.momentum/image-build}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
POSTGRES_URL=${POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432}
REDIS_PORT=${REDIS_PORT:-6395}
API_PORT=${API_PORT:-18095}
# What infra/compute.py gives each task: its bind mounts and its data directory.
TASK_MOUNTS=${TASK_MOUNTS:-/tmp}
TASK_DATA_DIR=${TASK_DATA_DIR:-/tmp/momentum}
DATABASE=momentum_image_check
PYTHON_STAND_IN=localhost/momentum-stand-in/python:3.11-slim
SERVICES=("$@")
if [ ${#SERVICES[@]} -eq 0 ]; then
    SERVICES=(api generator video-worker)
fi

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

# Every buildah call uses this project's own store, apart from any other user of buildah.
bah() {
    buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver overlay "$@"
}

require_tools() {
    [ "$(id -u)" -eq 0 ] || die "run as root: buildah and runc need it here"
    local missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    command -v runc >/dev/null || missing+=(runc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    for tool in psql redis-server redis-cli curl python3; do
        command -v "$tool" >/dev/null || die "$tool is needed"
    done
    [ -x "$REPO_ROOT/.tools/bin/uv" ] || die "no .tools/bin/uv: run make install"
}

# The stand-in for python:3.11-slim: Debian's Python 3.11 where the official image has its own
# (/usr/local/bin/python), plus the packages the slim image carries. Cached as a tarball.
python_rootfs() {
    local tarball=$WORK/debian-bookworm-python3.11.tar
    if [ -f "$tarball" ]; then
        echo "$tarball"
        return
    fi
    local rootfs=$WORK/rootfs.partial
    rm -rf "$rootfs"
    log "debootstrap bookworm from $DEBIAN_MIRROR (once; cached in $tarball)"
    debootstrap --variant=minbase --include=python3.11,ca-certificates,netbase,tzdata \
        bookworm "$rootfs" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        die "debootstrap, see $WORK/debootstrap.log"
    ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
    ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
    # Certificate authorities this machine trusts locally (an egress proxy's, for example), so
    # that uv inside the build reaches PyPI the way the host does. None on an ordinary machine.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
    echo "$tarball"
}

image_exists() { bah inspect --type image "$1" >/dev/null 2>&1; }

# Imports the root filesystem as a local image, configured like the official one.
python_stand_in() {
    local tarball
    tarball=$(python_rootfs)
    if image_exists "$PYTHON_STAND_IN"; then
        return
    fi
    log "importing $PYTHON_STAND_IN"
    local container mount
    container=$(bah from scratch)
    mount=$(bah mount "$container")
    tar --numeric-owner -xpf "$tarball" -C "$mount"
    bah umount "$container" >/dev/null
    # SSL_CERT_FILE: uv trusts its own bundled roots unless told otherwise (see python_rootfs).
    bah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --cmd python3 "$container"
    bah commit --quiet --rm "$container" "$PYTHON_STAND_IN" >/dev/null
}

# The uv image holds only the uv binary at /uv: the stand-in holds the project's pinned one,
# which must be the version the Dockerfile names.
uv_stand_in() {
    local version dockerfile_version image
    version=$("$REPO_ROOT/.tools/bin/uv" --version | awk '{print $2}')
    dockerfile_version=$(sed -n 's/^ARG UV_IMAGE=ghcr.io\/astral-sh\/uv:\([0-9.]*\).*/\1/p' \
        "$REPO_ROOT/docker/api.Dockerfile")
    [ "$version" = "$dockerfile_version" ] ||
        die ".tools/bin/uv is $version, the Dockerfiles use uv $dockerfile_version"
    image=localhost/momentum-stand-in/uv:$version
    if ! image_exists "$image"; then
        log "creating $image"
        local container
        container=$(bah from scratch)
        bah copy --quiet "$container" "$REPO_ROOT/.tools/bin/uv" /uv
        bah commit --quiet --rm "$container" "$image" >/dev/null
    fi
    echo "$image"
}

# Builds docker/<service>.Dockerfile as it is; only the base images are substituted.
build() {
    local service=$1 uv_image=$2
    local image=localhost/momentum-$service:image-check
    local started=$SECONDS
    log "building $service (log: $WORK/logs/$service-build.log)"
    # Docker format keeps HEALTHCHECK in the image (OCI's format has no field for it).
    bah build --format docker --layers --pull=never --isolation chroot --network host \
        --build-arg "PYTHON_IMAGE=$PYTHON_STAND_IN" --build-arg "UV_IMAGE=$uv_image" \
        --build-arg "VERSION=$(git -C "$REPO_ROOT" describe --always --dirty)" \
        --build-arg "REVISION=$(git -C "$REPO_ROOT" rev-parse HEAD)" \
        --file "$REPO_ROOT/docker/$service.Dockerfile" --tag "$image" "$REPO_ROOT" \
        >"$WORK/logs/$service-build.log" 2>&1 ||
        die "build of $service, see $WORK/logs/$service-build.log"
    echo "$service: built $image ($(bah images --format '{{.Size}}' "$image")," \
        "$((SECONDS - started)) s)"
}

# Prepares an OCI bundle (in $BUNDLE) that runs $image as ECS runs the task: the image's user,
# working directory, command and environment (the task's environment on top), a read-only root
# filesystem, and the task's bind mounts ($TASK_MOUNTS). Host network: the services reach this
# machine's PostgreSQL and Redis on 127.0.0.1.
# Arguments: name, image, command as JSON ("" for the image's), KEY=VALUE...
prepare() {
    local name=$1 image=$2 command=$3
    shift 3
    BUNDLE=$WORK/containers/$name
    stop "$name"
    PREPARED+=("$name")
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE/volumes"
    local container rootfs
    container=$(bah from --pull=never --name "momentum-check-$name" "$image")
    rootfs=$(bah mount "$container")
    bah inspect --type image "$image" >"$BUNDLE/image.json"
    (cd "$BUNDLE" && runc spec)
    TASK_MOUNTS=$TASK_MOUNTS python3 - "$BUNDLE" "$rootfs" "$command" "$@" <<'PY'
import json
import os
import subprocess
import sys
from pathlib import Path

bundle, rootfs, command, *task_environment = sys.argv[1:]
bundle = Path(bundle)
image = json.loads((bundle / "image.json").read_text())["Docker"]["config"]
spec = json.loads((bundle / "config.json").read_text())
uid, _, gid = image["User"].partition(":")
assert uid.isdigit() and gid.isdigit(), f"USER should be numeric uid:gid, is {image['User']!r}"
environment = dict(line.split("=", 1) for line in image["Env"])
environment |= dict(line.split("=", 1) for line in task_environment)
spec["process"] |= {
    "terminal": False,
    "user": {"uid": int(uid), "gid": int(gid)},
    "cwd": image["WorkingDir"] or "/",
    "env": [f"{key}={value}" for key, value in environment.items()],
    "args": (image.get("Entrypoint") or []) + (json.loads(command) if command else image["Cmd"]),
}
spec["root"] = {"path": rootfs, "readonly": True}
spec["hostname"] = bundle.name
# No network namespace: the host's. sysfs cannot be mounted without one, and nothing needs it.
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/sys")]
# ECS's CPU and memory limits are not what is checked here.
spec["linux"].pop("resources", None)
# The task's bind mounts, as Fargate makes them: where the image declares the same path a
# VOLUME, the mount starts as a copy of that directory with its owner and mode; elsewhere it is
# an empty directory owned by root, mode 0755.
volumes = []
for index, path in enumerate(os.environ["TASK_MOUNTS"].split()):
    volume = bundle / "volumes" / str(index)
    volume.mkdir(mode=0o755)
    source = f"{rootfs}{path}"
    if path in (image.get("Volumes") or {}):
        subprocess.run(["cp", "-a", f"{source}/.", str(volume)], check=True)
        subprocess.run(["chown", f"--reference={source}", str(volume)], check=True)
        subprocess.run(["chmod", f"--reference={source}", str(volume)], check=True)
    spec["mounts"].append(
        {"destination": path, "type": "bind", "source": str(volume),
         "options": ["rbind", "rw", "nosuid", "nodev"]}
    )
    volumes.append(f"{volume}\t{path}\n")
(bundle / "config.json").write_text(json.dumps(spec, indent=1))
# What the shell needs from the image, in files it reads without a JSON parser.
(bundle / "user").write_text(image["User"])
(bundle / "volumes.tsv").write_text("".join(volumes))
test = (image.get("Healthcheck") or {}).get("Test") or ["NONE"]
assert test[0] in {"CMD", "NONE"}, f"HEALTHCHECK should use the exec form: {test}"
(bundle / "healthcheck").write_text("".join(f"{arg}\0" for arg in test[1:]))
PY
}

stop() {
    local id=momentum-check-$1
    if runc state "$id" >/dev/null 2>&1; then
        runc kill "$id" TERM 2>/dev/null || true
        for _ in $(seq 20); do
            runc state "$id" 2>/dev/null | grep -q '"status": "running"' || break
            sleep 0.5
        done
        runc delete --force "$id" >/dev/null 2>&1 || true
    fi
    bah rm "$id" >/dev/null 2>&1 || true
}

# Runs a container to completion (the migration task).
run_to_completion() {
    local name=$1
    prepare "$@"
    runc run --bundle "$BUNDLE" "momentum-check-$name" >"$WORK/logs/$name.log" 2>&1 </dev/null ||
        die "$name failed, see $WORK/logs/$name.log"
    stop "$name"
}

in_container() {
    local name=$1
    shift
    runc exec --user "$(cat "$WORK/containers/$name/user")" "momentum-check-$name" "$@"
}

# The image's own HEALTHCHECK command, run inside the container.
image_health_check() {
    local -a check
    mapfile -d '' -t check <"$WORK/containers/$1/healthcheck"
    in_container "$1" "${check[@]}"
}

# Retries a command for up to a minute.
wait_for() {
    for _ in $(seq 60); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    return 1
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$API_PORT$1"; }

# "<path in the container> <owner> <mode>" for each volume, or each file written in them.
describe_volumes() {
    local volume path
    while IFS=$'\t' read -r volume path; do
        if [ "$1" = files ]; then
            (cd "$volume" && find . -type f -printf "$path/%P (%u:%g)\n")
        else
            stat -c "$path %u:%g %a" "$volume"
        fi
    done <"$BUNDLE/volumes.tsv" | paste -sd, - | sed 's/,/, /g'
}

# Starts one service as its ECS task would and checks that it serves.
start_and_check() {
    local service=$1
    prepare "$service" "localhost/momentum-$service:image-check" "" "${TASK_ENVIRONMENT[@]}" \
        "MOMENTUM_SERVICE_NAME=momentum-$service"
    runc run --bundle "$BUNDLE" "momentum-check-$service" >"$WORK/logs/$service.log" 2>&1 \
        </dev/null &
    wait_for runc state "momentum-check-$service" ||
        die "$service exited at start, see $WORK/logs/$service.log"
    echo "$service: container started as $(cat "$BUNDLE/user"), read-only root," \
        "mounts $(describe_volumes dirs)"
    # A write outside the volumes must fail as it would on Fargate.
    in_container "$service" python -c '
import errno, sys
try:
    open("/app/write-probe", "w")
except OSError as error:
    sys.exit(0 if error.errno == errno.EROFS else 1)
sys.exit(1)' || die "$service: a write to /app did not fail with EROFS"
    if [ "$service" = api ]; then
        wait_for http_ok /health/live ||
            die "api: /health/live did not answer, see $WORK/logs/$service.log"
        http_ok /health/ready || die "api: /health/ready failed, see $WORK/logs/$service.log"
        echo "$service: health OK: GET /health/live 200, GET /health/ready 200 (port $API_PORT)"
    else
        wait_for image_health_check "$service" ||
            die "$service: its HEALTHCHECK kept failing, see $WORK/logs/$service.log"
        echo "$service: health OK: its HEALTHCHECK" \
            "($(tr '\0' ' ' <"$BUNDLE/healthcheck" | sed 's/ $//')) exited 0"
    fi
    runc state "momentum-check-$service" | grep -q '"status": "running"' ||
        die "$service stopped, see $WORK/logs/$service.log"
    echo "$service: wrote $(describe_volumes files)"
}

cleanup() {
    local name
    for name in "${PREPARED[@]}"; do
        stop "$name"
    done
    if [ -f "$WORK/redis.pid" ]; then
        kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
        rm -f "$WORK/redis.pid"
    fi
    sql "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" || true
}

sql() { PGOPTIONS='-c client_min_messages=warning' psql -qX "$POSTGRES_URL/postgres" -c "$1"; }

main() {
    local started=$SECONDS
    require_tools
    mkdir -p "$WORK/logs" "$WORK/containers"
    python_stand_in
    local uv_image service
    uv_image=$(uv_stand_in)
    # The API image is built in any case: the migration task runs it.
    for service in $(printf '%s\n' api "${SERVICES[@]}" | awk '!seen[$0]++'); do
        build "$service" "$uv_image"
    done
    # buildah 1.28 leaves a working container behind for a stage that only has a FROM.
    bah rm --all >/dev/null

    PREPARED=()
    trap cleanup EXIT
    sql "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)"
    sql "CREATE DATABASE $DATABASE"
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --daemonize yes \
            --pidfile "$WORK/redis.pid" >/dev/null
        wait_for redis-cli -p "$REDIS_PORT" ping || die "redis-server on $REDIS_PORT"
    fi
    # The environment the task definitions give, with the providers that need no AWS account.
    TASK_ENVIRONMENT=(
        MOMENTUM_ENV=dev
        "MOMENTUM_DATA_DIR=$TASK_DATA_DIR"
        "MOMENTUM_DATABASE_URL=$POSTGRES_URL/$DATABASE"
        "MOMENTUM_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
        MOMENTUM_API_HOST=127.0.0.1
        "MOMENTUM_API_PORT=$API_PORT"
        MOMENTUM_LLM_PROVIDER=offline
        MOMENTUM_VIDEO_PROVIDER=local
        MOMENTUM_STORAGE_BACKEND=local
    )
    # The migration task runs the API image, as the deploy does.
    run_to_completion migrate localhost/momentum-api:image-check \
        '["python", "-m", "momentum_domain.migrations", "upgrade"]' "${TASK_ENVIRONMENT[@]}"
    echo "migrate: python -m momentum_domain.migrations upgrade in the api image exited 0"
    for service in "${SERVICES[@]}"; do
        start_and_check "$service"
    done
    echo "${#SERVICES[@]} image(s) built, started and healthy in $((SECONDS - started)) s"
}

main
