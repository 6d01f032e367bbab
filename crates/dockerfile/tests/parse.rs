//! The parser through its public API: every instruction and flag, the
//! directive, continuation and heredoc rules, stages, and error messages
//! with their line numbers.

use std::time::Duration;

use kiln_dockerfile::{
    parse, ArgDecl, CacheSharing, Command, Dockerfile, HealthCheck, Healthcheck, Instruction,
    InstructionKind, KeyValue, Keyword, MountType, NetworkMode, Security, Source,
};

fn ok(text: &str) -> Dockerfile {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(d) => panic!("{text:?} should fail, parsed as {d:#?}"),
        Err(e) => e.to_string(),
    }
}

/// The instructions of the only stage of `FROM scratch\n` + `body`.
fn stage(body: &str) -> Vec<Instruction> {
    let mut file = ok(&format!("FROM scratch\n{body}"));
    assert_eq!(file.stages.len(), 1);
    file.stages.remove(0).instructions
}

fn one(body: &str) -> InstructionKind {
    let mut instructions = stage(body);
    assert_eq!(instructions.len(), 1, "{body:?}");
    instructions.remove(0).kind
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value.to_owned() }
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_owned())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| (*s).to_owned()).collect())
}

// ---- FROM and stages ----

#[test]
fn from_with_platform_and_name() {
    let f = ok("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM alpine\n");
    assert_eq!(f.stages.len(), 2);
    let s = &f.stages[0];
    assert_eq!(s.base, "golang:1.22");
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s.name.as_deref(), Some("build"), "stage names are lower-cased");
    assert_eq!(s.original, "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build");
    assert_eq!(s.span.start_line, 1);
    assert_eq!(f.stages[1].name, None);
    assert_eq!(f.stages[1].span.start_line, 2);
    assert_eq!(f.find_stage("BUILD"), Some(0));
    assert_eq!(f.find_stage("1"), Some(1));
    assert_eq!(f.find_stage("2"), None);
    assert_eq!(f.find_stage("alpine"), None);
}

#[test]
fn instructions_are_case_insensitive() {
    let f = ok("from alpine as base\nrun echo hi\nCoPy a b\n");
    assert_eq!(f.stages[0].name.as_deref(), Some("base"));
    let keywords: Vec<Keyword> =
        f.stages[0].instructions.iter().map(Instruction::keyword).collect();
    assert_eq!(keywords, [Keyword::Run, Keyword::Copy]);
}

#[test]
fn global_args_come_before_the_first_from() {
    let f = ok("ARG BASE=alpine VERSION\nARG X\nFROM $BASE:$VERSION\nARG VERSION\n");
    let names: Vec<&str> = f.global_arg_decls().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["BASE", "VERSION", "X"]);
    assert_eq!(f.stages[0].base, "$BASE:$VERSION");
    assert_eq!(f.stages[0].instructions.len(), 1, "the ARG after FROM belongs to the stage");
}

#[test]
fn stage_errors() {
    assert_eq!(
        err("FROM a AS x\nRUN true\nFROM b AS X\n"),
        "Dockerfile:3: duplicate stage name \"x\" (first used on line 1)"
    );
    assert_eq!(err("FROM a b\n"), "Dockerfile:1: FROM requires either one or three arguments");
    assert_eq!(
        err("\n\nFROM a to b\n"),
        "Dockerfile:3: FROM requires either one or three arguments"
    );
    assert_eq!(err("FROM\n"), "Dockerfile:1: FROM requires either one or three arguments");
    assert_eq!(
        err("FROM a AS 1st\n"),
        "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
    );
    assert_eq!(err("FROM a AS b@c\n").lines().count(), 1);
    assert_eq!(
        err("FROM --plat=x a\n"),
        "Dockerfile:1:6: unknown flag: --plat for FROM (did you mean --platform?)"
    );
}

