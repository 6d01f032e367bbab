#!/usr/bin/env bash
# The ML workflow end to end, on a fresh Debian machine (`make demo`):
# installs Kiln, bootstraps an offline Python base image from Debian
# packages, builds this example (pinned requirements from the package
# index, the training scripts), trains with a data volume, and prints where
# the model landed and its score. Run as root (Kiln's daemon runs
# containers). Env: KILN (a kiln binary to use instead of installing one),
# PIP_INDEX_URL (another package index).
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (sudo make demo)" >&2
    exit 1
fi
need() { command -v "$1" >/dev/null || apt-get install -y -qq "$2" >/dev/null; }
need mmdebstrap mmdebstrap
need python3 python3
if [ -z "${KILN:-}" ]; then
    if ! command -v kiln >/dev/null; then
        echo "==> installing kiln (cargo install)"
        (cd ../.. && make install)
    fi
    KILN=kiln
fi
kiln() { "$KILN" "$@"; }

if ! kiln image inspect python:3.11-slim >/dev/null 2>&1; then
    echo "==> bootstrapping the Python base image from Debian packages (about a minute)"
    kiln image bootstrap debian:bookworm --include python3,python3-pip -t python:3.11-slim
fi

build_args=()
if [ -n "${PIP_INDEX_URL:-}" ]; then
    build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
fi
# CAs the host added to its trust store (a proxy that re-signs TLS, as in
# many companies): passed as a secret, so they never enter the image.
extra_cas=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort)
if [ -n "$extra_cas" ]; then
    bundle=$(mktemp)
    trap 'rm -f "$bundle"' EXIT
    # shellcheck disable=SC2086
    cat $extra_cas >"$bundle"
    build_args+=(--secret "id=pipcert,src=$bundle")
fi
echo "==> building mlops-project:latest"
kiln build "${build_args[@]}" -t mlops-project:latest .

echo "==> training, with ./data mounted at /app/data"
mkdir -p data
kiln run --rm -v "$PWD/data:/app/data" mlops-project:latest

model=$PWD/data/model.json
score=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["r2"], 4))' "$model")
echo "==> the model is in $model (r2 score $score)"
echo "    image: $(kiln image inspect --format '{{.Id}}' mlops-project:latest)"
echo "    rebuild with --no-cache and the digest stays the same: kiln build --no-cache -t mlops-project:latest $PWD"
