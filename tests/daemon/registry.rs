//! A real registry for the pull and auth tests: Debian's `docker-registry`
//! (the CNCF distribution registry) on 127.0.0.1 and a free port, open or
//! behind htpasswd (basic auth); and images to put in it. scripts/test
//! installs docker-registry, skopeo and htpasswd (apache2-utils).

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testing::ScratchDir;

use crate::common::{Run, TestDaemon};

/// `docker-registry serve` on 127.0.0.1 and a free port, storage in a temp
/// dir; killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    _dir: ScratchDir,
}

impl Registry {
    /// An open registry: anyone may pull and push.
    pub fn start() -> Registry {
        Registry::start_with_auth(None)
    }

    /// A registry that wants `user` and `password` (basic auth, realm
    /// `kiln-t`) for everything.
    pub fn with_htpasswd(user: &str, password: &str) -> Registry {
        Registry::start_with_auth(Some((user, password)))
    }

    fn start_with_auth(login: Option<(&str, &str)>) -> Registry {
        let dir = ScratchDir::new().expect("scratch dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = login {
            let htpasswd = dir.path().join("htpasswd");
            let entry = Run::ok(Command::new("htpasswd").args(["-Bbn", user, password]));
            std::fs::write(&htpasswd, entry).expect("write htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-t\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry must be installed (scripts/test installs it)");
        let registry = Registry { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Import busybox into `daemon`, save it, and copy it with skopeo to
/// `registry` as `kiln-t/bb:1` (logging in as `creds`, `user:password`,
/// when given); the reference.
pub fn push_busybox_as(daemon: &TestDaemon, registry: &Registry, creds: Option<&str>) -> String {
    daemon.import_busybox("kiln-t-src/bb:1");
    let archive = daemon.dir.path().join("bb.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "kiln-t-src/bb:1"]);
    let reference = format!("{}/kiln-t/bb:1", registry.host());
    let mut skopeo = Command::new("skopeo");
    skopeo.args(["--insecure-policy", "copy", "--dest-tls-verify=false"]);
    if let Some(creds) = creds {
        skopeo.arg("--dest-creds").arg(creds);
    }
    Run::ok(
        skopeo
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("docker://{reference}")),
    );
    reference
}

pub fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().expect("stdin").write_all(bytes).expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().expect("hash"))
}

/// A one-layer image: (manifest, config, layer) bytes. The layer holds one file.
pub fn tiny_image(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let root = dir.join("layer-root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("hello.txt"), "hello\n").expect("write");
    let tar = dir.join("layer.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--owner=0", "--group=0", "-cf"])
        .arg(&tar)
        .arg("hello.txt")
        .status()
        .expect("tar");
    assert!(status.success());
    let layer = std::fs::read(&tar).expect("read layer");
    let diff_id = sha256(&layer);
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": { "Cmd": ["cat", "/hello.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .expect("config");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha256(&config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": diff_id, "size": layer.len() }],
    }))
    .expect("manifest");
    (manifest, config, layer)
}