#[test]
fn whole_file_errors() {
    assert_eq!(err(""), "Dockerfile: file with no instructions");
    assert_eq!(
        err("# syntax=docker/dockerfile:1\n\n# only comments\n   \n"),
        "Dockerfile: file with no instructions"
    );
    assert_eq!(
        err("ARG A\n"),
        "Dockerfile: no FROM instruction: the Dockerfile has no build stage"
    );
    assert_eq!(
        err("ARG A\nRUN x\nFROM a\n"),
        "Dockerfile:2: RUN before the first FROM: no build stage in current context"
    );
    let e = parse("").unwrap_err().with_file("gpu.Dockerfile");
    assert_eq!(e.to_string(), "gpu.Dockerfile: file with no instructions");
}

#[test]
fn unknown_instruction_names_line_and_suggests() {
    assert_eq!(
        err("FROM a\nRUN x\n\n\n\n\nRUNN make\n"),
        "Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert_eq!(err("FROM a\nfrobnicate x\n"), "Dockerfile:2: unknown instruction: frobnicate");
    let e = parse("FROM a\n  CPY a b\n").unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.to_string(), "Dockerfile:2: unknown instruction: CPY (did you mean COPY?)");
}

// ---- RUN, CMD, ENTRYPOINT ----

#[test]
fn run_shell_and_exec_forms() {
    let InstructionKind::Run(r) = one("RUN apt-get update && apt-get install -y git\n") else {
        panic!()
    };
    assert_eq!(r.command, shell("apt-get update && apt-get install -y git"));
    let InstructionKind::Run(r) = one("RUN [\"/bin/bash\", \"-c\", \"echo hi\"]\n") else {
        panic!()
    };
    assert_eq!(r.command, exec(&["/bin/bash", "-c", "echo hi"]));
}

#[test]
fn not_json_is_shell_form() {
    let InstructionKind::Run(r) = one("RUN [ -f /x ] && echo yes\n") else { panic!() };
    assert_eq!(r.command, shell("[ -f /x ] && echo yes"));
    let InstructionKind::Cmd(c) = one("CMD [\"a\", 'b']\n") else { panic!() };
    assert_eq!(c, shell("[\"a\", 'b']"), "single quotes are not JSON");
    assert_eq!(
        err("FROM a\nCMD [\"a\", 1]\n"),
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(
        one("CMD [\"python\", \"app.py\"]\n"),
        InstructionKind::Cmd(exec(&["python", "app.py"]))
    );
    assert_eq!(one("ENTRYPOINT exec python\n"), InstructionKind::Entrypoint(shell("exec python")));
    assert_eq!(one("CMD []\n"), InstructionKind::Cmd(exec(&[])));
    assert_eq!(one("CMD\n"), InstructionKind::Cmd(shell("")));
}

#[test]
fn run_flags_are_taken_out_of_the_command() {
    let InstructionKind::Run(r) = one(
        "RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked --mount=type=secret,id=hf,env=HF_TOKEN \\\n    --network=none --security=insecure pip install -r req.txt\n",
    ) else {
        panic!()
    };
    assert_eq!(r.command, shell("pip install -r req.txt"));
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[0].sharing, Some(CacheSharing::Locked));
    assert_eq!(r.mounts[1].kind, MountType::Secret);
    assert_eq!(r.mounts[1].env.as_deref(), Some("HF_TOKEN"));
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.security, Some(Security::Insecure));
}

