//! `kiln build` end to end (root): Dockerfiles built by the daemon on a
//! busybox base, and what a user sees of the result: files in the image,
//! its config through `kiln image inspect`, the build's output, exit codes
//! and error lines. Also the legacy `docker build` against kiln.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiln_testing::{kiln_bin, unique_name};

use crate::common::{Run, TestDaemon};

/// How long one build may take before it counts as hung.
const BUILD_LIMIT: &str = "120";

/// A daemon with a busybox image imported as `bb`.
fn daemon_with_busybox() -> TestDaemon {
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    daemon
}

/// A fresh build context under the daemon's scratch dir holding `files`
/// (path in the context, content).
fn context(daemon: &TestDaemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = daemon.dir.path().join(format!("ctx-{}", unique_name()));
    std::fs::create_dir(&dir).expect("mkdir context");
    for (path, text) in files {
        write(&dir.join(path), text);
    }
    dir
}

/// Write `text` to `path`, making its parent directories.
fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `kiln build ARGS CONTEXT` (killed if it hangs), finished.
fn build(daemon: &TestDaemon, context: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(BUILD_LIMIT)
        .arg(kiln_bin())
        .arg("--host")
        .arg(daemon.host())
        .arg("build")
        .args(args)
        .arg(context);
    let run = Run::of(&mut cmd);
    assert_ne!(run.code, Some(124), "kiln build {args:?} hung: {run:?}");
    run
}

/// `kiln build ARGS CONTEXT`, which must succeed; its stdout.
fn build_ok(daemon: &TestDaemon, context: &Path, args: &[&str]) -> String {
    let run = build(daemon, context, args);
    assert_eq!(run.code, Some(0), "kiln build {args:?} failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// `kiln build -q ARGS CONTEXT`: the image id it prints.
fn build_id(daemon: &TestDaemon, context: &Path, args: &[&str]) -> String {
    let mut all = vec!["-q"];
    all.extend_from_slice(args);
    let out = build_ok(daemon, context, &all);
    let id = out.trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "-q printed {out:?}");
    id
}

/// A failed build: its exit code must be 1 and its error one line on
/// stderr; that line.
fn build_fails(daemon: &TestDaemon, context: &Path, args: &[&str]) -> (Run, String) {
    let run = build(daemon, context, args);
    assert_eq!(run.code, Some(1), "kiln build {args:?} should fail with 1: {run:?}");
    let line = run.stderr.trim().to_owned();
    assert_eq!(line.lines().count(), 1, "the error is one line: {:?}", run.stderr);
    (run, line)
}

/// `kiln run --rm IMAGE ARGS`, finished.
fn run_in(daemon: &TestDaemon, image: &str, args: &[&str]) -> Run {
    let mut all = vec!["run", "--rm", "--network", "none", image];
    all.extend_from_slice(args);
    daemon.kiln_run(&all)
}

/// The stdout of `kiln run --rm IMAGE ARGS`, which must succeed.
fn run_ok(daemon: &TestDaemon, image: &str, args: &[&str]) -> String {
    let run = run_in(daemon, image, args);
    assert_eq!(run.code, Some(0), "run {image} {args:?} failed: {run:?}");
    run.stdout
}

/// The content of `path` in a container of `image`.
fn cat(daemon: &TestDaemon, image: &str, path: &str) -> String {
    run_ok(daemon, image, &["cat", path])
}

/// Whether `path` exists in a container of `image`.
fn exists(daemon: &TestDaemon, image: &str, path: &str) -> bool {
    match run_in(daemon, image, &["test", "-e", path]).code {
        Some(0) => true,
        Some(1) => false,
        other => panic!("test -e {path} in {image} exited {other:?}"),
    }
}

/// `kiln image inspect -f FORMAT IMAGE`, trimmed.
fn inspect(daemon: &TestDaemon, image: &str, format: &str) -> String {
    daemon.kiln_ok(&["image", "inspect", "-f", format, image]).trim().to_owned()
}

/// The steps of a build's output (BuildKit's plain lines), each as its
/// text and whether it came from the cache (`#N CACHED` after its
/// `#N [n/m] TEXT` line, which is printed again when stages interleave).
fn steps(output: &str) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, bool)> = Vec::new();
    let mut numbers: Vec<&str> = Vec::new();
    for line in output.lines() {
        let Some((number, rest)) = line.split_once(' ') else { continue };
        if !number.starts_with('#') {
            continue;
        }
        let index = numbers.iter().position(|n| *n == number);
        if let Some((_, text)) = rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            if index.is_none() {
                numbers.push(number);
                steps.push((text.to_owned(), false));
            }
        } else if rest == "CACHED" {
            let index = index.unwrap_or_else(|| panic!("CACHED before its step: {output}"));
            assert!(!steps[index].1, "two CACHED lines for one step: {output}");
            steps[index].1 = true;
        }
    }
    steps
}

/// `steps` as expected: each text with whether it is cached.
fn expect_steps(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected.iter().map(|(text, cached)| ((*text).to_owned(), *cached)).collect()
}

/// Whether `needle` occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Regular files under `dir` (recursively, never following links) whose
/// bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if let Ok(bytes) = std::fs::read(&path) {
                    if contains_bytes(&bytes, needle) {
                        found.push(path);
                    }
                }
            }
        }
    }
    found
}

/// The bytes of `kiln save IMAGE`.
fn saved(daemon: &TestDaemon, image: &str) -> Vec<u8> {
    let archive = daemon.dir.path().join(format!("{}.tar", unique_name()));
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), image]);
    let bytes = std::fs::read(&archive).expect("read the saved image");
    let _ = std::fs::remove_file(&archive);
    bytes
}

