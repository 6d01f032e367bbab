//! `kiln build` end to end, up to the builder: the context and query the
//! CLI sends (seen by a stand-in daemon that records them), how it prints
//! the daemon's answers, and the refusals of `POST /build` by `kiln daemon`
//! before any build starts.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kiln_testing::{kiln_bin, ScratchDir};

use crate::common::{Run, TestDaemon};

/// What the stand-in daemon saw of the one `POST /build`.
struct Upload {
    /// Request line and headers, names lower-case as hyper sends them.
    head: String,
    /// The context, de-chunked.
    body: Vec<u8>,
}

/// A daemon stand-in on a unix socket: answers pings, then records one
/// `POST /build` and answers it with `answer` (JSON lines).
struct FakeDaemon {
    dir: ScratchDir,
    uploads: mpsc::Receiver<Upload>,
}

impl FakeDaemon {
    fn start(answer: &str) -> FakeDaemon {
        let dir = ScratchDir::new().expect("scratch dir");
        let listener = UnixListener::bind(dir.path().join("fake.sock")).expect("bind");
        let (tx, uploads) = mpsc::channel();
        let answer = answer.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if serve(stream, &answer, &tx) {
                    return;
                }
            }
        });
        FakeDaemon { dir, uploads }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("fake.sock").display())
    }

    /// `kiln --host <fake> build ARGS` in `cwd`, with `stdin`.
    fn kiln_build(&self, cwd: &Path, args: &[&str], stdin: &[u8]) -> Run {
        let mut child = Command::new(kiln_bin())
            .arg("--host")
            .arg(self.host())
            .arg("build")
            .args(args)
            .current_dir(cwd)
            .env_remove("KILN_T_UNSET")
            .env("KILN_T_FROM_ENV", "from the environment")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kiln build");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin).expect("write stdin");
        drop(input);
        let output = child.wait_with_output().expect("kiln build");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn upload(&self) -> Upload {
        self.uploads.recv_timeout(Duration::from_secs(20)).expect("a POST /build")
    }
}

/// One connection: a ping is answered; a build is recorded and answered
/// (then the stand-in is done: `true`).
fn serve(stream: UnixStream, answer: &str, uploads: &mpsc::Sender<Upload>) -> bool {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("request head") == 0 {
            return false;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut stream = stream;
    if head.contains(" /_ping ") {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
        );
        return false;
    }
    let body = read_chunked(&mut reader);
    let _ = uploads.send(Upload { head, body });
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    true
}

fn read_chunked(reader: &mut impl std::io::BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).expect("chunk");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// The context's entries in order, as `tar -tv` lists them.
fn tar_listing(dir: &Path, tar: &[u8]) -> Vec<String> {
    let file = dir.join("context.tar");
    std::fs::write(&file, tar).expect("write tar");
    let out = Run::ok(Command::new("tar").arg("-tvf").arg(&file));
    out.lines()
        .map(|line| {
            // "-rw-r--r-- 0/0 5 2024-01-01 00:00 name[ -> target]": keep
            // the type letter and the name.
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!("{} {}", &fields[0][..1], fields[5..].join(" "))
        })
        .collect()
}

/// `tar -xf` of the context into a fresh dir.
fn unpack(dir: &Path, tar: &[u8]) -> PathBuf {
    let file = dir.join("unpack.tar");
    std::fs::write(&file, tar).expect("write tar");
    let into = dir.join("unpacked");
    std::fs::create_dir_all(&into).expect("mkdir");
    Run::ok(Command::new("tar").arg("-xf").arg(&file).arg("-C").arg(&into));
    into
}

const BUILT: &str = "{\"stream\":\"Step 1/1 : FROM scratch\\n\"}\n\
    {\"stream\":\" ---> e3b0c44298fc\\n\"}\n\
    {\"aux\":{\"ID\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}}\n\
    {\"stream\":\"Successfully built e3b0c44298fc\\n\"}\n\
    {\"stream\":\"Successfully tagged kiln-t-app:1\\n\"}\n";

