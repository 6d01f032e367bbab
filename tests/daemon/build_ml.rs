//! The ML workflow of the build issue, end to end, as root: a Python base
//! image bootstrapped from Debian packages, a context with pinned
//! requirements and a training script, `kiln build` installing the
//! requirements from a package index over the RUN step's network, a
//! training run writing its model into a host directory, and a second
//! build without the cache giving the same image digest.
//!
//! The package index is the test's own (two small pure-Python wheels made
//! here, served on 127.0.0.1), so the test needs no outside network.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use kiln_testing::unique_name;

use crate::common::TestDaemon;

/// Writes a pure-Python wheel `name-version-py3-none-any.whl` whose module
/// `name` holds `source`, into `dir`.
fn write_wheel(dir: &Path, name: &str, version: &str, source: &str) {
    let script = r#"
import sys, zipfile
out, name, version, source = sys.argv[1:5]
info = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": source,
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
with zipfile.ZipFile(out, "w") as z:
    for path, text in sorted(files.items()):
        info_ = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
        z.writestr(info_, text)
"#;
    let wheel = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(name)
        .arg(version)
        .arg(source)
        .status()
        .expect("run python3");
    assert!(status.success(), "making wheel {name} failed");
}

/// A PEP 503 "simple" index of the wheels in `root/packages`, at `root/simple`.
fn write_index(root: &Path, packages: &[(&str, &str)]) {
    for (name, version) in packages {
        let dir = root.join("simple").join(name);
        std::fs::create_dir_all(&dir).expect("index dir");
        let file = format!("{name}-{version}-py3-none-any.whl");
        std::fs::write(
            dir.join("index.html"),
            format!("<html><body><a href=\"../../packages/{file}\">{file}</a></body></html>\n"),
        )
        .expect("index page");
    }
}

/// Python's static file server on a free loopback port, serving `root`
/// with a `Cache-Control` that lets pip keep what it downloads.
struct IndexServer {
    child: Child,
    port: u16,
}

impl IndexServer {
    fn start(root: &Path) -> IndexServer {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("addr").port()
        };
        let server = r#"
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()
handler = functools.partial(Handler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"#;
        let child = Command::new("python3")
            .arg("-c")
            .arg(server)
            .arg(port.to_string())
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the package index");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        IndexServer { child, port }
    }
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DOCKERFILE: &str = r#"FROM python:3.11-slim
WORKDIR /app
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt .
ARG PIP_INDEX_URL
RUN --mount=type=cache,target=/root/.cache/wheels \
    pip download --index-url "$PIP_INDEX_URL" -d /root/.cache/wheels -r requirements.txt && \
    pip install --no-index --find-links /root/.cache/wheels -r requirements.txt
COPY scripts/ scripts/
CMD ["python3", "scripts/train.py"]
"#;

const TRAIN: &str = r#"import json, os
import kilnfeatures, kilnscore
xs = [i / 10 for i in range(50)]
ys = [3.0 * x + 2.0 for x in xs]
a, b = kilnfeatures.fit(xs, ys)
score = kilnscore.r2(xs, ys, a, b)
os.makedirs("/app/data", exist_ok=True)
with open("/app/data/model.json", "w") as f:
    json.dump({"a": round(a, 3), "b": round(b, 3), "r2": round(score, 3)}, f)
print(f"model written, r2 {score:.3f}")
"#;

const FEATURES: &str = r#"def fit(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return a, my - a * mx
"#;

const SCORE: &str = r#"def r2(xs, ys, a, b):
    my = sum(ys) / len(ys)
    ss_res = sum((y - (a * x + b)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return 1 - ss_res / ss_tot
"#;

#[test]
fn the_ml_workflow_builds_trains_into_a_volume_and_rebuilds_to_the_same_digest() {
    kiln_testing::require_privileged!();
    let daemon = TestDaemon::start();
    let work = daemon.dir.path().join(unique_name());

    // The package index: two pinned pure-Python packages.
    let index_root = work.join("index");
    std::fs::create_dir_all(index_root.join("packages")).expect("packages dir");
    write_wheel(&index_root.join("packages"), "kilnfeatures", "1.0.0", FEATURES);
    write_wheel(&index_root.join("packages"), "kilnscore", "2.1.0", SCORE);
    write_index(&index_root, &[("kilnfeatures", "1.0.0"), ("kilnscore", "2.1.0")]);
    let server = IndexServer::start(&index_root);

    // The context.
    let context = work.join("project");
    std::fs::create_dir_all(context.join("scripts")).expect("context");
    std::fs::write(context.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    std::fs::write(context.join("requirements.txt"), "kilnfeatures==1.0.0\nkilnscore==2.1.0\n")
        .expect("requirements");
    std::fs::write(context.join("scripts/train.py"), TRAIN).expect("train.py");

    // The offline Python base image.
    daemon.kiln_ok(&[
        "image",
        "bootstrap",
        "debian:bookworm",
        "--include",
        "python3,python3-pip",
        "-t",
        "python:3.11-slim",
    ]);

    let index_url = format!("PIP_INDEX_URL=http://127.0.0.1:{}/simple", server.port);
    let context_arg = context.to_str().expect("utf-8 path");
    let build = |extra: &[&str]| -> String {
        let mut args = vec!["build", "-q", "--build-arg", &index_url, "-t", "mlops-project:latest"];
        args.extend_from_slice(extra);
        args.push(context_arg);
        daemon.kiln_ok(&args).trim().to_owned()
    };
    let first = build(&[]);
    assert!(first.starts_with("sha256:"), "build -q printed {first:?}");

    // Training writes the model into the host directory.
    let data = work.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let volume = format!("{}:/app/data", data.display());
    let out = daemon.kiln_ok(&["run", "--rm", "-v", &volume, "mlops-project:latest"]);
    assert!(out.contains("model written, r2 1.000"), "training printed {out:?}");
    let model: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("model.json")).expect("model.json on the host"),
    )
    .expect("model JSON");
    assert_eq!(model["a"], 3.0);
    assert_eq!(model["b"], 2.0);

    // Without the layer cache, the same inputs give the same digest, and
    // the cache mount makes the second run download nothing (pip still
    // asks the index which versions exist).
    let second = daemon.kiln_ok(&[
        "build",
        "--no-cache",
        "--iidfile",
        work.join("iid").to_str().expect("utf-8 path"),
        "--build-arg",
        &index_url,
        "-t",
        "mlops-project:latest",
        context_arg,
    ]);
    assert!(
        second.contains("File was already downloaded /root/.cache/wheels/kilnfeatures-1.0.0"),
        "pip downloaded again: {second}"
    );
    let id = std::fs::read_to_string(work.join("iid")).expect("iidfile");
    assert_eq!(id.trim(), first, "two builds of the same inputs, two digests");
    drop(server);
}