#[test]
fn a_dockerfile_builds_an_image_with_its_files_config_and_history() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = format!("{}:v1", unique_name());
    let dockerfile = r#"FROM bb
ARG GREETING=hello
ENV APP_HOME=/srv/app MODE=${GREETING}-mode
WORKDIR $APP_HOME
RUN echo "$GREETING from run" > greeting.txt
COPY app.sh ./
RUN chmod 755 app.sh && echo "built by $(id -u)" > who.txt
LABEL org.example.name="kiln test" version=1
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["true"]
USER 1000:1000
ENTRYPOINT ["/srv/app/app.sh"]
CMD ["world"]
"#;
    let app =
        "#!/bin/sh\necho \"$(cat /srv/app/greeting.txt), $MODE, $1, uid $(id -u), in $(pwd)\"\n";
    let ctx = context(&daemon, &[("Dockerfile", dockerfile), ("app.sh", app)]);
    let out = build_ok(&daemon, &ctx, &["-t", &image]);

    // BuildKit's plain output: every step numbered, the RUN's own output,
    // the id and the tag at the end.
    let texts: Vec<String> = steps(&out).into_iter().map(|(text, _)| text).collect();
    let expected: Vec<String> = dockerfile.lines().map(str::to_owned).collect();
    assert_eq!(texts, expected, "{out}");
    assert!(out.contains("#1 [1/15] FROM bb\n"), "{out}");
    let id = inspect(&daemon, &image, "{{.Id}}");
    assert!(out.contains(&format!(" writing image {id} done\n")), "{out}");
    assert!(out.contains(&format!(" naming to docker.io/library/{image} done\n")), "{out}");

    // The image runs its ENTRYPOINT with its CMD, as its USER, in its
    // WORKDIR, with the ENV (built from the ARG).
    assert_eq!(
        run_ok(&daemon, &image, &[]),
        "hello from run, hello-mode, world, uid 1000, in /srv/app\n"
    );
    let who = daemon.kiln_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "cat",
        &image,
        "/srv/app/who.txt",
    ]);
    assert_eq!(who, "built by 0\n", "RUN steps run as root before USER");

    // The config as Docker writes it.
    let env = inspect(&daemon, &image, "{{json .Config.Env}}");
    let env: Vec<String> = serde_json::from_str(&env).expect("Env is a JSON list");
    assert!(
        env.ends_with(&["APP_HOME=/srv/app".to_owned(), "MODE=hello-mode".to_owned()]),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("GREETING=")), "an ARG is not kept: {env:?}");
    assert_eq!(inspect(&daemon, &image, "{{.Config.WorkingDir}}"), "/srv/app");
    assert_eq!(
        inspect(&daemon, &image, "{{json .Config.Labels}}"),
        r#"{"org.example.name":"kiln test","version":"1"}"#
    );
    assert_eq!(
        inspect(&daemon, &image, "{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"8080/tcp":{}}"#
    );
    assert_eq!(inspect(&daemon, &image, "{{.Config.User}}"), "1000:1000");
    assert_eq!(inspect(&daemon, &image, "{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(inspect(&daemon, &image, "{{.Config.StopSignal}}"), "SIGUSR1");
    let healthcheck: serde_json::Value =
        serde_json::from_str(&inspect(&daemon, &image, "{{json .Config.Healthcheck}}"))
            .expect("Healthcheck is JSON");
    assert_eq!(
        healthcheck,
        serde_json::json!({
            "Test": ["CMD", "true"],
            "Interval": 30_000_000_000_u64,
            "Timeout": 5_000_000_000_u64,
            "Retries": 3
        })
    );
    assert_eq!(inspect(&daemon, &image, "{{json .Config.Entrypoint}}"), r#"["/srv/app/app.sh"]"#);
    assert_eq!(inspect(&daemon, &image, "{{json .Config.Cmd}}"), r#"["world"]"#);

    // History: one entry per step that changed the image, newest first,
    // with the layers of RUN and COPY and none for config steps. (Docker
    // also lists ARG steps and spells some entries its own way, so only
    // their start is compared.)
    let history =
        daemon.kiln_ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", &image]);
    let entries: Vec<(&str, &str)> = history
        .lines()
        .filter(|l| !l.starts_with("ARG "))
        .map(|l| l.rsplit_once('|').unwrap_or((l, "")))
        .collect();
    assert_eq!(entries.len(), 14, "13 steps and the base: {history}");
    let expected = [
        (r#"CMD ["world"]"#, ""),
        (r#"ENTRYPOINT ["/srv/app/app.sh"]"#, ""),
        ("USER 1000:1000", ""),
        ("HEALTHCHECK ", "*"),
        ("STOPSIGNAL SIGUSR1", ""),
        ("VOLUME ", "*"),
        ("EXPOSE ", "*"),
        ("LABEL org.example.name=kiln test version=1", ""),
        ("RUN ", r#"/bin/sh -c chmod 755 app.sh && echo "built by $(id -u)" > who.txt"#),
        ("COPY app.sh /srv/app/", ""),
        ("RUN ", r#"/bin/sh -c echo "$GREETING from run" > greeting.txt"#),
        ("WORKDIR /srv/app", ""),
        ("ENV APP_HOME=/srv/app MODE=hello-mode", ""),
    ];
    for (i, (start, end)) in expected.iter().enumerate() {
        let created_by = entries[i].0;
        let matches = match *end {
            "" => created_by == *start,
            "*" => created_by.starts_with(start),
            end => created_by.starts_with(start) && created_by.ends_with(end),
        };
        assert!(
            matches,
            "history entry {i} is {created_by:?}, expected {start:?}..{end:?}: {history}"
        );
        let has_layer = start.starts_with("RUN ") || start.starts_with("COPY ");
        assert_eq!(entries[i].1 != "0B", has_layer, "size of {created_by:?}: {history}");
    }
}

#[test]
fn builds_without_cache_are_reproducible_and_check_reproducible_finds_the_difference() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let ctx = context(
        &daemon,
        &[
            (
                "Dockerfile",
                "FROM bb\nRUN mkdir /out && echo made > /out/made && touch /out/empty\n\
                 COPY data.txt /out/\nENV BUILT=yes\nCMD [\"cat\", \"/out/made\"]\n",
            ),
            ("data.txt", "some data\n"),
        ],
    );
    let first = build_id(&daemon, &ctx, &["--no-cache"]);
    let iidfile = daemon.dir.path().join(format!("{}.iid", unique_name()));
    let iid_arg = iidfile.to_str().expect("utf-8");
    build_ok(&daemon, &ctx, &["--no-cache", "--iidfile", iid_arg]);
    let second = std::fs::read_to_string(&iidfile).expect("the --iidfile");
    assert_eq!(first, second.trim(), "two builds without cache give the same image");

    // The date the image says it was made is SOURCE_DATE_EPOCH, so
    // another epoch is another image.
    let dated =
        build_id(&daemon, &ctx, &["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    assert_ne!(dated, first);
    assert_eq!(inspect(&daemon, &dated, "{{.Created}}"), "2023-11-14T22:13:20Z");
    assert_eq!(cat(&daemon, &dated, "/out/made"), "made\n");

    let checked = build(&daemon, &ctx, &["--check-reproducible", "-t", "checked"]);
    assert_eq!(checked.code, Some(0), "{checked:?}");
    assert_eq!(inspect(&daemon, "checked", "{{.Id}}"), first, "{checked:?}");

    // (busybox's `date` has no %N: random bytes make the step differ.)
    let unstable = context(
        &daemon,
        &[(
            "Dockerfile",
            "FROM bb\nRUN echo stable > /stable\nRUN od -An -tx1 -N16 /dev/urandom > /stamp\n",
        )],
    );
    let (_, line) = build_fails(&daemon, &unstable, &["--check-reproducible", "-t", "unstable"]);
    assert!(line.contains("not reproducible"), "{line}");
    assert!(line.contains("/stamp"), "the error names the differing file: {line}");
    assert!(!line.contains("/stable"), "{line}");
    let listed = daemon.kiln_run(&["image", "inspect", "unstable"]);
    assert_ne!(listed.code, Some(0), "a build that is not reproducible is not tagged");
}

#[test]
fn the_cache_is_reused_exactly_when_the_files_a_step_reads_are_unchanged() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let ctx = context(
        &daemon,
        &[
            (
                "Dockerfile",
                "FROM bb\nRUN echo 1 > /one\nCOPY a.txt /a\nRUN cat /a > /copy\nCOPY b.txt /b\n",
            ),
            ("a.txt", "a1\n"),
            ("b.txt", "b1\n"),
            ("ignored.txt", "i1\n"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    let first = build_ok(&daemon, &ctx, &["-t", &image]);
    let all = |cached: bool, copy_a: bool, b: bool| {
        expect_steps(&[
            ("FROM bb", false),
            ("RUN echo 1 > /one", cached),
            ("COPY a.txt /a", copy_a),
            ("RUN cat /a > /copy", copy_a),
            ("COPY b.txt /b", b),
        ])
    };
    assert_eq!(steps(&first), all(false, false, false), "{first}");

    // A file the context leaves out changes nothing.
    write(&ctx.join("ignored.txt"), "i2, longer\n");
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(steps(&out), all(true, true, true), "{out}");

    // A new mtime alone is not a change.
    let touched =
        Command::new("touch").arg("-d").arg("2001-02-03 04:05:06").arg(ctx.join("a.txt")).status();
    assert!(touched.expect("touch").success());
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(steps(&out), all(true, true, true), "{out}");

    // One byte of b.txt: only the last COPY runs again.
    write(&ctx.join("b.txt"), "b2\n");
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(steps(&out), all(true, true, false), "{out}");
    assert_eq!(cat(&daemon, &image, "/b"), "b2\n");

    // a.txt: its COPY and everything after it.
    write(&ctx.join("a.txt"), "a2\n");
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(steps(&out), all(true, false, false), "{out}");
    assert_eq!(cat(&daemon, &image, "/copy"), "a2\n");
    assert_eq!(cat(&daemon, &image, "/one"), "1\n");

    // And back to the first content: the first build's steps are found.
    write(&ctx.join("a.txt"), "a1\n");
    write(&ctx.join("b.txt"), "b1\n");
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(steps(&out), all(true, true, true), "{out}");
    assert_eq!(cat(&daemon, &image, "/copy"), "a1\n");
}

#[test]
fn multi_stage_builds_copy_between_stages_and_skip_stages_not_needed() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let dockerfile = "\
FROM bb AS builder
RUN mkdir /out && echo built > /out/artifact
FROM bb AS other
RUN echo other > /other
FROM bb AS unused
RUN echo unused-stage-ran; exit 1
FROM bb
COPY --from=builder /out/artifact /from-builder
COPY --from=0 /out /from-zero
COPY --from=other /other /other
";
    let ctx = context(&daemon, &[("Dockerfile", dockerfile)]);
    let out = build_ok(&daemon, &ctx, &["-t", &image]);
    assert!(!out.contains("unused"), "a stage nothing needs never runs: {out}");
    assert_eq!(cat(&daemon, &image, "/from-builder"), "built\n");
    assert_eq!(cat(&daemon, &image, "/from-zero/artifact"), "built\n");
    assert_eq!(cat(&daemon, &image, "/other"), "other\n");
    assert!(!exists(&daemon, &image, "/out"), "the final stage has only what it copied");

    // --target stops at the builder: its steps only.
    let target = format!("{image}-builder");
    let out = build_ok(&daemon, &ctx, &["--target", "builder", "-t", &target]);
    assert_eq!(
        steps(&out),
        expect_steps(&[
            ("FROM bb AS builder", false),
            ("RUN mkdir /out && echo built > /out/artifact", true)
        ]),
        "{out}"
    );
    assert_eq!(cat(&daemon, &target, "/out/artifact"), "built\n");
    assert!(!exists(&daemon, &target, "/from-builder"));
    assert!(!exists(&daemon, &target, "/other"));

    // The unused stage does fail when it is the target.
    let (_, line) = build_fails(&daemon, &ctx, &["--target", "unused"]);
    assert!(line.contains("exit code 1"), "{line}");
}

#[test]
fn heredocs_run_scripts_with_their_interpreter_and_copy_inline_files() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let dockerfile = r#"FROM bb
RUN <<EOF
echo one > /multi
echo two >> /multi
EOF
RUN <<EOF
#!/bin/sh
set -e
echo "sh script" > /shebang
EOF
RUN <<EOF
#!/bin/awk -f
BEGIN { print "awk script" > "/awk" }
EOF
COPY <<EOF /etc/greeting
hello from heredoc
second line
EOF
"#;
    let ctx = context(&daemon, &[("Dockerfile", dockerfile)]);
    build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(cat(&daemon, &image, "/multi"), "one\ntwo\n");
    assert_eq!(cat(&daemon, &image, "/shebang"), "sh script\n");
    assert_eq!(cat(&daemon, &image, "/awk"), "awk script\n", "the #! line picks the interpreter");
    assert_eq!(cat(&daemon, &image, "/etc/greeting"), "hello from heredoc\nsecond line\n");
}

#[test]
fn cache_mounts_persist_between_builds_and_stay_out_of_the_image() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let ctx = context(
        &daemon,
        &[(
            "Dockerfile",
            "FROM bb\nRUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/log; wc -l < /cache/log > /count'\n",
        )],
    );
    build_ok(&daemon, &ctx, &["--no-cache", "-t", &image]);
    assert_eq!(cat(&daemon, &image, "/count").trim(), "1");
    build_ok(&daemon, &ctx, &["--no-cache", "-t", &image]);
    assert_eq!(cat(&daemon, &image, "/count").trim(), "2", "the cache mount kept its file");
    let listed = run_in(&daemon, &image, &["ls", "-A", "/cache"]);
    assert!(
        listed.code != Some(0) || listed.stdout.trim().is_empty(),
        "the cache mount's files are not in the image: {listed:?}"
    );
}

#[test]
fn secrets_reach_the_step_but_never_the_image_or_the_cache() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let marker = format!("secret-{}-{}", unique_name(), unique_name());
    let secret = daemon.dir.path().join("token");
    write(&secret, &marker);
    let ctx = context(
        &daemon,
        &[(
            "Dockerfile",
            "FROM bb\n\
             RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test -s /run/secrets/tok \
             && sha256sum /run/secrets/tok | cut -c1-64 > /secret-sum\n\
             RUN test ! -e /run/secrets/tok && echo gone > /later\n",
        )],
    );
    let src = format!("id=tok,src={}", secret.display());
    let out = build_ok(&daemon, &ctx, &["--secret", &src, "-t", &image]);
    assert!(!out.contains(&marker), "{out}");

    // The step saw the secret's bytes: its hash is in the image.
    let sum = Command::new("sha256sum").arg(&secret).output().expect("sha256sum");
    let sum =
        String::from_utf8_lossy(&sum.stdout).split_whitespace().next().expect("sum").to_owned();
    assert_eq!(cat(&daemon, &image, "/secret-sum").trim(), sum);
    assert_eq!(cat(&daemon, &image, "/later"), "gone\n", "the next step does not see it");
    assert!(!exists(&daemon, &image, "/run/secrets/tok"));

    // The saved image holds the layer with the hash (so the layers are
    // searchable as they are) and not the secret.
    let archive = saved(&daemon, &image);
    assert!(contains_bytes(&archive, sum.as_bytes()), "the saved layers are plain tar");
    assert!(!contains_bytes(&archive, marker.as_bytes()), "the secret is in `kiln save`");
    assert!(daemon.root().join("build").join("cache").is_dir());
    for dir in [daemon.root(), daemon.exec_root()] {
        let found = files_containing(&dir, marker.as_bytes());
        assert!(found.is_empty(), "the secret is in {found:?}");
    }

    // Without the secret a step that requires it fails and names it.
    write(
        &ctx.join("Dockerfile"),
        "FROM bb\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n",
    );
    let (_, line) = build_fails(&daemon, &ctx, &[]);
    assert!(line.contains("secret tok not found"), "{line}");
}

#[test]
fn onbuild_triggers_run_in_the_child_build_and_are_not_inherited() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let base = format!("{}-base", unique_name());
    let child = format!("{}-child", unique_name());
    let base_ctx =
        context(&daemon, &[("Dockerfile", "FROM bb\nONBUILD RUN echo triggered > /trigger\n")]);
    build_ok(&daemon, &base_ctx, &["-t", &base]);
    assert_eq!(
        inspect(&daemon, &base, "{{json .Config.OnBuild}}"),
        r#"["RUN echo triggered > /trigger"]"#
    );
    assert!(!exists(&daemon, &base, "/trigger"), "a trigger does not run in its own build");

    let child_ctx =
        context(&daemon, &[("Dockerfile", &format!("FROM {base}\nRUN cat /trigger > /seen\n"))]);
    build_ok(&daemon, &child_ctx, &["-t", &child]);
    assert_eq!(cat(&daemon, &child, "/trigger"), "triggered\n");
    assert_eq!(cat(&daemon, &child, "/seen"), "triggered\n", "the trigger ran right after FROM");
    let onbuild = inspect(&daemon, &child, "{{json .Config.OnBuild}}");
    assert!(onbuild == "null" || onbuild == "[]", "the child keeps no trigger: {onbuild}");
}

#[test]
fn dockerignore_exceptions_bring_files_back() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let ctx = context(
        &daemon,
        &[
            ("Dockerfile", "FROM bb\nCOPY . /ctx/\n"),
            (".dockerignore", "*.log\n!keep.log\n"),
            ("keep.log", "kept\n"),
            ("other.log", "dropped\n"),
            ("app.txt", "app\n"),
            ("sub/deep.log", "deep\n"),
        ],
    );
    build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(
        run_ok(&daemon, &image, &["ls", "-A", "/ctx"]),
        ".dockerignore\nDockerfile\napp.txt\nkeep.log\nsub\n"
    );
    assert_eq!(cat(&daemon, &image, "/ctx/keep.log"), "kept\n");
    assert_eq!(cat(&daemon, &image, "/ctx/sub/deep.log"), "deep\n", "*.log is the top level only");
}

#[test]
fn user_names_resolve_through_the_images_passwd_for_run_and_copy_chown() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let dockerfile = "\
FROM bb AS base
RUN echo 'app:x:4321:4322:app:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appgrp:x:4322:' >> /etc/group && echo 'other:x:5555:' >> /etc/group
FROM base
USER app
RUN id -u > /tmp/uid && id -g > /tmp/gid
COPY --chown=app owned.txt /home/app/owned.txt
";
    let ctx = context(&daemon, &[("Dockerfile", dockerfile), ("owned.txt", "mine\n")]);
    build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(cat(&daemon, &image, "/tmp/uid"), "4321\n");
    assert_eq!(cat(&daemon, &image, "/tmp/gid"), "4322\n");
    assert_eq!(run_ok(&daemon, &image, &["id", "-u"]), "4321\n", "the image's USER");
    assert_eq!(cat(&daemon, &image, "/home/app/owned.txt"), "mine\n");

    // A name the image does not know is a clear error.
    let bad =
        context(&daemon, &[("Dockerfile", "FROM bb\nCOPY --chown=nosuchuser f /f\n"), ("f", "x")]);
    let (_, line) = build_fails(&daemon, &bad, &[]);
    assert!(line.contains("nosuchuser"), "{line}");
}

#[test]
fn copy_chown_gives_the_copied_files_that_owner() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let dockerfile = "\
FROM bb
RUN echo 'app:x:4321:4322:app:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appgrp:x:4322:' >> /etc/group && echo 'other:x:5555:' >> /etc/group
COPY --chown=app:other owned.txt /owned.txt
COPY --chown=app owned.txt /by-name/owned.txt
COPY --chown=7:8 dir /by-number
";
    let ctx = context(
        &daemon,
        &[("Dockerfile", dockerfile), ("owned.txt", "mine\n"), ("dir/inner.txt", "inner\n")],
    );
    build_ok(&daemon, &ctx, &["-t", &image]);
    let owner = |path: &str| run_ok(&daemon, &image, &["stat", "-c", "%u:%g", path]);
    assert_eq!(owner("/owned.txt"), "4321:5555\n");
    assert_eq!(owner("/by-name"), "4321:4322\n", "a directory made for the copy");
    assert_eq!(owner("/by-name/owned.txt"), "4321:4322\n", "a user name brings its group");
    assert_eq!(owner("/by-number"), "7:8\n");
    assert_eq!(owner("/by-number/inner.txt"), "7:8\n");
    assert_eq!(cat(&daemon, &image, "/owned.txt"), "mine\n");
}

#[test]
fn add_extracts_local_archives_and_copies_plain_files() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let image = unique_name();
    let ctx = context(
        &daemon,
        &[
            ("Dockerfile", "FROM bb\nADD files.tar /x/\nADD files.tar.gz /y\nADD plain.txt /z/\n"),
            ("plain.txt", "plain\n"),
        ],
    );
    let tree = daemon.dir.path().join(format!("tree-{}", unique_name()));
    write(&tree.join("inner/a.txt"), "from the tar\n");
    write(&tree.join("top.txt"), "top\n");
    for (name, flags) in [("files.tar", "-cf"), ("files.tar.gz", "-czf")] {
        let status = Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .arg(flags)
            .arg(ctx.join(name))
            .arg("inner")
            .arg("top.txt")
            .status()
            .expect("tar");
        assert!(status.success());
    }
    build_ok(&daemon, &ctx, &["-t", &image]);
    assert_eq!(cat(&daemon, &image, "/x/inner/a.txt"), "from the tar\n");
    assert_eq!(cat(&daemon, &image, "/x/top.txt"), "top\n");
    assert_eq!(cat(&daemon, &image, "/y/inner/a.txt"), "from the tar\n");
    assert_eq!(cat(&daemon, &image, "/z/plain.txt"), "plain\n");
    assert!(!exists(&daemon, &image, "/x/files.tar"), "the archive itself is not copied");
}

#[test]
fn bad_input_fails_with_one_clear_line_and_leaves_the_store_usable() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let failing = |dockerfile: &str, args: &[&str]| {
        let ctx = context(&daemon, &[("Dockerfile", dockerfile)]);
        build_fails(&daemon, &ctx, args).1
    };

    let line = failing("FROM bb\nRUN true\nCOPY onlyone\n", &[]);
    assert!(line.contains("Dockerfile:3:"), "{line}");
    let line = failing("FROM bb\nRUNN echo hi\n", &[]);
    assert!(line.contains("Dockerfile:2:") && line.contains("unknown instruction"), "{line}");
    assert!(line.to_lowercase().contains("runn"), "{line}");
    let line = failing("FROM bb AS twice\nRUN true\nFROM bb AS twice\n", &[]);
    assert!(line.contains("twice") && line.contains("Dockerfile:3"), "{line}");
    let line = failing("FROM bb\nCOPY ../outside /x\n", &[]);
    assert!(line.contains("outside the build context"), "{line}");
    let line = failing("FROM bb\nCOPY foo.txt /foo.txt\n", &[]);
    assert!(line.contains("COPY failed: file not found in build context: foo.txt"), "{line}");
    let line = failing("FROM bb AS one\nRUN true\n", &["--target", "nosuch"]);
    assert!(line.contains("nosuch"), "{line}");

    // A bad tag is refused before anything is sent, as docker's flag
    // parser refuses it.
    let ctx = context(&daemon, &[("Dockerfile", "FROM bb\n")]);
    let bad_tag = build(&daemon, &ctx, &["-t", "Bad:Tag"]);
    assert_eq!(bad_tag.code, Some(125), "{bad_tag:?}");
    assert!(bad_tag.stderr.contains("Bad:Tag"), "{bad_tag:?}");
    assert_eq!(bad_tag.stderr.trim().lines().count(), 1, "{bad_tag:?}");

    // A RUN that fails: its exit code and its last words; fixing it reuses
    // the steps before it.
    let ctx = context(
        &daemon,
        &[(
            "Dockerfile",
            "FROM bb\nRUN echo first > /first\nRUN echo working; echo last words before failing; exit 3\n",
        )],
    );
    let (run, line) = build_fails(&daemon, &ctx, &["-t", "fixed"]);
    assert!(line.contains("exit code 3") && line.contains("Dockerfile:3"), "{line}");
    assert!(run.stdout.contains("last words before failing"), "{run:?}");
    // With -q the step's output is held back and shown with the error.
    let quiet = build(&daemon, &ctx, &["-q", "--no-cache"]);
    assert_eq!(quiet.code, Some(1), "{quiet:?}");
    assert!(quiet.stdout.is_empty(), "{quiet:?}");
    assert!(quiet.stderr.contains("last words before failing\n"), "{quiet:?}");
    let last = quiet.stderr.trim().lines().last().unwrap_or_default();
    assert!(last.contains("exit code 3") && last.contains("Dockerfile:3"), "{quiet:?}");
    write(&ctx.join("Dockerfile"), "FROM bb\nRUN echo first > /first\nRUN echo fixed > /fixed\n");
    let out = build_ok(&daemon, &ctx, &["-t", "fixed"]);
    assert_eq!(
        steps(&out),
        expect_steps(&[
            ("FROM bb", false),
            ("RUN echo first > /first", true),
            ("RUN echo fixed > /fixed", false)
        ]),
        "{out}"
    );
    assert_eq!(cat(&daemon, "fixed", "/fixed"), "fixed\n");

    // None of the failures left a tag, a step root or a mount behind.
    assert_eq!(daemon.image_names(), ["bb:latest", "fixed:latest"]);
    let steps_dir = daemon.exec_root().join("build").join("steps");
    let left: Vec<_> = std::fs::read_dir(&steps_dir).into_iter().flatten().flatten().collect();
    assert!(left.is_empty(), "step roots left: {left:?}");
    assert!(step_mounts(&daemon).is_empty(), "{:?}", step_mounts(&daemon));
}

#[test]
fn context_symlinks_never_copy_files_from_outside_the_context() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let marker = format!("outside-{}", unique_name());
    let outside = daemon.dir.path().join(format!("{}.txt", unique_name()));
    write(&outside, &marker);
    let ctx = context(&daemon, &[("inside.txt", "inside\n")]);
    std::os::unix::fs::symlink(&outside, ctx.join("abs-link")).expect("symlink");
    let relative = Path::new("..").join(outside.file_name().expect("name"));
    std::os::unix::fs::symlink(relative, ctx.join("rel-link")).expect("symlink");

    for (n, source) in ["abs-link", "rel-link", "."].iter().enumerate() {
        let image = format!("{}-{n}", unique_name());
        write(&ctx.join("Dockerfile"), &format!("FROM bb\nCOPY {source} /copied/\n"));
        let run = build(&daemon, &ctx, &["-t", &image]);
        match run.code {
            Some(0) => {
                let archive = saved(&daemon, &image);
                assert!(
                    !contains_bytes(&archive, marker.as_bytes()),
                    "COPY {source} took the file outside the context into the image"
                );
                let seen =
                    run_in(&daemon, &image, &["sh", "-c", "cat /copied/* /copied/*/* 2>/dev/null"]);
                assert!(!seen.stdout.contains(&marker), "COPY {source}: {seen:?}");
            }
            Some(1) => {
                let line = run.stderr.trim();
                assert_eq!(line.lines().count(), 1, "{run:?}");
                assert!(line.contains(source) || line.contains("outside"), "{run:?}");
            }
            other => panic!("COPY {source}: exit {other:?}: {run:?}"),
        }
    }
}

