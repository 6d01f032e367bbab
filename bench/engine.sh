#!/usr/bin/env bash
# Engine benchmark (issue 3's targets), on this machine:
#   - `kiln images` round trip (CLI start to exit) with 100 images
#   - the daemon's resident memory, idle, after those imports
#   - `kiln load` of an image archive, side by side with `docker load` of the
#     same file when a dockerd answers at $DOCKER_HOST (skipped otherwise)
# Needs root and hyperfine (installed when missing). Env: KILN (default
# target/release/kiln, built when unset), IMAGES (100), ARCHIVE (a `docker
# save` tar to load; default: one made from the 100 imports).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-100}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")

work=$(mktemp -d /tmp/kiln-bench-engine.XXXXXX)
sock=$work/exec/kiln.sock
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,src}
echo '{}' >"$work/daemon.json"
"$KILN" daemon --root "$work/root" --exec-root "$work/exec" -H "unix://$sock" \
    --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$sock" "$@"; }

echo "importing $IMAGES small images" >&2
for i in $(seq "$IMAGES"); do
    echo "$i" >"$work/src/file"
    tar -C "$work/src" -cf "$work/layer.tar" file
    kiln import "$work/layer.tar" "bench/img$i:latest" >/dev/null
done

hyperfine -N --warmup 5 --runs 50 --export-json "$work/images.json" "$KILN -H unix://$sock images" >&2
median_ms() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 2))" "$1"; }
images_ms=$(median_ms "$work/images.json")
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")

archive=${ARCHIVE:-$work/archive.tar}
[ -n "${ARCHIVE:-}" ] || kiln save -o "$archive" $(seq -f "bench/img%g:latest" 1 10)
load_kiln="$KILN -H unix://$sock load -q -i $archive"
hyperfine --warmup 1 --runs 10 --export-json "$work/load.json" "$load_kiln" >&2
load_ms=$(median_ms "$work/load.json")
docker_ms=""
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    hyperfine --warmup 1 --runs 10 --export-json "$work/dload.json" "docker load -q -i $archive" >&2
    docker_ms=$(median_ms "$work/dload.json")
fi

echo
echo "kiln images with $IMAGES images: ${images_ms} ms (target < 10 ms)"
echo "daemon RSS after the imports: $((rss_kb / 1024)) MiB (target < 20 MiB)"
echo "kiln load of $(du -h "$archive" | cut -f1) archive: ${load_ms} ms"
if [ -n "$docker_ms" ]; then
    python3 -c "import sys; print(f'docker load: {sys.argv[2]} ms; kiln/docker: {float(sys.argv[1])/float(sys.argv[2]):.2f} (target <= 0.5)')" "$load_ms" "$docker_ms"
else
    echo "docker load: skipped (no dockerd answers at ${DOCKER_HOST:-the default socket})"
fi