#[test]
fn run_mount_types() {
    for (text, kind) in [
        ("type=bind,target=/src", MountType::Bind),
        ("target=/src", MountType::Bind),
        ("type=tmpfs,target=/tmp,size=1g", MountType::Tmpfs),
        ("type=ssh", MountType::Ssh),
        ("type=secret,id=x,required=true", MountType::Secret),
        (
            "type=cache,target=/c,id=c,from=base,source=/s,mode=0700,uid=1,gid=2,ro",
            MountType::Cache,
        ),
    ] {
        let InstructionKind::Run(r) = one(&format!("RUN --mount={text} true\n")) else { panic!() };
        assert_eq!(r.mounts[0].kind, kind, "{text}");
    }
    let InstructionKind::Run(r) = one("RUN --network=default true\n") else { panic!() };
    assert_eq!(r.network, Some(NetworkMode::Default));
    let InstructionKind::Run(r) = one("RUN --network=host true\n") else { panic!() };
    assert_eq!(r.network, Some(NetworkMode::Host));
}

#[test]
fn run_flag_errors_name_flag_and_line() {
    assert_eq!(
        err("FROM a\nRUN --mont=type=cache true\n"),
        "Dockerfile:2:5: unknown flag: --mont for RUN (did you mean --mount?)"
    );
    assert_eq!(
        err("FROM a\nRUN --network=bridge true\n"),
        "Dockerfile:2: unsupported network mode \"bridge\": expected default, none or host"
    );
    assert_eq!(
        err("FROM a\nRUN --security=root true\n"),
        "Dockerfile:2: unsupported security mode \"root\": expected sandbox or insecure"
    );
    assert_eq!(
        err("FROM a\nRUN --mount=type=cache,target=/x,sharing=bad true\n"),
        "Dockerfile:2:5: invalid --mount=type=cache,target=/x,sharing=bad: invalid value for sharing: bad"
    );
    assert_eq!(
        err("FROM a\nRUN --network=none --network=host x\n"),
        "Dockerfile:2:20: duplicate flag specified: --network"
    );
    assert_eq!(
        err("FROM a\nRUN --network x\n"),
        "Dockerfile:2:5: missing a value on flag: --network"
    );
    assert_eq!(err("FROM a\nRUN\n"), "Dockerfile:2: RUN requires at least one argument");
    assert_eq!(
        err("FROM a\nRUN --network=none\n"),
        "Dockerfile:2: RUN requires at least one argument"
    );
    assert_eq!(err("FROM a\nCMD --x a\n"), "Dockerfile:2:5: unknown flag: --x for CMD");
}

#[test]
fn flags_only_at_the_start() {
    let InstructionKind::Run(r) = one("RUN echo --mount=type=cache\n") else { panic!() };
    assert_eq!(r.command, shell("echo --mount=type=cache"));
    assert!(r.mounts.is_empty());
}

// ---- COPY and ADD ----