/// Mounts (of this test process's view) under the daemon's dirs that are
/// build step roots.
fn step_mounts(daemon: &TestDaemon) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let dir = daemon.dir.path().display().to_string();
    mounts
        .lines()
        .filter(|l| l.contains(&dir) && l.contains("build/steps"))
        .map(str::to_owned)
        .collect()
}

/// Pids of processes whose environment holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(environ) = std::fs::read(entry.path().join("environ")) {
            if contains_bytes(&environ, marker.as_bytes()) {
                pids.push(name);
            }
        }
    }
    pids
}

#[test]
fn an_interrupted_build_leaves_no_process_mount_or_step_root() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let marker = format!("KILN_TEST_MARKER={}", unique_name());
    let ctx = context(
        &daemon,
        &[("Dockerfile", &format!("FROM bb\nENV {marker}\nRUN echo step-started && sleep 30\n"))],
    );
    let mut child = daemon
        .kiln()
        .arg("build")
        .arg(&ctx)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kiln build");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    // BuildKit's plain output: `#3 0.012 step-started`.
    while !seen.iter().any(|l: &String| l.ends_with(" step-started")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the RUN step did not start: {seen:?}");
            }
        }
    }
    assert!(!processes_with(&marker).is_empty(), "the step's sleep runs");

    // Ctrl-C, and SIGKILL if the CLI does not stop.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let stopped = Instant::now() + Duration::from_secs(3);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > stopped {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Within a few seconds, nothing of the step is left.
    let steps_dir = daemon.exec_root().join("build").join("steps");
    let settled = Instant::now() + Duration::from_secs(5);
    loop {
        let processes = processes_with(&marker);
        let mounts = step_mounts(&daemon);
        let roots: Vec<_> = std::fs::read_dir(&steps_dir).into_iter().flatten().flatten().collect();
        if processes.is_empty() && mounts.is_empty() && roots.is_empty() {
            break;
        }
        assert!(
            Instant::now() < settled,
            "left after the build was interrupted: processes {processes:?}, mounts {mounts:?}, \
             step roots {roots:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The daemon still builds.
    let ok = context(&daemon, &[("Dockerfile", "FROM bb\nRUN echo again > /again\n")]);
    build_ok(&daemon, &ok, &["-t", "again"]);
    assert_eq!(cat(&daemon, "again", "/again"), "again\n");
}

/// The docker CLIs to try `docker build` with: Debian's 20.10 at
/// /usr/bin/docker (the one the legacy builder is meant for) and the one on
/// PATH, when they differ.
fn docker_clis() -> Vec<PathBuf> {
    let mut clis = vec![crate::common::docker_cli()];
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() && !clis.iter().any(|c| c == &debian) {
        clis.insert(0, debian);
    }
    clis
}

#[test]
fn legacy_docker_build_works_against_kiln() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let ctx = context(
        &daemon,
        &[
            ("Dockerfile", "FROM bb\nCOPY msg.txt /msg.txt\nRUN echo ran >> /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"),
            ("msg.txt", "from docker build\n"),
        ],
    );
    for docker in docker_clis() {
        let name = unique_name();
        let mut cmd = Command::new("timeout");
        cmd.arg("--kill-after=5")
            .arg(BUILD_LIMIT)
            .arg(&docker)
            .arg("-H")
            .arg(daemon.host())
            .args(["build", "-t", &name])
            .arg(&ctx)
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config"));
        let run = Run::of(&mut cmd);
        assert_eq!(run.code, Some(0), "{} build: {run:?}", docker.display());
        let id = inspect(&daemon, &name, "{{.Id}}");
        assert!(
            run.stdout.contains(&format!("Successfully built {}\n", &id[7..19])),
            "{}: {run:?}",
            docker.display()
        );
        assert!(
            run.stdout.contains(&format!("Successfully tagged {name}:latest\n")),
            "{}: {run:?}",
            docker.display()
        );
        assert!(run.stdout.contains("Step 3/4 : RUN echo ran >> /msg.txt\n"), "{run:?}");
        assert_eq!(run_ok(&daemon, &name, &[]), "from docker build\nran\n");
    }
}

