#!/usr/bin/env bash
# Registry benchmark (issue 5's targets), on this machine, against Debian's
# docker-registry on loopback ports:
#   - push of a Python-like image (~170 MB unpacked, ~70 MB gzip, 3
#     layers: the host's Python 3 standard library, its dist-packages and a
#     slice of its shared libraries) to an empty registry (wiped and
#     restarted before each run): kiln push, docker push (its own dockerd
#     on a temp root: no bridge, no iptables) and skopeo copy (from a dir:
#     the gzip blobs as they are, a floor for the upload itself);
#   - pull of the same image from a registry into an empty store, until
#     `run` can use it (layers unpacked): kiln pull, docker pull and podman
#     pull (its own storage root), the image removed before each run.
# The image is built by kiln (FROM scratch, three COPY steps), then copied
# by skopeo into a seed registry, which compresses its layers with gzip as
# docker does; every client pulls it from there, so each store holds the
# same gzip blobs.
# Needs root, hyperfine, docker-registry and skopeo (installed when
# missing); docker and podman are measured when installed. Env: KILN
# (default target/release/kiln, built when unset), RUNS (5), PEERS=0 to
# skip docker, podman and skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
PEERS=${PEERS:-1}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine
command -v docker-registry >/dev/null || apt-get install -y -qq docker-registry
command -v skopeo >/dev/null || apt-get install -y -qq skopeo
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")
DOCKER=/usr/bin/docker # Debian's 20.10 CLI, as bench/build.sh uses

work=$(mktemp -d /tmp/kiln-bench-registry.XXXXXX)
sock=$work/exec/kiln.sock
dsock=$work/dexec/docker.sock
pid="" dpid="" spid=""
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    [ -f "$work/target.pid" ] && kill -TERM "$(cat "$work/target.pid")" 2>/dev/null
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,droot,dexec,proot,prun,ctx,seed,target}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
registry_config() { # storage port
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$1" "$2"
}
wait_port() { for _ in $(seq 200); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return; sleep 0.05; done; }

# The seed registry, which every pull reads from.
seed_port=$(free_port)
registry_config "$work/seed" "$seed_port" >"$work/seed.yml"
docker-registry serve "$work/seed.yml" >"$work/seed.log" 2>&1 &
spid=$!
wait_port "$seed_port"
seed=127.0.0.1:$seed_port

# The push target: wiped and restarted by fresh-target.sh before each push.
target_port=$(free_port)
target=127.0.0.1:$target_port
registry_config "$work/target" "$target_port" >"$work/target.yml"
cat >"$work/fresh-target.sh" <<EOF
#!/bin/sh
[ -f $work/target.pid ] && kill -TERM \$(cat $work/target.pid) 2>/dev/null && sleep 0.2
rm -rf $work/target && mkdir -p $work/target
docker-registry serve $work/target.yml >>$work/target.log 2>&1 &
echo \$! >$work/target.pid
for i in \$(seq 200); do curl -sf http://$target/v2/ >/dev/null && exit 0; sleep 0.05; done
exit 1
EOF
chmod +x "$work/fresh-target.sh"

echo '{}' >"$work/daemon.json"
"$KILN" daemon --root "$work/root" --exec-root "$work/exec" -H "unix://$sock" \
    --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$sock" "$@"; }

echo "building the image and seeding the registry" >&2
ctx=$work/ctx
cp -a /usr/lib/python3.11 "$ctx/stdlib"
cp -a /usr/lib/python3 "$ctx/dist"
mkdir -p "$ctx/libs"
# Shared libraries, largest last, up to ~70 MB.
total=0
while read -r size file; do
    [ $((total + size)) -gt 70000000 ] && continue
    cp "$file" "$ctx/libs/"
    total=$((total + size))
done < <(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -printf '%s %p\n' | sort -n)
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY stdlib /usr/lib/python3.11
COPY dist /usr/lib/python3
COPY libs /usr/lib/x86_64-linux-gnu
EOF
kiln build -q -t bench/py:src "$ctx" >/dev/null
kiln save -o "$work/py.tar" bench/py:src
kiln rmi bench/py:src >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "docker-archive:$work/py.tar" "docker://$seed/bench/py:1"
skopeo --insecure-policy copy -q --src-tls-verify=false \
    "docker://$seed/bench/py:1" "dir:$work/pydir"
