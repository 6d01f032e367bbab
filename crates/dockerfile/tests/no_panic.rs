//! No input makes the parser, the expander or the ignore matcher panic,
//! hang or overflow the stack: random text, token soup, and mutations of
//! valid Dockerfiles, thousands of each, from fixed seeds so a failure
//! reproduces.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use kiln_dockerfile::ignore::Rules;
use kiln_dockerfile::{
    expand_word, expand_words, parse, referenced_variables, Command, InstructionKind, Source,
};

/// xorshift64*: small, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pieces that mean something to some part of the parser.
const FRAGMENTS: &[&str] = &[
    "FROM",
    "from",
    "RUN",
    "run",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "MAINTAINER",
    "NONE",
    "AS",
    "as",
    "--mount=",
    "type=cache",
    "type=secret",
    "type=ssh",
    "type=tmpfs",
    "type=bind",
    "target=/x",
    "source=",
    "from=",
    "id=",
    "sharing=locked",
    "mode=0755",
    "uid=",
    "gid=",
    "size=1g",
    "ro",
    "required",
    "env=X",
    "--network=none",
    "--security=insecure",
    "--from=",
    "--chown=",
    "--chmod=",
    "--link",
    "--parents",
    "--exclude=",
    "--checksum=",
    "--keep-git-dir",
    "--platform=",
    "--interval=",
    "--retries=",
    "--timeout=",
    "--start-period=",
    "--start-interval=",
    "--",
    ",",
    "=",
    "\"",
    "'",
    "\\",
    "`",
    "\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\t",
    "<<",
    "<<-",
    "<<EOF",
    "<<'EOF'",
    "<<\"EOF\"",
    "EOF",
    "\tEOF",
    "3<<",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "-",
    "+",
    "?",
    "#",
    "##",
    "%",
    "%%",
    "[",
    "]",
    "[\"a\"]",
    "[\"a\", 1]",
    "[]",
    "[[[[",
    "{",
    "# escape=`",
    "# escape=\\",
    "# syntax=x",
    "# check=skip",
    "é",
    "日本",
    "\u{feff}",
    "\u{0}",
    "\u{a0}",
    "*",
    "**",
    "/",
    "..",
    ".",
    "0",
    "1",
    "99999999999999999999999",
    "1.5h",
    "-1s",
    "1us",
    "a",
    "b",
    "name",
    "VAR",
    "$VAR",
    "${VAR:-x}",
    "${",
    "${:}",
    "$$",
    "!",
    "\u{10ffff}",
];

const VALID: &[&str] = &[
    "FROM alpine\nRUN echo hi\n",
    "# syntax=docker/dockerfile:1\n# escape=`\nFROM mcr.microsoft.com/windows AS base\nRUN dir c:\\ `\n  && echo\n",
    "ARG V=1\nFROM python:$V AS build\nENV A=b C=\"d e\"\nLABEL \"k\"='v' x=y\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --network=none pip install x\nCOPY --from=build --chown=1:1 --chmod=755 --link --exclude=*.pyc a b /c/\nADD --checksum=sha256:abc --keep-git-dir https://x/y.tar /z\n",
    "FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nCOPY <<-A <<'B' /dst/\n\ta\n\tA\nb\nB\n",
    "FROM a\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD curl -f http://x || exit 1\nSHELL [\"/bin/bash\", \"-c\"]\nONBUILD RUN make\nSTOPSIGNAL SIGTERM\nUSER app\nWORKDIR /app\nVOLUME [\"/data\"]\nEXPOSE 80/tcp\nMAINTAINER me\nENTRYPOINT [\"a\"]\nCMD b\n",
    "FROM a\nRUN apt-get update && \\\n  # comment\n\n  apt-get install -y x \\\n  y\n",
];