#[test]
fn an_exported_cache_carries_layers_and_cache_mounts_to_a_fresh_daemon() {
    kiln_testing::require_privileged!();
    let first = daemon_with_busybox();
    let ctx = context(
        &first,
        &[
            (
                "Dockerfile",
                "FROM bb\nRUN --mount=type=cache,target=/c sh -c 'echo run >> /c/log; wc -l < /c/log > /n'\nCOPY f /f\n",
            ),
            ("f", "data\n"),
        ],
    );
    let cache = first.dir.path().join(format!("cache-{}", unique_name()));
    let to = format!("type=local,dest={}", cache.display());
    let id = build_id(&first, &ctx, &["--cache-to", &to]);
    assert!(cache.join("kiln-cache.json").is_file(), "nothing exported to {}", cache.display());

    // A fresh daemon with the same base image (saved and loaded, so the
    // same id), and nothing else.
    let second = TestDaemon::start();
    let archive = second.dir.path().join("bb.tar");
    first.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "bb"]);
    second.kiln_ok(&["load", "-i", archive.to_str().expect("utf-8")]);
    let from = format!("type=local,src={}", cache.display());
    assert_eq!(build_id(&second, &ctx, &["--cache-from", &from]), id, "the cache was not reused");
    // The cache mount's contents came along: a rebuild without the layer
    // cache runs the step on them.
    build_id(&second, &ctx, &["--no-cache", "-t", "again"]);
    let n = second.kiln_ok(&["run", "--rm", "again", "cat", "/n"]);
    assert_eq!(n.trim(), "2", "the imported cache mount was not used");

    // Bad locations are one clear error each.
    let (_, line) = build_fails(&second, &ctx, &["--cache-to", "type=registry,ref=x"]);
    assert!(line.contains("not supported"), "{line}");
    let (_, line) = build_fails(&second, &ctx, &["--cache-to", "type=local,dest=relative/dir"]);
    assert!(line.contains("absolute"), "{line}");
}

