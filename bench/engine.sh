#!/usr/bin/env bash
# Engine benchmark (issue 3's targets), on this machine:
#   - `kiln images` round trip (CLI start to exit) with 100 images
#   - the daemon's resident memory, idle, after those imports
#   - `load` of one ~170 MB image archive (`docker save` format), side by
#     side: kiln, docker (its own dockerd on a temp root: no bridge, no
#     iptables) and podman (its own storage root). Each run starts with the
#     image removed, so every load stores and unpacks the whole image.
# Needs root and hyperfine (installed when missing); docker and podman are
# measured when installed. Env: KILN (default target/release/kiln, built
# when unset), IMAGES (100), RUNS (10), ARCHIVE (a `docker save` tar of one
# image to load instead of the generated one), PEERS=0 to skip docker and
# podman.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-100}
RUNS=${RUNS:-10}
PEERS=${PEERS:-1}
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
dsock=$work/dexec/docker.sock
pid="" dpid=""
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,src,droot,dexec,proot,prun}
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

# The archive: one image of ~170 MB, like a slim Python base: 40 files of
# 4 MiB of random bytes (nothing compresses or dedupes) and 2,000 small
# files (per-file costs), saved by kiln in `docker save` format.
archive=${ARCHIVE:-$work/archive.tar}
if [ -z "${ARCHIVE:-}" ]; then
    echo "making a ~170 MB image archive" >&2
    big=$work/big
    mkdir -p "$big/data" "$big/lib"
    for i in $(seq 40); do head -c 4194304 /dev/urandom >"$big/data/blob$i"; done
    for i in $(seq 2000); do head -c 4096 /dev/urandom >"$big/lib/f$i"; done
    tar -C "$big" -cf "$work/big.tar" .
    kiln import "$work/big.tar" bench/load:1 >/dev/null
    kiln save -o "$archive" bench/load:1
    kiln rmi bench/load:1 >/dev/null
    rm -rf "$big" "$work/big.tar"
fi
# What the archive loads as, to remove it again before each run.
loaded=$(kiln load -q -i "$archive" | sed -n 's/^Loaded image: //p; s/^Loaded image ID: //p' | head -1)
hyperfine --runs "$RUNS" --export-json "$work/load.json" \
    --prepare "$KILN -H unix://$sock rmi -f $loaded >/dev/null 2>&1 || true" \
    "$KILN -H unix://$sock load -q -i $archive" >&2
load_ms=$(median_ms "$work/load.json")

docker_ms="" podman_ms=""
if [ "$PEERS" = 1 ] && command -v dockerd >/dev/null && command -v docker >/dev/null; then
    # dockerd on its own root and socket: no bridge, no firewall rules.
    echo '{}' >"$work/dockerd.json"
    dockerd --config-file "$work/dockerd.json" --data-root "$work/droot" \
        --exec-root "$work/dexec" --pidfile "$work/dexec/docker.pid" -H "unix://$dsock" \
        --bridge none --iptables=false --ip6tables=false --ip-masq=false \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 300); do docker -H "unix://$dsock" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker="docker -H unix://$dsock"
    hyperfine --runs "$RUNS" --export-json "$work/dload.json" \
        --prepare "$docker rmi -f $loaded >/dev/null 2>&1 || true" \
        "$docker load -q -i $archive" >&2
    docker_ms=$(median_ms "$work/dload.json")
fi
if [ "$PEERS" = 1 ] && command -v podman >/dev/null; then
    pod="podman --root $work/proot --runroot $work/prun --storage-driver overlay"
    hyperfine --runs "$RUNS" --export-json "$work/pload.json" \
        --prepare "$pod rmi -af >/dev/null 2>&1 || true" \
        "$pod load -q -i $archive" >&2
    podman_ms=$(median_ms "$work/pload.json")
    $pod rmi -af >/dev/null 2>&1 || true
fi

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
echo
echo "kiln images with $IMAGES images: ${images_ms} ms (target < 10 ms)"
echo "daemon RSS after the imports: $((rss_kb / 1024)) MiB (target < 20 MiB)"
echo "load of a $(du -h "$archive" | cut -f1) archive (median of $RUNS, image removed before each):"
echo "  kiln   ${load_ms} ms"
if [ -n "$docker_ms" ]; then
    echo "  docker ${docker_ms} ms  -> kiln/docker $(ratio "$load_ms" "$docker_ms") (target <= 0.5)"
else
    echo "  docker: skipped (PEERS=0, or no dockerd and docker CLI)"
fi
if [ -n "$podman_ms" ]; then
    echo "  podman ${podman_ms} ms  -> kiln/podman $(ratio "$load_ms" "$podman_ms")"
else
    echo "  podman: skipped (PEERS=0, or no podman)"
fi