const ID: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn kiln_build_sends_the_context_and_flags_docker_would() {
    let fake = FakeDaemon::start(BUILT);
    let work = ScratchDir::new().expect("scratch");
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), "FROM scratch\nCOPY . /app\n");
    write(&ctx.join(".dockerignore"), "*.log\nsecrets\n!secrets/public.pem\n");
    write(&ctx.join("app.py"), "print('hi')\n");
    write(&ctx.join("debug.log"), "noise\n");
    write(&ctx.join("secrets/private.key"), "PRIVATE\n");
    write(&ctx.join("secrets/public.pem"), "PUBLIC\n");
    write(&work.path().join("outside.txt"), "never sent\n");
    write(&work.path().join("token"), "s3cr3t-token");
    std::os::unix::fs::symlink("../outside.txt", ctx.join("link")).expect("symlink");

    let run = fake.kiln_build(
        work.path(),
        &[
            "-t",
            "kiln-t-app:1",
            "--build-arg",
            "A=1",
            "--build-arg",
            "KILN_T_FROM_ENV",
            "--build-arg",
            "KILN_T_UNSET",
            "--secret",
            "id=tok,src=token",
            "--label",
            "org.kiln.test=yes",
            "ctx",
        ],
        b"",
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    // BuildKit's plain lines, computed from the classic stream; the times
    // (`DONE 0.0s`) left out.
    let shown: Vec<&str> =
        run.stdout.lines().map(|l| l.split_once(" DONE ").map_or(l, |(n, _)| n)).collect();
    assert_eq!(
        shown,
        [
            "#1 [1/1] FROM scratch",
            "#1",
            "",
            "#2 exporting to image",
            &format!("#2 writing image {ID} done"),
            "#2 naming to docker.io/library/kiln-t-app:1 done",
            "#2",
        ],
        "{}",
        run.stdout
    );

    let upload = fake.upload();
    let request_line = upload.head.lines().next().expect("request line");
    assert!(request_line.starts_with("POST /v1.47/build?t=kiln-t-app%3A1&"), "{request_line}");
    // docker-compat: a bare NAME takes our environment's value, or null.
    assert!(
        request_line.contains(
            "buildargs=%7B%22A%22%3A%221%22%2C%22KILN_T_FROM_ENV%22%3A%22from%20the%20environment%22\
             %2C%22KILN_T_UNSET%22%3Anull%7D"
        ),
        "{request_line}"
    );
    assert!(
        request_line.contains("&labels=%7B%22org.kiln.test%22%3A%22yes%22%7D"),
        "{request_line}"
    );
    assert!(request_line.contains("&dockerfile=Dockerfile&"), "{request_line}");
    assert!(request_line.contains("&version=1"), "{request_line}");
    let head = upload.head.to_ascii_lowercase();
    assert!(head.contains("\r\ncontent-type: application/x-tar\r\n"), "{head}");
    assert!(head.contains("\r\nx-kiln-build-secrets: "), "the secret goes in its header: {head}");
    assert!(!upload.head.contains("s3cr3t-token"), "never in clear: {head}");

    assert_eq!(
        tar_listing(work.path(), &upload.body),
        [
            "- .dockerignore",
            "- Dockerfile",
            "- app.py",
            "l link -> ../outside.txt",
            "d secrets",
            "- secrets/public.pem",
        ],
        "sorted, .dockerignore honoured, the symlink not followed"
    );
    let unpacked = unpack(work.path(), &upload.body);
    assert_eq!(std::fs::read_to_string(unpacked.join("app.py")).expect("app.py"), "print('hi')\n");
}

#[test]
fn a_dockerfile_from_stdin_travels_under_a_generated_name() {
    let fake = FakeDaemon::start(BUILT);
    let work = ScratchDir::new().expect("scratch");
    write(&work.path().join("ctx/app.py"), "print('hi')\n");
    let run = fake.kiln_build(work.path(), &["-f", "-", "ctx"], b"FROM scratch\nCOPY app.py /\n");
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let upload = fake.upload();
    let request_line = upload.head.lines().next().expect("request line").to_owned();
    let name = request_line
        .split(['?', '&', ' '])
        .find_map(|pair| pair.strip_prefix("dockerfile="))
        .expect("a dockerfile parameter")
        .to_owned();
    assert!(name.starts_with(".dockerfile.") && name.len() == 32, "{request_line}");
    assert_eq!(
        tar_listing(work.path(), &upload.body),
        [format!("- {name}"), "- .dockerignore".to_owned(), "- app.py".to_owned()]
    );
    let unpacked = unpack(work.path(), &upload.body);
    let dockerfile = std::fs::read_to_string(unpacked.join(&name)).expect("dockerfile");
    assert_eq!(dockerfile, "FROM scratch\nCOPY app.py /\n");
    // docker-compat: hidden from `COPY . .` by the daemon's .dockerignore.
    let ignore = std::fs::read_to_string(unpacked.join(".dockerignore")).expect("ignore");
    assert_eq!(ignore, format!("\n{name}\n"));
}