#[test]
fn no_cache_filter_reruns_only_the_named_stage_and_run_steps_get_hosts_and_ulimits() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let ctx = context(
        &daemon,
        &[(
            "Dockerfile",
            "FROM bb AS noise\nRUN od -An -tx1 -N16 /dev/urandom > /r\n\
             FROM bb AS calm\nRUN echo calm > /c\n\
             FROM bb\nCOPY --from=noise /r /r\nCOPY --from=calm /c /c\n\
             RUN grep -q '10.1.2.3[[:space:]]*myhost' /etc/hosts && ulimit -n > /ulimit\n",
        )],
    );
    let args = ["--add-host", "myhost:10.1.2.3", "--ulimit", "nofile=1234:1234"];
    let first = build_id(&daemon, &ctx, &args);
    assert_eq!(build_id(&daemon, &ctx, &args), first, "a plain rebuild is all cached");
    let mut calm = args.to_vec();
    calm.extend(["--no-cache-filter", "calm"]);
    assert_eq!(
        build_id(&daemon, &ctx, &calm),
        first,
        "rerunning a deterministic stage changes nothing"
    );
    let mut noisy = args.to_vec();
    noisy.extend(["--no-cache-filter", "noise", "-t", "noisy"]);
    assert_ne!(build_id(&daemon, &ctx, &noisy), first, "the noise stage was not run again");
    assert_eq!(daemon.kiln_ok(&["run", "--rm", "noisy", "cat", "/ulimit"]).trim(), "1234");
}