#[test]
fn copy_with_every_flag() {
    let InstructionKind::Copy(c) = one(
        "COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.pyc --exclude=tests/ src/ lib/ /app/\n",
    ) else {
        panic!()
    };
    assert_eq!(c.sources, [Source::Path("src/".into()), Source::Path("lib/".into())]);
    assert_eq!(c.dest, "/app/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, ["*.pyc", "tests/"]);
}

#[test]
fn copy_json_form_and_defaults() {
    let InstructionKind::Copy(c) = one("COPY [\"my file.txt\", \"/dest dir/\"]\n") else {
        panic!()
    };
    assert_eq!(c.sources, [Source::Path("my file.txt".into())]);
    assert_eq!(c.dest, "/dest dir/");
    assert!(!c.link && !c.parents && c.from.is_none() && c.excludes.is_empty());
    let InstructionKind::Copy(c) = one("COPY --link=false a b\n") else { panic!() };
    assert!(!c.link);
}

#[test]
fn add_with_its_flags() {
    let InstructionKind::Add(a) = one(
        "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir --chown=1:1 --chmod=644 --link --exclude=x https://example.com/a.tar.gz /opt/\n",
    ) else {
        panic!()
    };
    assert_eq!(a.sources, [Source::Path("https://example.com/a.tar.gz".into())]);
    assert_eq!(a.dest, "/opt/");
    assert!(a.checksum.as_deref().is_some_and(|c| c.starts_with("sha256:")));
    assert!(a.keep_git_dir && a.link);
    assert_eq!(a.excludes, ["x"]);
}

#[test]
fn copy_and_add_errors() {
    assert_eq!(err("FROM a\nCOPY onlyone\n"), "Dockerfile:2: COPY requires at least two arguments");
    assert_eq!(err("FROM a\nADD\n"), "Dockerfile:2: ADD requires at least two arguments");
    assert_eq!(err("FROM a\nADD --from=x a b\n"), "Dockerfile:2:5: unknown flag: --from for ADD");
    assert_eq!(
        err("FROM a\nCOPY --link=maybe a b\n"),
        "Dockerfile:2:6: expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(
        err("FROM a\nCOPY --from=a --from=b x y\n"),
        "Dockerfile:2:15: duplicate flag specified: --from"
    );
}

// ---- ENV, LABEL, ARG ----

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV a=b c=\"d e\" f=g\\ h\n"),
        InstructionKind::Env(vec![kv("a", "b"), kv("c", "\"d e\""), kv("f", "g\\ h")])
    );
    assert_eq!(
        one("ENV PATH /usr/local/bin:$PATH and more\n"),
        InstructionKind::Env(vec![kv("PATH", "/usr/local/bin:$PATH and more")])
    );
    assert_eq!(one("ENV EMPTY=\n"), InstructionKind::Env(vec![kv("EMPTY", "")]));
    assert_eq!(err("FROM a\nENV ONLYNAME\n"), "Dockerfile:2: ENV must have two arguments");
    assert_eq!(
        err("FROM a\nENV a=b c\n"),
        "Dockerfile:2: syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(err("FROM a\nENV\n"), "Dockerfile:2: ENV requires at least one argument");
    assert_eq!(err("FROM a\nENV =x\n"), "Dockerfile:2: ENV names can not be blank");
}

#[test]
fn label_with_quoted_keys_and_values() {
    assert_eq!(
        one("LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 'a b'='c d'\n"),
        InstructionKind::Label(vec![
            kv("\"com.example.vendor\"", "\"ACME Inc\""),
            kv("version", "1.0"),
            kv("'a b'", "'c d'"),
        ])
    );
    assert_eq!(
        one("LABEL maintainer someone@example.com\n"),
        InstructionKind::Label(vec![kv("maintainer", "someone@example.com")])
    );
    assert_eq!(err("FROM a\nLABEL\n"), "Dockerfile:2: LABEL requires at least one argument");
}

#[test]
fn arg_names_and_defaults() {
    assert_eq!(
        one("ARG A B=2 C=\"x y\" D=\n"),
        InstructionKind::Arg(vec![
            ArgDecl { name: "A".into(), default: None },
            ArgDecl { name: "B".into(), default: Some("2".into()) },
            ArgDecl { name: "C".into(), default: Some("\"x y\"".into()) },
            ArgDecl { name: "D".into(), default: Some(String::new()) },
        ])
    );
    assert_eq!(err("FROM a\nARG\n"), "Dockerfile:2: ARG requires at least one argument");
}

// ---- the rest ----