#[test]
fn quiet_prints_only_the_id_and_iidfile_gets_it() {
    let answer = format!("{{\"aux\":{{\"ID\":\"{ID}\"}}}}\n{{\"stream\":\"{ID}\\n\"}}\n");
    let fake = FakeDaemon::start(&answer);
    let work = ScratchDir::new().expect("scratch");
    write(&work.path().join("ctx/Dockerfile"), "FROM scratch\n");
    let iid = work.path().join("iid");
    write(&iid, "stale");
    let run = fake.kiln_build(
        work.path(),
        &["-q", "--iidfile", iid.to_str().expect("utf-8"), "ctx"],
        b"",
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, format!("{ID}\n"));
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), ID);
    let upload = fake.upload();
    let request_line = upload.head.lines().next().expect("request line");
    assert!(request_line.split(['?', '&', ' ']).any(|p| p == "q=1"), "{request_line}");
}

#[test]
fn a_failed_build_prints_the_daemons_message_and_exits_1() {
    let answer = "{\"stream\":\"Step 1/2 : RUN false\\n\"}\n\
        {\"errorDetail\":{\"message\":\"Dockerfile:2: RUN false: exit code 1\"},\
        \"error\":\"Dockerfile:2: RUN false: exit code 1\"}\n";
    let fake = FakeDaemon::start(answer);
    let work = ScratchDir::new().expect("scratch");
    write(&work.path().join("ctx/Dockerfile"), "FROM scratch\nRUN false\n");
    let run = fake.kiln_build(work.path(), &["ctx"], b"");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stdout,
        "#1 [1/2] RUN false\n#1 ERROR: Dockerfile:2: RUN false: exit code 1\n\
         ------\n > [1/2] RUN false:\n------\n"
    );
    assert_eq!(run.stderr, "Dockerfile:2: RUN false: exit code 1\n");
}

#[test]
fn bad_paths_and_flags_are_one_line_before_anything_is_sent() {
    let work = ScratchDir::new().expect("scratch");
    write(&work.path().join("ctx/Dockerfile"), "FROM scratch\n");
    // No daemon at this host: every refusal comes before connecting.
    let kiln = |args: &[&str]| {
        Run::of(
            Command::new(kiln_bin())
                .arg("--host")
                .arg(format!("unix://{}", work.path().join("none.sock").display()))
                .arg("build")
                .args(args)
                .current_dir(work.path())
                .stdin(Stdio::null()),
        )
    };
    let run = kiln(&["nope"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "Error: unable to prepare context: path \"nope\" not found\n")
    );
    let run = kiln(&["-f", "ctx/Nope", "ctx"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            Some(1),
            "Error: unable to prepare context: cannot locate specified Dockerfile: ctx/Nope\n"
        )
    );
    let run = kiln(&["--secret", "id=tok,src=missing", "ctx"]);
    assert_eq!(run.code, Some(125));
    assert!(
        run.stderr.ends_with("secret tok: cannot read missing: no such file or directory\n"),
        "{}",
        run.stderr
    );
    let run = kiln(&["--shm-size", "lots", "ctx"]);
    assert_eq!(run.code, Some(125));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let run = kiln(&["-f", "-", "-"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("can't use stdin for both build context and dockerfile"));
}

#[test]
fn kiln_daemon_refuses_bad_build_requests_before_building() {
    let daemon = TestDaemon::start();
    let response = daemon.request("POST", "/v1.47/build?buildargs=nope");
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.json()["message"].as_str().expect("message").contains("build args"));
    // Git repositories are remote contexts; URLs of tars are not yet.
    let response = daemon.request("POST", "/build?remote=https%3A%2F%2Fexample.com%2Fctx.tar");
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.body.contains("not supported yet"), "{}", response.body);
    let response = daemon.request("POST", "/build?version=2");
    assert_eq!(response.status, 501, "{}", response.body);
    assert!(response.body.contains("DOCKER_BUILDKIT=0"), "{}", response.body);
    let response = daemon.request("POST", "/v1.41/build/prune");
    assert_eq!(response.status, 501, "{}", response.body);
}

/// This one runs the builder: the smallest build there is.
#[test]
fn docker_build_q_prints_the_image_id() {
    let daemon = TestDaemon::start();
    let work = ScratchDir::new().expect("scratch");
    write(&work.path().join("Dockerfile"), "FROM scratch\nLABEL org.kiln.test=quiet\n");
    let run = Run::of(
        Command::new(crate::common::docker_cli())
            .args(["build", "-q", "-t", "kiln-t-quiet:1", "."])
            .current_dir(work.path())
            .env("DOCKER_HOST", daemon.host())
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config")),
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let id = run.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{:?}", run.stdout);
    let inspected = daemon.kiln_ok(&["image", "inspect", "-f", "{{.Id}}", "kiln-t-quiet:1"]);
    assert_eq!(inspected.trim(), id);
}