/// Python's static file server on a free loopback port, serving `root`.
struct FileServer {
    child: std::process::Child,
    port: u16,
}

impl FileServer {
    fn start(root: &Path) -> FileServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        FileServer { child, port }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_downloads_urls_checks_their_checksum_and_reports_failures() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let served = daemon.dir.path().join(format!("www-{}", unique_name()));
    write(&served.join("model.bin"), "weights v1\n");
    // A tar is downloaded as it is, not unpacked (Docker's rule for URLs).
    let status = Command::new("tar")
        .arg("-C")
        .arg(&served)
        .arg("-cf")
        .arg(served.join("bundle.tar"))
        .arg("model.bin")
        .status()
        .expect("tar");
    assert!(status.success());
    let server = FileServer::start(&served);
    let base = format!("http://127.0.0.1:{}", server.port);
    let sum = {
        let out =
            Command::new("sha256sum").arg(served.join("model.bin")).output().expect("sha256sum");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        format!("sha256:{}", text.split_whitespace().next().expect("a sum"))
    };
    let ctx = context(
        &daemon,
        &[(
            "Dockerfile",
            &format!(
                "FROM bb\nADD --checksum={sum} {base}/model.bin /models/\nADD {base}/bundle.tar /b/\n"
            ),
        )],
    );
    build_ok(&daemon, &ctx, &["-t", "dl"]);
    let out = daemon.kiln_ok(&[
        "run",
        "--rm",
        "dl",
        "sh",
        "-c",
        "cat /models/model.bin; stat -c %a /models/model.bin; ls /b",
    ]);
    assert_eq!(out, "weights v1\n600\nbundle.tar\n");

