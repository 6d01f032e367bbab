//! docker-py (the `docker` package from PyPI) against `kiln daemon`: runs,
//! detached containers, exec, stop/wait/remove, volumes and commit, through the
//! client a Python user has. Needs root; scripts/test installs docker-py.

use std::process::Command;

use crate::common::{Run, TestDaemon};

/// The client session: it prints every unmet expectation and exits 1, or
/// prints "ok".
const SCRIPT: &str = r#"
import sys
import time

import docker

client = docker.DockerClient(base_url=sys.argv[1], timeout=60)
failures = []


def check(ok, what):
    """Note a failed expectation and go on, so that one run reports all."""
    if not ok:
        failures.append(what)


out = client.containers.run("bb", "echo hello", remove=True)
check(out == b"hello\n", f"run with remove=True returned {out!r}")
check(client.containers.list(all=True) == [], "remove=True removed the container")

try:
    client.containers.run("bb", ["sh", "-c", "echo oops >&2; exit 3"], name="kiln-t-fails")
    raise AssertionError("a non-zero exit raises ContainerError")
except docker.errors.ContainerError as e:
    check(e.exit_status == 3, f"exit_status {e.exit_status!r}")
    check(b"oops" in e.stderr, f"stderr {e.stderr!r}")

c = client.containers.run(
    "bb", ["sh", "-c", "echo started; while true; do sleep 0.1; done"],
    detach=True, name="kiln-t-py",
)
c.reload()
check(c.status == "running", f"status {c.status!r}")
check(c.name == "kiln-t-py", f"name {c.name!r}")
check(c.attrs["State"]["Running"] is True, f"State {c.attrs['State']!r}")
for _ in range(50):
    if c.logs() == b"started\n":
        break
    time.sleep(0.1)
check(c.logs() == b"started\n", f"logs {c.logs()!r}")

# docker-py reads the 101 head through a buffered reader and then reads the
# raw socket: output the daemon sends before the client has read the head
# is lost, so a daemon must start the process only after the upgrade (as
# Docker does). Fifty quick execs make such a race show.
results = [c.exec_run("echo hi") for _ in range(50)]
bad = [r for r in results if (r.exit_code, r.output) != (0, b"hi\n")]
check(not bad, f"{len(bad)} of 50 exec_run('echo hi') gave {bad[:3]!r}")
r = c.exec_run(["sh", "-c", "echo err >&2; exit 4"])
check((r.exit_code, r.output) == (4, b"err\n"), f"exec_run {r!r}")
r = c.exec_run("sh -c 'echo $A'", environment={"A": "b"}, workdir="/tmp")
check((r.exit_code, r.output) == (0, b"b\n"), f"exec_run {r!r}")
r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
check(r.output == (b"out\n", b"err\n"), f"exec_run demux {r!r}")
chunks = b"".join(c.exec_run(["sh", "-c", "echo 1; sleep 0.2; echo 2"], stream=True).output)
check(chunks == b"1\n2\n", f"exec_run stream {chunks!r}")

top = c.top()
shell = any("while true" in " ".join(p) for p in top["Processes"])
check("PID" in top["Titles"] and shell, f"top {top!r}")
c.pause()
c.reload()
check(c.status == "paused", f"status after pause {c.status!r}")
c.unpause()
c.reload()
check(c.status == "running", f"status after unpause {c.status!r}")
c.rename("kiln-t-py2")
c.rename("kiln-t-py")
c.reload()
check(c.name == "kiln-t-py", f"name after renames {c.name!r}")
check(c.logs(tail=1) == b"started\n", f"logs(tail=1) {c.logs(tail=1)!r}")

names = sorted(x.name for x in client.containers.list())
check(names == ["kiln-t-py"], f"running: {names!r}")
names = sorted(x.name for x in client.containers.list(all=True))
check(names == ["kiln-t-fails", "kiln-t-py"], f"all: {names!r}")
check(client.containers.get("kiln-t-py").id == c.id, "get by name")
exited = [x.name for x in client.containers.list(filters={"status": "exited"})]
check(exited == ["kiln-t-fails"], f"status=exited: {exited!r}")

c.stop(timeout=1)
c.reload()
check(c.status == "exited", f"status after stop {c.status!r}")
w = c.wait()
check(w["StatusCode"] == 137, f"wait {w!r}")
c.remove()
try:
    client.containers.get("kiln-t-py")
    raise AssertionError("the container is gone after remove()")
except docker.errors.NotFound:
    pass
failed_id = client.containers.get("kiln-t-fails").id
pruned = client.containers.prune()
check(pruned["ContainersDeleted"] == [failed_id], f"prune {pruned!r}")
left = client.containers.list(all=True)
check(left == [], f"left after prune {left!r}")

v = client.volumes.create("v1")
check(v.name == "v1", f"volume {v.name!r}")
client.containers.run(
    "bb", ["sh", "-c", "echo kept > /v/f"],
    volumes={"v1": {"bind": "/v", "mode": "rw"}}, remove=True,
)
out = client.containers.run("bb", "cat /v/f", volumes=["v1:/v:ro"], remove=True)
check(out == b"kept\n", f"volume content {out!r}")
names = [x.name for x in client.volumes.list()]
check(names == ["v1"], f"volumes {names!r}")
client.volumes.get("v1").remove()
names = [x.name for x in client.volumes.list()]
check(names == [], f"volumes after remove {names!r}")

# commit: a container's changes become an image that runs them.
src = client.containers.run(
    "bb", ["sh", "-c", "echo saved > /saved"], detach=True, name="kiln-t-src"
)
src.wait()
img = src.commit(
    repository="kiln-t-py-img", tag="1", message="from docker-py",
    changes=['CMD ["cat", "/saved"]'],
)
check(img.id.startswith("sha256:"), f"commit id {img.id!r}")
check("kiln-t-py-img:1" in img.tags, f"commit tags {img.tags!r}")
check(img.attrs["Comment"] == "from docker-py", f"comment {img.attrs['Comment']!r}")
out = client.containers.run("kiln-t-py-img:1", remove=True)
check(out == b"saved\n", f"run of the committed image {out!r}")
src.remove()

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
"#;

#[test]
fn docker_py_runs_execs_stops_and_removes_containers_and_volumes() {
    kiln_testing::require_privileged!();
    let import = Command::new("python3").args(["-c", "import docker"]).output();
    match import {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "python3 cannot import docker-py ({other:?}); run scripts/test, which installs it"
        ),
    }
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    let script = daemon.dir.path().join("session.py");
    std::fs::write(&script, SCRIPT).expect("write session.py");
    let run = Run::of(
        Command::new("timeout")
            .args(["--kill-after=5", "240", "python3"])
            .arg(&script)
            .arg(daemon.host())
            .env_remove("DOCKER_HOST"),
    );
    assert_eq!(run.code, Some(0), "the docker-py session failed:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "ok\n", "{run:?}");
}
