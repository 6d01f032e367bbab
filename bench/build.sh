#!/usr/bin/env bash
# Build benchmark (issue 7's targets), on this machine, side by side:
#   - a cold build (no cache) of a small 4-step Dockerfile:
#       FROM busybox; RUN; COPY; RUN
#   - a fully cached rebuild of the same
#   - two cold builds giving the same image digest (reproducibility)
# for kiln, docker's legacy builder and BuildKit (its own dockerd 20.10 on a
# temp root: no bridge, no iptables; BuildKit resolves FROM through a
# registry, so the base goes to a local docker-registry first), and podman
# (its own storage root). Every builder runs its RUN steps with
# `--network none`, the same work for all.
# Needs root, hyperfine and busybox-static (installed when missing); docker,
# docker-registry and podman are measured when installed. Env: KILN (default
# target/release/kiln, built when unset), RUNS (10), PEERS=0 to skip the
# peers.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
PEERS=${PEERS:-1}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine
[ -x /bin/busybox ] || apt-get install -y -qq busybox-static
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")
DOCKER=/usr/bin/docker # Debian's 20.10 CLI: it still has the legacy builder

work=$(mktemp -d /tmp/kiln-bench-build.XXXXXX)
sock=$work/exec/kiln.sock
dsock=$work/dexec/docker.sock
pid="" dpid="" rpid=""
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    [ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,droot,dexec,proot,prun,ctx,bb/bin,reg}
echo '{}' >"$work/daemon.json"
"$KILN" daemon --root "$work/root" --exec-root "$work/exec" -H "unix://$sock" \
    --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$sock" "$@"; }

# The base: a busybox root file system.
cp /bin/busybox "$work/bb/bin/busybox"
for tool in sh echo cat ls true; do ln -s busybox "$work/bb/bin/$tool"; done
tar -C "$work/bb" -cf "$work/bb.tar" .
kiln import --change 'CMD ["sh"]' "$work/bb.tar" busybox:bench >/dev/null
kiln save -o "$work/busybox.tar" busybox:bench

ctx=$work/ctx
echo "hello from the context" >"$ctx/file.txt"
dockerfile() {
    cat <<EOF
FROM $1
RUN echo one > /one
COPY file.txt /file.txt
RUN cat /file.txt /one > /both
EOF
}
dockerfile busybox:bench >"$ctx/Dockerfile"

median_ms() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 1))" "$1"; }
kb="$KILN -H unix://$sock build -q --network none"
hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/kcold.json" \
    "$kb --no-cache -t bench:cold $ctx" >&2
hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/kwarm.json" \
    "$kb -t bench:warm $ctx" >&2
kcold=$(median_ms "$work/kcold.json")
kwarm=$(median_ms "$work/kwarm.json")
k1=$($kb --no-cache "$ctx")
k2=$($kb --no-cache "$ctx")

legacy_cold="" legacy_warm="" bk_cold="" bk_warm="" pcold="" pwarm="" dsame="" bsame="" psame=""
if [ "$PEERS" = 1 ] && command -v dockerd >/dev/null && [ -x "$DOCKER" ]; then
    echo '{}' >"$work/dockerd.json"
    dockerd --config-file "$work/dockerd.json" --data-root "$work/droot" \
        --exec-root "$work/dexec" --pidfile "$work/dexec/docker.pid" -H "unix://$dsock" \
        --bridge none --iptables=false --ip6tables=false --ip-masq=false \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 300); do $DOCKER -H "unix://$dsock" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker="$DOCKER -H unix://$dsock"
    $docker load -q -i "$work/busybox.tar" >/dev/null
    db="$docker build -q --network none"
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/lcold.json" \
        "DOCKER_BUILDKIT=0 $db --no-cache -t bench:cold $ctx" >&2
    hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/lwarm.json" \
        "DOCKER_BUILDKIT=0 $db -t bench:warm $ctx" >&2
    legacy_cold=$(median_ms "$work/lcold.json")
    legacy_warm=$(median_ms "$work/lwarm.json")
    d1=$(DOCKER_BUILDKIT=0 $db --no-cache "$ctx")
    d2=$(DOCKER_BUILDKIT=0 $db --no-cache "$ctx")
    dsame=$([ "$d1" = "$d2" ] && echo yes || echo no)
    if command -v docker-registry >/dev/null; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/reg
