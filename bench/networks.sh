#!/usr/bin/env bash
# Network benchmark (issue 6's targets), on this machine:
#   - HTTP throughput through a published port on 127.0.0.1 (wrk, 5 s,
#     busybox httpd in the container) against the same server run on the
#     host: kernel DNAT, no proxy process
#   - `kiln run --rm bb true` on the default bridge against `--network none`
# The daemon runs on a temp root with its own bridge (`kbench<random>`) on
# an unrouted test subnet (198.18.0.0/15), and removes it, its veths and
# Kiln's nftables table when it stops. Needs root, wrk, hyperfine and
# busybox-static (installed when missing). Env: KILN (default
# target/release/kiln, built when unset), RUNS (20), SECONDS_WRK (5).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
SECONDS_WRK=${SECONDS_WRK:-5}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine
command -v wrk >/dev/null || apt-get install -y -qq wrk
command -v nft >/dev/null || apt-get install -y -qq nftables
[ -x /bin/busybox ] || apt-get install -y -qq busybox-static
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")

work=$(mktemp -d /tmp/kiln-bench-net.XXXXXX)
sock=$work/exec/kiln.sock
suffix=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
octet=$((RANDOM % 250 + 1))
pid="" hpid=""
cleanup() {
    set +e
    [ -n "$hpid" ] && kill "$hpid" 2>/dev/null
    if [ -n "$pid" ]; then
        "$KILN" -H "unix://$sock" rm -f web >/dev/null 2>&1
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    fi
    # The daemon keeps its bridge when a container was still being released
    # as it stopped: this run's bridge is the bench's own, so it goes here.
    ip link del "kbench$suffix" 2>/dev/null
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,bb/bin,bb/www,host-www}
cat >"$work/daemon.json" <<EOF
{"bridge": "kbench$suffix", "bip": "198.18.$octet.1/24"}
EOF
"$KILN" daemon --root "$work/root" --exec-root "$work/exec" -H "unix://$sock" \
    --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$sock" "$@"; }

# A busybox image serving a 4 KiB page, and the same page on the host.
cp /bin/busybox "$work/bb/bin/busybox"
for tool in sh true httpd; do ln -s busybox "$work/bb/bin/$tool"; done
head -c 4096 /dev/zero | tr '\0' 'k' >"$work/bb/www/index.html"
cp "$work/bb/www/index.html" "$work/host-www/index.html"
tar -C "$work/bb" -cf "$work/bb.tar" .
kiln import --change 'CMD ["sh"]' "$work/bb.tar" bb:bench >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port)
hport=$(free_port)
kiln run -d --name web -p "127.0.0.1:$cport:80" bb:bench httpd -f -p 80 -h /www >/dev/null
/bin/busybox httpd -f -p "127.0.0.1:$hport" -h "$work/host-www" &
hpid=$!
for port in "$cport" "$hport"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/index.html" >/dev/null && break; sleep 0.05; done
done

rps() { wrk -t2 -c32 -d"${SECONDS_WRK}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "wrk through the published port, then on the host" >&2
kiln_rps=$(rps "http://127.0.0.1:$cport/index.html")
host_rps=$(rps "http://127.0.0.1:$hport/index.html")

# Two rounds of each, alternating, and the medians of all their runs: a
# machine whose load drifts meanwhile then weighs on both alike. Runs of
# one kind follow each other, so each pays for what the one before left
# to the kernel (deleting its veth, NAT's walk of the connection table).
# On a busy machine a run varies by 10 ms or more: raise RUNS (60+).
half=$(((RUNS + 1) / 2))
for round in 1 2; do
    hyperfine -N --warmup 3 --runs "$half" --export-json "$work/bridge$round.json" \
        "$KILN -H unix://$sock run --rm bb:bench true" >&2
    hyperfine -N --warmup 3 --runs "$half" --export-json "$work/none$round.json" \
        "$KILN -H unix://$sock run --rm --network none bb:bench true" >&2
done
median_ms() {
    python3 -c "import json,statistics,sys; print(round(statistics.median(t for f in sys.argv[1:] for t in json.load(open(f))['results'][0]['times'])*1000, 1))" "$@"
}
bridge_ms=$(median_ms "$work/bridge1.json" "$work/bridge2.json")
none_ms=$(median_ms "$work/none1.json" "$work/none2.json")

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
echo
echo "HTTP through a published port on 127.0.0.1 (wrk -t2 -c32, ${SECONDS_WRK} s, 4 KiB page):"
echo "  kiln -p 127.0.0.1:$cport:80  ${kiln_rps} req/s"
echo "  the same server on the host  ${host_rps} req/s"
echo "  -> kiln/host $(ratio "$kiln_rps" "$host_rps") (target >= 0.95)"
echo "kiln run --rm bb true, medians of $((2 * half)):"
echo "  default bridge   ${bridge_ms} ms"
echo "  --network none   ${none_ms} ms"
echo "  -> the bridge costs $(python3 -c "import sys; print(round(float(sys.argv[1])-float(sys.argv[2]),1))" "$bridge_ms" "$none_ms") ms (target <= 10 ms)"
