#!/usr/bin/env bash
# Container benchmark (issue 4's targets), on this machine, side by side:
#   - `run --rm --network none bb true`: kiln, docker (its own dockerd on a
#     temp root, no bridge, no iptables) and podman (runc), same busybox image
#   - shim resident memory per idle container (kiln) and conmon's (podman)
#   - daemon CPU while 100 containers idle
#   - `kiln ps -a` with 500 containers
# Needs root, hyperfine, docker.io and podman (installed when missing).
# Env: KILN (default target/release/kiln, built when unset), RUNS (30),
# PEERS=0 to skip docker and podman.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
PEERS=${PEERS:-1}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
need() { command -v "$1" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2; }
need hyperfine hyperfine
need busybox busybox-static
if [ "$PEERS" = 1 ]; then
    need dockerd docker.io
    need podman podman
fi
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")

work=$(mktemp -d /tmp/kiln-bench-ctr.XXXXXX)
ksock=$work/kexec/kiln.sock
dsock=$work/dexec/docker.sock
kpid="" dpid=""
cleanup() {
    set +e
    if [ -n "$kpid" ]; then
        "$KILN" -H "unix://$ksock" ps -aq 2>/dev/null | xargs -r "$KILN" -H "unix://$ksock" rm -f >/dev/null 2>&1
        kill -TERM "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
    fi
    if [ -n "$dpid" ]; then
        DOCKER_HOST=unix://$dsock docker ps -aq | xargs -r env DOCKER_HOST=unix://$dsock docker rm -f >/dev/null 2>&1
        kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    fi
    if [ "$PEERS" = 1 ]; then
        podman --root "$work/proot" --runroot "$work/prun" rm -af >/dev/null 2>&1
        podman --root "$work/proot" --runroot "$work/prun" system reset -f >/dev/null 2>&1
    fi
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The image: a busybox-static rootfs.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work"/{kroot,kexec,droot,dexec}
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in sh true sleep echo cat; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/bb.tar" .

echo '{}' >"$work/daemon.json"
"$KILN" daemon --root "$work/kroot" --exec-root "$work/kexec" -H "unix://$ksock" \
    --config-file "$work/daemon.json" >"$work/kiln.log" 2>&1 &
kpid=$!
for _ in $(seq 100); do [ -S "$ksock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$ksock" "$@"; }
kiln import "$work/bb.tar" bb >/dev/null

median_ms() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 1))" "$1"; }

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$work/krun.json" \
    "$KILN -H unix://$ksock run --rm --network none bb true" >&2
kiln_ms=$(median_ms "$work/krun.json")

docker_ms="" podman_ms="" conmon_kb=""
if [ "$PEERS" = 1 ]; then
    # dockerd on its own root and socket: no bridge, no firewall rules.
    dockerd --data-root "$work/droot" --exec-root "$work/dexec" -H "unix://$dsock" \
        --pidfile "$work/dexec/docker.pid" --bridge none --iptables=false --ip-forward=false \
        --ip-masq=false --storage-driver overlay2 >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 200); do [ -S "$dsock" ] && break; sleep 0.1; done
    export DOCKER_HOST=unix://$dsock
    docker import "$work/bb.tar" bb >/dev/null
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/drun.json" \
        "docker run --rm --network none bb true" >&2
    docker_ms=$(median_ms "$work/drun.json")
    unset DOCKER_HOST

    # podman with runc and limits this host allows (see shared/ANCHORS.md).
    cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
EOF
    export CONTAINERS_CONF=$work/containers.conf
    pod="podman --root $work/proot --runroot $work/prun --runtime runc"
    $pod import "$work/bb.tar" bb >/dev/null
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/prun.json" \
        "$pod run --rm --network none bb true" >&2
    podman_ms=$(median_ms "$work/prun.json")
    $pod run -d --network none --name idle bb sleep 1000 >/dev/null
    sleep 1
    # conmon double-forks: the live one is the largest.
    conmon_kb=$(ps -o rss= -C conmon | sort -n | tail -1 | tr -d ' ')
    $pod rm -f idle >/dev/null
fi

# Idle containers: shim memory and daemon CPU.
echo "starting 100 idle containers" >&2
for i in $(seq 100); do kiln run -d --network none bb sleep 100000 >/dev/null; done
sleep 2
shim_rss=$(for p in $(pgrep -f "kiln shim"); do awk '/^VmRSS/ {print $2}' "/proc/$p/status"; done |
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
shim_pss=0
for p in $(pgrep -f "kiln shim"); do
    pss=$(awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    shim_pss=$((shim_pss + pss))
done
shims=$(pgrep -fc "kiln shim" || true)
ticks() { awk '{print $14 + $15}' "/proc/$kpid/stat"; }
t0=$(ticks)
sleep 10
t1=$(ticks)
idle_cpu_ms=$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))

echo "creating 400 more containers (500 in all)" >&2
for i in $(seq 400); do kiln create --network none bb true >/dev/null; done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/ps.json" "$KILN -H unix://$ksock ps -a" >&2
ps_ms=$(median_ms "$work/ps.json")

echo
echo "run --rm --network none bb true (median of $RUNS):"
echo "  kiln   ${kiln_ms} ms (target < 30 ms)"
if [ -n "$docker_ms" ]; then
    ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.3f}')" "$1" "$2"; }
    echo "  docker ${docker_ms} ms  -> kiln/docker $(ratio "$kiln_ms" "$docker_ms") (target <= 0.1)"
    echo "  podman ${podman_ms} ms  -> kiln/podman $(ratio "$kiln_ms" "$podman_ms") (target <= 0.1)"
fi
echo "idle shims: $shims; median RSS ${shim_rss} KiB; PSS in all $((shim_pss / 1024)) MiB, $((shim_pss / (shims > 0 ? shims : 1))) KiB each (target <= 1536 KiB)"
[ -n "$conmon_kb" ] && echo "  podman's conmon: RSS ${conmon_kb} KiB"
echo "daemon CPU over 10 s with $shims idle containers: ${idle_cpu_ms} ms"
echo "kiln ps -a with 500 containers: ${ps_ms} ms (target < 50 ms)"