#[test]
fn expose_volume_user_workdir_stopsignal_maintainer_shell() {
    assert_eq!(
        one("EXPOSE 80/tcp 443 $PORT\n"),
        InstructionKind::Expose(vec!["80/tcp".into(), "443".into(), "$PORT".into()])
    );
    assert_eq!(
        one("VOLUME [\"/data\", \"/logs\"]\n"),
        InstructionKind::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(
        one("VOLUME /data /logs\n"),
        InstructionKind::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(one("USER app:app\n"), InstructionKind::User("app:app".into()));
    assert_eq!(one("WORKDIR /my app\n"), InstructionKind::Workdir("/my app".into()));
    assert_eq!(one("STOPSIGNAL SIGINT\n"), InstructionKind::Stopsignal("SIGINT".into()));
    assert_eq!(
        one("MAINTAINER Jane <jane@example.com>\n"),
        InstructionKind::Maintainer("Jane <jane@example.com>".into())
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-euo\", \"pipefail\", \"-c\"]\n"),
        InstructionKind::Shell(vec![
            "/bin/bash".into(),
            "-euo".into(),
            "pipefail".into(),
            "-c".into()
        ])
    );
    assert_eq!(err("FROM a\nEXPOSE\n"), "Dockerfile:2: EXPOSE requires at least one argument");
    assert_eq!(err("FROM a\nVOLUME\n"), "Dockerfile:2: VOLUME requires at least one argument");
    assert_eq!(
        err("FROM a\nVOLUME [\"\"]\n"),
        "Dockerfile:2: VOLUME specified can not be an empty string"
    );
    assert_eq!(err("FROM a\nUSER\n"), "Dockerfile:2: USER requires exactly one argument");
    assert_eq!(err("FROM a\nWORKDIR\n"), "Dockerfile:2: WORKDIR requires exactly one argument");
    assert_eq!(
        err("FROM a\nSHELL /bin/bash -c\n"),
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(err("FROM a\nSHELL []\n"), "Dockerfile:2: SHELL requires at least one argument");
}

#[test]
fn healthcheck_forms() {
    assert_eq!(one("HEALTHCHECK NONE\n"), InstructionKind::Healthcheck(Healthcheck::None));
    assert_eq!(
        one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1\n"),
        InstructionKind::Healthcheck(Healthcheck::Check(HealthCheck {
            command: shell("curl -f http://localhost/ || exit 1"),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_millis(1500)),
            start_interval: Some(Duration::from_millis(500)),
            retries: Some(3),
        }))
    );
    let InstructionKind::Healthcheck(Healthcheck::Check(h)) =
        one("healthcheck cmd [\"/bin/check\"]\n")
    else {
        panic!()
    };
    assert_eq!(h.command, exec(&["/bin/check"]));
    assert_eq!(h.interval, None);
    let InstructionKind::Healthcheck(Healthcheck::Check(h)) =
        one("HEALTHCHECK --interval=0 CMD true\n")
    else {
        panic!()
    };
    assert_eq!(h.interval, Some(Duration::ZERO));
}

#[test]
fn healthcheck_errors() {
    assert_eq!(
        err("FROM a\nHEALTHCHECK NONE x\n"),
        "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --retries=1 NONE\n"),
        "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK RUN x\n"),
        "Dockerfile:2: unknown type \"RUN\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK CMD\n"),
        "Dockerfile:2: missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK\n"),
        "Dockerfile:2: HEALTHCHECK requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --interval=10 CMD x\n"),
        "Dockerfile:2: invalid duration \"10\" for --interval"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --timeout=1us CMD x\n"),
        "Dockerfile:2: --timeout cannot be less than 1ms"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --interval=-5s CMD x\n"),
        "Dockerfile:2: --interval cannot be less than 1ms"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n"),
        "Dockerfile:2: invalid value \"-1\" for --retries: expected a number from 0"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --every=1s CMD x\n"),
        "Dockerfile:2:13: unknown flag: --every for HEALTHCHECK"
    );
}