http:
  addr: 127.0.0.1:$port
EOF
        docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
        rpid=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
        $docker tag busybox:bench "127.0.0.1:$port/busybox:bench"
        $docker push -q "127.0.0.1:$port/busybox:bench" >/dev/null
        mkdir -p "$work/bkctx"
        cp "$ctx/file.txt" "$work/bkctx/"
        dockerfile "127.0.0.1:$port/busybox:bench" >"$work/bkctx/Dockerfile"
        hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/bcold.json" \
            "DOCKER_BUILDKIT=1 SOURCE_DATE_EPOCH=0 $db --no-cache -t bench:bk $work/bkctx" >&2
        hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/bwarm.json" \
            "DOCKER_BUILDKIT=1 SOURCE_DATE_EPOCH=0 $db -t bench:bk $work/bkctx" >&2
        bk_cold=$(median_ms "$work/bcold.json")
        bk_warm=$(median_ms "$work/bwarm.json")
        b1=$(DOCKER_BUILDKIT=1 SOURCE_DATE_EPOCH=0 $db --no-cache "$work/bkctx" 2>/dev/null | tail -1)
        b2=$(DOCKER_BUILDKIT=1 SOURCE_DATE_EPOCH=0 $db --no-cache "$work/bkctx" 2>/dev/null | tail -1)
        bsame=$([ "$b1" = "$b2" ] && echo yes || echo no)
    fi
fi
if [ "$PEERS" = 1 ] && command -v podman >/dev/null; then
    pod="podman --root $work/proot --runroot $work/prun --storage-driver overlay"
    $pod load -q -i "$work/busybox.tar" >/dev/null
    $pod tag busybox:bench localhost/busybox:bench 2>/dev/null || true
    # crun refuses this host's hybrid cgroups: runc, as in bench/containers.sh.
    pb="$pod build -q --network none --pull=never --runtime runc"
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/pcold.json" \
        "$pb --no-cache -t bench:cold $ctx" >&2
    hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/pwarm.json" \
        "$pb -t bench:warm $ctx" >&2
    pcold=$(median_ms "$work/pcold.json")
    pwarm=$(median_ms "$work/pwarm.json")
    p1=$($pb --no-cache "$ctx" | tail -1)
    p2=$($pb --no-cache "$ctx" | tail -1)
    psame=$([ "$p1" = "$p2" ] && echo yes || echo no)
    $pod rmi -af >/dev/null 2>&1 || true
fi

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
fastest() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:] if x]; print(min(v) if v else '')" "$@"; }
echo
echo "4-step build (FROM busybox; RUN; COPY; RUN), medians of $RUNS:"
printf '  %-16s %10s %10s %14s\n' builder "cold ms" "cached ms" "reproducible"
printf '  %-16s %10s %10s %14s\n' kiln "$kcold" "$kwarm" "$([ "$k1" = "$k2" ] && echo yes || echo no)"
[ -n "$legacy_cold" ] && printf '  %-16s %10s %10s %14s\n' "docker legacy" "$legacy_cold" "$legacy_warm" "$dsame"
[ -n "$bk_cold" ] && printf '  %-16s %10s %10s %14s\n' "docker buildkit" "$bk_cold" "$bk_warm" "$bsame"
[ -n "$pcold" ] && printf '  %-16s %10s %10s %14s\n' podman "$pcold" "$pwarm" "$psame"
best_cold=$(fastest "$legacy_cold" "$bk_cold")
best_warm=$(fastest "$legacy_warm" "$bk_warm")
if [ -n "$best_cold" ]; then
    echo "kiln cold / faster docker builder: $(ratio "$kcold" "$best_cold") (target <= 0.3)"
    echo "kiln cached / faster docker builder: $(ratio "$kwarm" "$best_warm") (target <= 0.5)"
else
    echo "docker: skipped (PEERS=0, or no dockerd and docker 20.10 CLI)"
fi
if [ -n "$pcold" ]; then
    echo "kiln cold / podman: $(ratio "$kcold" "$pcold"); cached: $(ratio "$kwarm" "$pwarm")"
fi
