#!/usr/bin/env bash
# Runtime benchmark: create + start + wait + delete of `true` on one busybox
# bundle, side by side on this machine:
#   floor  bare `unshare` + chroot + exec (no cgroups, no seccomp)
#   kiln   kiln runtime run     ($KILN, default target/release/kiln)
#   runc   runc run
#   crun   crun run, inside a mount namespace that hides the cgroup2
#          controllers (crun 1.8 refuses hybrid cgroup v1/v2 hosts, as
#          ANCHORS.md notes), set up once around its own hyperfine run.
# Then prints median, min-max and kiln's ratios, and peak RSS per runtime.
#
# Needs root and Debian's busybox-static, runc, crun, hyperfine, time, python3
# (installed when missing). Env: RUNS (50), WARMUP (5), KILN, OUT (bench/out).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
OUT=${OUT:-bench/out}

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (containers need it)" >&2
    exit 1
fi

# --- tools ---
missing=()
for pkg in busybox-static runc crun hyperfine time python3; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- scratch space, unique ids, cleanup on any exit ---
work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
tag=kb$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
bundle=$work/bundle
mkdir -p "$OUT" "$work"/{kiln,runc,crun}

cleanup() {
    # Containers left by an interrupted run, then the scratch dir.
    runc --root "$work/runc" list -q 2>/dev/null | xargs -r -n1 runc --root "$work/runc" delete -f 2>/dev/null || true
    if [ -n "${KILN:-}" ] && [ -x "$KILN" ]; then
        for state in "$work"/kiln/*/; do
            [ -d "$state" ] && "$KILN" runtime --root "$work/kiln" delete --force "$(basename "$state")" >/dev/null 2>&1 || true
        done
    fi
    hide_controllers "crun --root '$work/crun' list -q | xargs -r -n1 crun --root '$work/crun' delete -f" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# Peak resident memory (kB) of the largest process of one run.
peak_rss() {
    /usr/bin/time -v sh -c "$1" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'
}
export -f peak_rss

# Run a shell command where crun works: a private mount namespace with an
# empty file over the cgroup2 controllers list (only on hybrid hosts).
hide_controllers() {
    local controllers=/sys/fs/cgroup/unified/cgroup.controllers
    if [ -f "$controllers" ]; then
        : >"$work/empty"
        unshare -m --propagation private bash -c "mount --bind '$work/empty' $controllers && $1"
    else
        bash -c "$1"
    fi
}

# --- the bundle: busybox-static rootfs, `runc spec` with terminal off, args true ---
# A second bundle on the same rootfs echoes a marker, to check that each
# runtime really runs containers (a stub `kiln` that exits 0 must not count).
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp,etc} "$work/check"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
runc spec --bundle "$bundle"
python3 - "$bundle" "$work/check" <<'PY'
import json, os, sys
bundle, check = sys.argv[1:]
with open(os.path.join(bundle, "config.json")) as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = ["true"]
with open(os.path.join(bundle, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
config["process"]["args"] = ["echo", "kiln-bench-ok"]
config["root"]["path"] = os.path.join(bundle, "rootfs")
with open(os.path.join(check, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
PY

# --- kiln: build it unless $KILN names a binary ---
if [ -z "${KILN:-}" ]; then
    KILN=target/release/kiln
    echo "building $KILN (cargo build --release -p kiln)" >&2
    cargo build --release -p kiln >&2 || echo "warning: release build of kiln failed" >&2
fi
KILN=$(realpath -m "$KILN")

# The command line of one run of runtime NAME on BUNDLE; `$$` (the shell
# hyperfine spawns per run) makes each container id unique.
command_for() {
    local name=$1 b=$2
    case $name in
        floor) echo "unshare --fork --pid --mount --uts --ipc --mount-proc -R '$b/rootfs' /bin/true" ;;
        kiln) echo "'$KILN' runtime --root '$work/kiln' run --bundle '$b' $tag-kiln-\$\$" ;;
        runc | crun) echo "$name --root '$work/$name' run --bundle '$b' $tag-$name-\$\$" ;;
    esac
}

# Whether runtime NAME runs the check bundle and shows its output; a
# runtime that does not is reported and left out, not fatal.
works() {
    local name=$1 cmd out status=0
    cmd=$(command_for "$name" "$work/check")
    if [ "$name" = crun ]; then
        out=$(hide_controllers "$cmd" 2>&1) || status=$?
    else
        out=$(bash -c "$cmd" 2>&1) || status=$?
    fi
    if [ "$status" -eq 0 ] && [[ $out == *kiln-bench-ok* ]]; then
        return 0
    fi
    echo "skipping $name: a check run failed (exit $status): ${out:-no output}" >&2
    return 1
}

names=(floor)
if [ -x "$KILN" ]; then
    works kiln && names+=(kiln)
else
    echo "kiln: missing ($KILN not built); benchmarking the others" >&2
fi
works runc && names+=(runc)
has_crun=false
works crun && has_crun=true
cmds=()
for name in "${names[@]}"; do cmds+=("$(command_for "$name" "$bundle")"); done
crun_cmd=$(command_for crun "$bundle")

hyperfine_args=(--warmup "$WARMUP" --runs "$RUNS")
floor_json=$OUT/runtime-floor.json
host_json=$OUT/runtime-host.json
crun_json=$OUT/runtime-crun.json
rm -f "$floor_json" "$host_json" "$crun_json"

# The floor needs no shell, and at a few ms hyperfine measures it better
# without one; the others need the shell for `$$`.
named=()
for i in "${!names[@]}"; do
    if [ "${names[$i]}" = floor ]; then
        hyperfine "${hyperfine_args[@]}" -N --export-json "$floor_json" -n floor "${cmds[$i]}"
    else
        named+=(-n "${names[$i]}" "${cmds[$i]}")
    fi
done
if [ "${#named[@]}" -gt 0 ]; then
    hyperfine "${hyperfine_args[@]}" --export-json "$host_json" "${named[@]}"
fi

if $has_crun; then
    hide_controllers "$(printf '%q ' hyperfine "${hyperfine_args[@]}" --export-json "$crun_json" -n crun "$crun_cmd")"
fi

# --- peak resident memory of one run ---
rss_lines=()
for i in "${!names[@]}"; do
    [ "${names[$i]}" = floor ] && continue
    rss_lines+=("${names[$i]}	$(peak_rss "${cmds[$i]}") kB")
done
if [ -f "$crun_json" ]; then
    rss_lines+=("crun	$(hide_controllers "$(printf '%q ' peak_rss "$crun_cmd")") kB")
fi

# --- summary ---
echo
echo "create+start+wait+delete of \`true\`, $RUNS runs after $WARMUP warm-up (JSON in $OUT/)"
python3 - "$floor_json" "$host_json" "$crun_json" <<'PY'
import json, os, statistics, sys

results = {}
for path in sys.argv[1:]:
    if os.path.exists(path):
        with open(path) as f:
            for r in json.load(f)["results"]:
                results[r["command"]] = r

print(f"{'runtime':<8} {'median':>10} {'min-max':>20}")
for name in ("floor", "kiln", "runc", "crun"):
    r = results.get(name)
    if r is None:
        print(f"{name:<8} {'-':>10} {'(not run)':>20}")
        continue
    ms = [t * 1000 for t in r["times"]]
    span = f"{min(ms):.1f}-{max(ms):.1f} ms"
    print(f"{name:<8} {statistics.median(ms):>7.1f} ms {span:>20}")

kiln = results.get("kiln")
for other in ("runc", "crun", "floor"):
    if kiln and other in results:
        ratio = statistics.median(kiln["times"]) / statistics.median(results[other]["times"])
        print(f"kiln/{other}: {ratio:.2f}")
    else:
        print(f"kiln/{other}: n/a")
PY
echo
echo "peak RSS of one run:"
printf '  %s\n' "${rss_lines[@]}"