#[test]
fn onbuild_wraps_an_instruction() {
    let InstructionKind::Onbuild(o) = one("ONBUILD COPY --from=base . /app\n") else { panic!() };
    assert_eq!(o.expression, "COPY --from=base . /app");
    let InstructionKind::Copy(c) = *o.trigger else { panic!() };
    assert_eq!(c.from.as_deref(), Some("base"));
    let InstructionKind::Onbuild(o) = one("onbuild run make\n") else { panic!() };
    assert_eq!(
        *o.trigger,
        InstructionKind::Run(kiln_dockerfile::Run {
            command: shell("make"),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
}

#[test]
fn onbuild_refusals() {
    assert_eq!(
        err("FROM a\nONBUILD ONBUILD RUN x\n"),
        "Dockerfile:2: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM a\nONBUILD FROM b\n"),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM a\nONBUILD maintainer me\n"),
        "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(err("FROM a\nONBUILD\n"), "Dockerfile:2: ONBUILD requires at least one argument");
    assert_eq!(
        err("FROM a\nONBUILD RUNN x\n"),
        "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"
    );
}

// ---- lines, comments, continuations ----

#[test]
fn continuation_skips_comments_and_blank_lines() {
    let f = ok("FROM a\nRUN apt-get update && \\\n    # a comment inside\n\n    apt-get install -y \\\n      git \\\n\n      curl\nRUN next\n");
    let i = &f.stages[0].instructions;
    assert_eq!(i.len(), 2);
    assert_eq!(
        i[0].kind,
        InstructionKind::Run(kiln_dockerfile::Run {
            command: shell("apt-get update &&     apt-get install -y       git       curl"),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
    assert_eq!((i[0].span.start_line, i[0].span.end_line), (2, 8));
    assert_eq!(i[1].span.start_line, 9);
}

#[test]
fn spans_cover_the_instruction_text() {
    let text = "FROM a\n\n  RUN one \\\n    two\r\nCOPY a b";
    let f = ok(text);
    let run = &f.stages[0].instructions[0];
    assert_eq!(&text[run.span.bytes.clone()], "RUN one \\\n    two");
    assert_eq!(run.original, "RUN one     two");
    let copy = &f.stages[0].instructions[1];
    assert_eq!(&text[copy.span.bytes.clone()], "COPY a b");
    assert_eq!((copy.span.start_line, copy.span.end_line), (5, 5));
}

#[test]
fn comments_only_at_line_start() {
    let f = ok("# comment\nFROM a\n   # indented comment\nRUN echo # not a comment\n");
    assert_eq!(
        f.stages[0].instructions[0].kind,
        InstructionKind::Run(kiln_dockerfile::Run {
            command: shell("echo # not a comment"),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
}

#[test]
fn trailing_escape_at_end_of_file_ends_the_instruction() {
    let f = ok("FROM a\nRUN echo \\");
    assert_eq!(f.stages[0].instructions[0].span.end_line, 2);
}

// ---- directives and escape ----

#[test]
fn directives_at_the_top() {
    let f = ok("# syntax=docker/dockerfile:1.7\n# escape=`\n# check=skip=all\nFROM a\n");
    assert_eq!(f.directives.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(f.directives.escape, '`');
    assert_eq!(f.directives.check.as_deref(), Some("skip=all"));
}

#[test]
fn directives_after_anything_else_are_comments() {
    for text in [
        "FROM a\n# escape=`\nRUN a \\\nb\n",
        "# a comment\n# escape=`\nFROM a\nRUN a \\\nb\n",
        "\n# escape=`\nFROM a\nRUN a \\\nb\n",
        "# unknown=x\n# escape=`\nFROM a\nRUN a \\\nb\n",
    ] {
        let f = ok(text);
        assert_eq!(f.directives.escape, '\\', "{text:?}");
        assert_eq!(f.stages[0].instructions.len(), 1, "{text:?}: the backslash continued the line");
    }
}

#[test]
fn backtick_escape_for_windows_paths() {
    let f = ok("# escape=`\nFROM mcr.microsoft.com/windows\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n  && echo done\n");
    let i = &f.stages[0].instructions;
    let InstructionKind::Copy(c) = &i[0].kind else { panic!() };
    assert_eq!(c.dest, "c:\\");
    let InstructionKind::Run(r) = &i[1].kind else { panic!() };
    assert_eq!(r.command, shell("dir c:\\   && echo done"));
}

#[test]
fn directive_errors() {
    assert_eq!(
        err("# escape=x\nFROM a\n"),
        "Dockerfile:1: invalid escape directive \"x\": must be ` or \\"
    );
    assert_eq!(
        err("# syntax=a\n# syntax=b\nFROM a\n"),
        "Dockerfile:2: only one syntax parser directive can be used"
    );
}

#[test]
fn byte_order_mark_is_ignored() {
    let f = ok("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(f.directives.escape, '`');
}

// ---- heredocs ----

#[test]
fn run_heredoc() {
    let InstructionKind::Run(r) = one("RUN <<EOF\napt-get update\n  apt-get install -y vim\nEOF\n")
    else {
        panic!()
    };
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].body, "apt-get update\n  apt-get install -y vim\n");
    assert!(r.heredocs[0].expand);
}

#[test]
fn run_heredoc_into_a_program_and_its_script() {
    let InstructionKind::Run(r) = one("RUN python3 <<PY > /out\nprint('$HOME')\nPY\n") else {
        panic!()
    };
    assert_eq!(r.command, shell("python3 <<PY > /out"));
    assert_eq!(r.shell_script().as_deref(), Some("python3 <<PY > /out\nprint('$HOME')\nPY\n"));
}

#[test]
fn several_heredocs_in_one_line() {
    let f = ok("FROM a\nRUN <<A <<-B cat\nfirst\nA\n\t\tsecond\n\tB\nRUN next\n");
    let i = &f.stages[0].instructions;
    assert_eq!(i.len(), 2);
    let InstructionKind::Run(r) = &i[0].kind else { panic!() };
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(r.heredocs[0].body, "first\n");
    assert_eq!(r.heredocs[1].body, "\t\tsecond\n", "bodies are verbatim");
    assert_eq!(r.heredocs[1].content(), "second\n", "<<- strips leading tabs");
    assert!(r.heredocs[1].chomp);
    assert_eq!((i[0].span.start_line, i[0].span.end_line), (2, 6));
    assert_eq!(i[1].span.start_line, 7);
}

#[test]
fn quoted_heredoc_delimiters_are_not_expanded() {
    for (line, expand) in [
        ("RUN <<\"EOF\"", false),
        ("RUN <<'EOF'", false),
        ("RUN <<E\"O\"F", false),
        ("RUN <<EOF", true),
    ] {
        let InstructionKind::Run(r) = one(&format!("{line}\necho $HOME\nEOF\n")) else { panic!() };
        assert_eq!(r.heredocs[0].name, "EOF", "{line}");
        assert_eq!(r.heredocs[0].expand, expand, "{line}");
        assert_eq!(r.heredocs[0].body, "echo $HOME\n");
    }
}

#[test]
fn copy_heredoc_becomes_a_file() {
    let InstructionKind::Copy(c) =
        one("COPY --chmod=755 <<run.sh /usr/local/bin/\n#!/bin/sh\necho hi\nrun.sh\n")
    else {
        panic!()
    };
    assert_eq!(c.dest, "/usr/local/bin/");
    let [Source::Heredoc(h)] = c.sources.as_slice() else { panic!("{:?}", c.sources) };
    assert_eq!(h.name, "run.sh");
    assert_eq!(h.body, "#!/bin/sh\necho hi\n", "a # line in a body is not a comment");
    let InstructionKind::Copy(c) = one("COPY <<A real.txt <<B /dest/\na\nA\nb\nB\n") else {
        panic!()
    };
    assert!(
        matches!(&c.sources[..], [Source::Heredoc(a), Source::Path(p), Source::Heredoc(b)] if a.name == "A" && p == "real.txt" && b.body == "b\n")
    );
}

#[test]
fn heredoc_errors() {
    assert_eq!(
        err("FROM a\nRUN <<EOF\necho hi\n"),
        "Dockerfile:2: unterminated heredoc: no line \"EOF\" ends it"
    );
    assert_eq!(
        err("FROM a\nCOPY a <<EOF\nx\nEOF\n"),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn heredocs_only_in_run_copy_add() {
    // CMD does not read a body: the next line is an instruction again.
    assert_eq!(
        err("FROM a\nCMD cat <<EOF\nhello\nEOF\n"),
        "Dockerfile:3: unknown instruction: hello"
    );
}

#[test]
fn heredoc_after_a_continuation() {
    let InstructionKind::Run(r) = one("RUN --network=none \\\n  bash <<EOF\nset -e\nEOF\n") else {
        panic!()
    };
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.command, shell("bash <<EOF"));
    assert_eq!(r.heredocs[0].body, "set -e\n");
}

// ---- a realistic file ----

#[test]
fn multi_stage_ml_dockerfile() {
    let text = r#"# syntax=docker/dockerfile:1
ARG CUDA=12.4.1
ARG PY=3.11

FROM nvidia/cuda:${CUDA}-cudnn-devel-ubuntu22.04 AS build
ARG PY
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update && apt-get install -y python${PY} python3-pip
WORKDIR /src
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip pip wheel -r requirements.txt -w /wheels

FROM nvidia/cuda:${CUDA}-runtime-ubuntu22.04
LABEL org.opencontainers.image.source="https://example.com/repo"
COPY --from=build --link /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
EXPOSE 8000
HEALTHCHECK --interval=10s CMD curl -fs http://localhost:8000/health || exit 1
USER 1000:1000
ENTRYPOINT ["python3", "-m", "server"]
CMD ["--port", "8000"]
"#;
    let f = ok(text);
    assert_eq!(f.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(f.global_args.len(), 2);
    assert_eq!(f.stages.len(), 2);
    assert_eq!(f.stages[0].name.as_deref(), Some("build"));
    assert_eq!(f.stages[0].instructions.len(), 6);
    assert_eq!(f.stages[1].instructions.len(), 8);
    assert_eq!(f.stages[0].instructions[1].span.start_line, 7);
    assert_eq!(f.stages[0].instructions[1].span.end_line, 8);
    let InstructionKind::Env(env) = &f.stages[0].instructions[1].kind else { panic!() };
    assert_eq!(env.len(), 2);
    let InstructionKind::Copy(c) = &f.stages[1].instructions[1].kind else { panic!() };
    assert_eq!(f.find_stage(c.from.as_deref().unwrap()), Some(0));
    // Every span's text starts with its keyword.
    for i in f.stages.iter().flat_map(|s| &s.instructions) {
        assert!(
            text[i.span.bytes.clone()].to_uppercase().starts_with(i.keyword().as_str()),
            "{:?}",
            i.span
        );
    }
}

#[test]
fn expanding_instructions() {
    let expanding: Vec<Keyword> =
        Keyword::ALL.into_iter().filter(|k| k.expands_variables()).collect();
    assert_eq!(
        expanding,
        [
            Keyword::Add,
            Keyword::Arg,
            Keyword::Copy,
            Keyword::Env,
            Keyword::Expose,
            Keyword::From,
            Keyword::Label,
            Keyword::Stopsignal,
            Keyword::User,
            Keyword::Volume,
            Keyword::Workdir
        ]
    );
    assert!(!Keyword::Run.expands_variables());
    assert!(!Keyword::Onbuild.expands_variables());
}

#[test]
fn parsed_words_expand_with_the_step_environment() {
    use std::collections::HashMap;
    let f = ok("FROM a\nENV GREETING=\"hello world\" NAME='$USER'\n");
    let InstructionKind::Env(pairs) = &f.stages[0].instructions[0].kind else { panic!() };
    let env = HashMap::from([("USER".to_owned(), "root".to_owned())]);
    let values: Vec<String> = pairs
        .iter()
        .map(|p| kiln_dockerfile::expand_word(&p.value, &env, f.directives.escape).unwrap())
        .collect();
    assert_eq!(values, ["hello world", "$USER"]);
}