rm -f "$work/py.tar"
gzip_mb=$(du -cm "$work"/pydir/* | tail -1 | cut -f1)
kiln pull -q "$seed/bench/py:1" >/dev/null
kiln tag "$seed/bench/py:1" "$target/bench/py:1"
unpacked_mb=$(du -sm "$ctx" | cut -f1)

median_ms() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 1))" "$1"; }

hyperfine --runs "$RUNS" --export-json "$work/kpush.json" --prepare "$work/fresh-target.sh" \
    "$KILN -H unix://$sock push -q $target/bench/py:1" >&2
kpush=$(median_ms "$work/kpush.json")
# By id, with every reference (the pushes added name@digest ones), so
# that each pull starts from an empty store.
kid=$(kiln image inspect --format '{{.Id}}' "$seed/bench/py:1")
hyperfine --runs "$RUNS" --export-json "$work/kpull.json" \
    --prepare "$KILN -H unix://$sock rmi -f $kid >/dev/null 2>&1 || true" \
    "$KILN -H unix://$sock pull -q $seed/bench/py:1" >&2
kpull=$(median_ms "$work/kpull.json")

dpush="" dpull="" spush="" ppull=""
if [ "$PEERS" = 1 ] && command -v dockerd >/dev/null && [ -x "$DOCKER" ]; then
    echo '{}' >"$work/dockerd.json"
    dockerd --config-file "$work/dockerd.json" --data-root "$work/droot" \
        --exec-root "$work/dexec" --pidfile "$work/dexec/docker.pid" -H "unix://$dsock" \
        --bridge none --iptables=false --ip6tables=false --ip-masq=false \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 300); do $DOCKER -H "unix://$dsock" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker="$DOCKER -H unix://$dsock"
    $docker pull -q "$seed/bench/py:1" >/dev/null
    $docker tag "$seed/bench/py:1" "$target/bench/py:1"
    hyperfine --runs "$RUNS" --export-json "$work/dpush.json" --prepare "$work/fresh-target.sh" \
        "$docker push -q $target/bench/py:1" >&2
    dpush=$(median_ms "$work/dpush.json")
    did=$($docker image inspect --format '{{.Id}}' "$seed/bench/py:1")
    hyperfine --runs "$RUNS" --export-json "$work/dpull.json" \
        --prepare "$docker rmi -f $did >/dev/null 2>&1 || true" \
        "$docker pull -q $seed/bench/py:1" >&2
    dpull=$(median_ms "$work/dpull.json")
fi
if [ "$PEERS" = 1 ]; then
    hyperfine --runs "$RUNS" --export-json "$work/spush.json" --prepare "$work/fresh-target.sh" \
        "skopeo --insecure-policy copy -q --dest-tls-verify=false dir:$work/pydir docker://$target/bench/py:1" >&2
    spush=$(median_ms "$work/spush.json")
fi
if [ "$PEERS" = 1 ] && command -v podman >/dev/null; then
    pod="podman --root $work/proot --runroot $work/prun --storage-driver overlay"
    hyperfine --runs "$RUNS" --export-json "$work/ppull.json" \
        --prepare "$pod rmi -af >/dev/null 2>&1 || true" \
        "$pod pull -q --tls-verify=false $seed/bench/py:1" >&2
    ppull=$(median_ms "$work/ppull.json")
    $pod rmi -af >/dev/null 2>&1 || true
fi

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
echo
echo "image: ${unpacked_mb} MB unpacked, ${gzip_mb} MB of gzip blobs, 3 layers; medians of $RUNS"
echo "push to an empty registry:"
echo "  kiln   ${kpush} ms"
if [ -n "$dpush" ]; then
    echo "  docker ${dpush} ms  -> kiln/docker $(ratio "$kpush" "$dpush") (target <= 0.5)"
else
    echo "  docker: skipped (PEERS=0, or no dockerd and docker 20.10 CLI)"
fi
[ -n "$spush" ] && echo "  skopeo ${spush} ms  -> kiln/skopeo $(ratio "$kpush" "$spush") (skopeo copies the blobs as they are)"
echo "pull into an empty store (layers unpacked):"
echo "  kiln   ${kpull} ms"
if [ -n "$dpull" ]; then
    echo "  docker ${dpull} ms  -> kiln/docker $(ratio "$kpull" "$dpull") (target <= 0.5)"
else
    echo "  docker: skipped"
fi
if [ -n "$ppull" ]; then
    echo "  podman ${ppull} ms  -> kiln/podman $(ratio "$kpull" "$ppull") (target <= 0.5)"
else
    echo "  podman: skipped"
fi
