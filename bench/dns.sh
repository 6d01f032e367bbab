#!/usr/bin/env bash
# DNS benchmark (issue 6's target): 200 containers on one user-defined
# network; from inside one of them, every name is asked of the embedded
# resolver (127.0.0.11) over UDP, ROUNDS times, and each answer's round
# trip is timed (target: every name under 5 ms).
# The daemon runs on a temp root with its own default bridge and a user
# network on an unrouted test subnet (198.18.0.0/15); everything goes when
# the script ends. Needs root and busybox-static (installed when missing).
# Env: KILN (default target/release/kiln, built when unset), COUNT (200),
# ROUNDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-200}
ROUNDS=${ROUNDS:-5}
if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root" >&2
    exit 1
fi
[ -x /bin/busybox ] || apt-get install -y -qq busybox-static
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    cargo build --release -p kiln >&2
fi
KILN=$(realpath "$KILN")

work=$(mktemp -d /tmp/kiln-bench-dns.XXXXXX)
sock=$work/exec/kiln.sock
suffix=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
octet=$((RANDOM % 250 + 1))
pid=""
cleanup() {
    set +e
    if [ -n "$pid" ]; then
        "$KILN" -H "unix://$sock" ps -aq | xargs -r "$KILN" -H "unix://$sock" rm -f >/dev/null 2>&1
        "$KILN" -H "unix://$sock" network rm dnsbench >/dev/null 2>&1
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    fi
    ip link del "kbench$suffix" 2>/dev/null
    ip link del "kbdns$suffix" 2>/dev/null
    grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{root,exec,bb/bin}
cat >"$work/daemon.json" <<JSON
{"bridge": "kbench$suffix", "bip": "198.18.$octet.1/24"}
JSON
"$KILN" daemon --root "$work/root" --exec-root "$work/exec" -H "unix://$sock" \
    --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
kiln() { "$KILN" -H "unix://$sock" "$@"; }

cp /bin/busybox "$work/bb/bin/busybox"
for tool in sh sleep; do ln -s busybox "$work/bb/bin/$tool"; done
tar -C "$work/bb" -cf "$work/bb.tar" .
kiln import --change 'CMD ["sh"]' "$work/bb.tar" bb:bench >/dev/null
kiln network create --subnet "198.19.$octet.0/24" -o "com.docker.network.bridge.name=kbdns$suffix" dnsbench >/dev/null

echo "starting $COUNT containers on one network" >&2
for i in $(seq "$COUNT"); do
    kiln run -d --name "c$i" --network dnsbench bb:bench sleep 100000 >/dev/null
done
id=$(kiln inspect -f '{{.Id}}' c1)

# From c1's namespace: each name, ROUNDS times, one query at a time.
nsenter --net="$work/exec/netns/$id" python3 - "$COUNT" "$ROUNDS" <<'PY'
import socket, struct, sys, time
count, rounds = int(sys.argv[1]), int(sys.argv[2])
def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
times, failed = [], 0
for r in range(rounds):
    for i in range(1, count + 1):
        qid = (r * count + i) & 0xffff
        start = time.perf_counter()
        s.sendto(query(qid, f"c{i}"), ("127.0.0.11", 53))
        data = s.recv(4096)
        elapsed = (time.perf_counter() - start) * 1000
        rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
        if rid != qid or flags & 0xf != 0 or ancount != 1:
            failed += 1
        times.append(elapsed)
times.sort()
pick = lambda p: times[min(len(times) - 1, int(len(times) * p))]
print(f"{len(times)} queries for {count} names ({failed} without their one address):")
print(f"  median {pick(0.5):.3f} ms, p99 {pick(0.99):.3f} ms, max {times[-1]:.3f} ms (target: each < 5 ms)")
PY