/// Exercises what a builder would do with a parsed file.
fn use_result(text: &str) {
    let env = HashMap::from([
        ("VAR".to_owned(), "v a l".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
    ]);
    let Ok(file) = parse(text) else { return };
    let escape = file.directives.escape;
    for stage in &file.stages {
        let _ = expand_word(&stage.base, &env, escape);
        for i in &stage.instructions {
            let _ = referenced_variables(&i.original, escape);
            match &i.kind {
                InstructionKind::Run(r) => {
                    let _ = r.shell_script();
                    for m in &r.mounts {
                        let _ = m.expand(&env, escape);
                    }
                    if let Command::Shell(s) = &r.command {
                        let _ = expand_words(s, &env, escape);
                    }
                }
                InstructionKind::Env(pairs) | InstructionKind::Label(pairs) => {
                    for p in pairs {
                        let _ = expand_word(&p.key, &env, escape);
                        let _ = expand_word(&p.value, &env, escape);
                    }
                }
                InstructionKind::Copy(c) => {
                    for s in &c.sources {
                        match s {
                            Source::Path(p) => drop(expand_word(p, &env, escape)),
                            Source::Heredoc(h) => drop(h.content()),
                        }
                    }
                    let _ = Rules::from_patterns(&c.excludes).map(|r| r.is_excluded("a/b.pyc"));
                }
                _ => {}
            }
        }
    }
}

fn ignore_checks(text: &str, path: &str) {
    if let Ok(rules) = Rules::parse(text) {
        let _ = rules.is_excluded(path);
        let _ = rules.can_skip_dir(path);
    }
}

/// Runs `f` on `input`; on a panic, fails naming the input.
fn must_not_panic(what: &str, input: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("{what} panicked on input {input:?}");
    }
}

fn soup(rng: &mut Rng, max_pieces: usize) -> String {
    let n = rng.below(max_pieces) + 1;
    (0..n).map(|_| rng.pick(FRAGMENTS)).collect()
}

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..rng.below(6) + 1 {
        let len = chars.len();
        let at = rng.below(len + 1);
        match rng.below(6) {
            0 if len > 0 => {
                let end = (at + rng.below(8)).min(len);
                chars.drain(at.min(end)..end);
            }
            1 => {
                let piece: Vec<char> = rng.pick(FRAGMENTS).chars().collect();
                chars.splice(at..at, piece);
            }
            2 if len > 1 => {
                let other = rng.below(len);
                chars.swap(at.min(len - 1), other);
            }
            3 if len > 0 => {
                let end = (at + rng.below(16)).min(len);
                let copy: Vec<char> = chars[at.min(end)..end].to_vec();
                chars.splice(at..at, copy);
            }
            4 => chars.truncate(at),
            _ => chars
                .insert(at.min(len), char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('x')),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..6000 {
        let text = soup(&mut rng, 60);
        must_not_panic("parse", &text, || use_result(&text));
        must_not_panic("expand_word", &text, || {
            let _ = expand_word(&text, &kiln_dockerfile::NoVariables, '\\');
            let _ = expand_words(&text, &kiln_dockerfile::NoVariables, '`');
            let _ = referenced_variables(&text, '\\');
        });
        let path = soup(&mut rng, 6);
        must_not_panic("ignore", &format!("{text:?} / {path:?}"), || ignore_checks(&text, &path));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        must_not_panic("parse", &text, || use_result(&text));
        must_not_panic("ignore", &text, || ignore_checks(&text, &text));
    }
}

#[test]
fn mutated_valid_dockerfiles_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for base in VALID {
        assert!(parse(base).is_ok(), "corpus file must parse: {base:?}: {:?}", parse(base).err());
    }
    for _ in 0..8000 {
        let base = VALID[rng.below(VALID.len())];
        let text = mutate(&mut rng, base);
        must_not_panic("parse", &text, || use_result(&text));
    }
}

#[test]
fn pathological_inputs_finish_quickly() {
    let started = Instant::now();
    let deep_subst = format!("FROM a\nENV X={}x{}\n", "${A:-".repeat(5000), "}".repeat(5000));
    let deep_json = format!("FROM a\nRUN {}\n", "[".repeat(100_000));
    let long_line = format!("FROM a\nRUN {}\n", "echo \\\n".repeat(20_000));
    let many_heredocs = format!("FROM a\nRUN {}\n{}", "<<A ".repeat(2000), "x\nA\n".repeat(2000));
    let many_flags = format!("FROM a\nCOPY {} a b\n", "--exclude=x ".repeat(20_000));
    let long_word = format!("FROM a\n{} x\n", "Q".repeat(100_000));
    for text in [&deep_subst, &deep_json, &long_line, &many_heredocs, &many_flags, &long_word] {
        must_not_panic("parse", &text[..text.len().min(80)], || use_result(text));
        let _ = expand_word(text, &kiln_dockerfile::NoVariables, '\\');
    }
    let stars = format!("{}x", "*/**/".repeat(200));
    let rules = Rules::parse(&format!("{stars}\n!{stars}y")).unwrap();
    let path = "a/".repeat(300) + "b";
    let _ = rules.is_excluded(&path);
    let _ = rules.can_skip_dir(&path);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