    let bad = context(
        &daemon,
        &[(
            "Dockerfile",
            &format!("FROM bb\nADD --checksum=sha256:{} {base}/model.bin /m\n", "0".repeat(64)),
        )],
    );
    let (_, line) = build_fails(&daemon, &bad, &[]);
    assert!(line.contains("checksum mismatch"), "{line}");
    let missing =
        context(&daemon, &[("Dockerfile", &format!("FROM bb\nADD {base}/nope.bin /m\n"))]);
    let (_, line) = build_fails(&daemon, &missing, &[]);
    assert!(line.contains("404"), "{line}");
    let copy_url =
        context(&daemon, &[("Dockerfile", &format!("FROM bb\nCOPY {base}/model.bin /m\n"))]);
    let (_, line) = build_fails(&daemon, &copy_url, &[]);
    assert!(line.contains("not supported"), "{line}");
}

/// `git daemon` serving the bare repositories under `base` on a free
/// loopback port.
struct GitServer {
    child: std::process::Child,
    port: u16,
}

impl GitServer {
    fn start(base: &Path) -> GitServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon (apt-get install git)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        GitServer { child, port }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_git_repository_is_a_build_context_at_a_ref_and_directory() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let base = daemon.dir.path().join(format!("git-{}", unique_name()));
    let work = base.join("work");
    write(&work.join("app/Dockerfile"), "FROM bb\nCOPY hello.txt /hello.txt\n");
    write(&work.join("app/hello.txt"), "from the main branch\n");
    let git = |args: &[&str], dir: &Path| {
        let status = Command::new("git")
            .args(["-c", "user.name=kiln", "-c", "user.email=kiln@example.com"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?} failed");
    };
    git(&["init", "-q", "-b", "main", "."], &work);
    git(&["add", "."], &work);
    git(&["commit", "-q", "-m", "one"], &work);
    git(&["tag", "v1"], &work);
    write(&work.join("app/hello.txt"), "changed after v1\n");
    git(&["commit", "-q", "-am", "two"], &work);
    git(&["clone", "-q", "--bare", "work", "repo.git"], &base);
    let server = GitServer::start(&base);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);

    let at = |fragment: &str, tag: &str| {
        let url = format!("{url}#{fragment}");
        build_ok(&daemon, Path::new(&url), &["-t", tag]);
        daemon.kiln_ok(&["run", "--rm", tag, "cat", "/hello.txt"])
    };
    assert_eq!(at("main:app", "g-main"), "changed after v1\n");
    assert_eq!(at("v1:app", "g-v1"), "from the main branch\n");
    let (_, line) = build_fails(&daemon, Path::new(&format!("{url}#nosuch:app")), &[]);
    assert!(line.contains("nosuch"), "{line}");
    let (_, line) = build_fails(&daemon, Path::new(&format!("{url}#main:../..")), &[]);
    assert!(line.contains("leaves the repository"), "{line}");
}
