//! One logical line to one typed instruction: the keyword, its flags, and
//! its arguments read the way Docker reads that instruction.

use std::time::Duration;

use crate::error::{suggest, ErrorReason};
use crate::flag::{take_flags, FlagKind, FlagSpec, Flags};
use crate::heredoc::{parse_heredoc_word, Heredoc};
use crate::instruction::{
    Add, ArgDecl, Command, Copy, HealthCheck, Healthcheck, InstructionKind, KeyValue, Keyword,
    NetworkMode, Onbuild, Run, Security, Source,
};
use crate::mount::Mount;
use crate::words::{is_line_space, json_strings, split_keeping_quotes, split_whitespace};

/// A parsed logical line: `FROM` opens a stage, everything else belongs to one.
#[derive(Debug)]
pub(crate) enum Parsed {
    From(FromLine),
    Instruction(InstructionKind),
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug)]
pub(crate) struct FromLine {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// The first word of a logical line, and the rest after the spaces.
pub(crate) fn split_keyword(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(is_line_space) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_line_space)),
        None => (line, ""),
    }
}

/// The keyword a logical line starts with, if it is one.
pub(crate) fn keyword_of(line: &str) -> Option<Keyword> {
    Keyword::from_name(split_keyword(line).0)
}

/// Parses one logical line. `heredocs` are the bodies read after it.
pub(crate) fn parse_line(
    line: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
) -> Result<Parsed, ErrorReason> {
    let (word, rest) = split_keyword(line);
    let Some(keyword) = Keyword::from_name(word) else {
        return Err(ErrorReason::UnknownInstruction {
            name: word.to_owned(),
            suggestion: suggest(word, Keyword::ALL.iter().map(|k| k.as_str())),
        });
    };
    let (flag_words, args) = take_flags(rest);
    let args = args.trim();
    let name = keyword.as_str();
    let flags = |spec: FlagSpec| Flags::parse(name, &flag_words, spec);
    let kind = match keyword {
        Keyword::From => {
            return parse_from(flags(&[("platform", FlagKind::String)])?, args).map(Parsed::From)
        }
        Keyword::Run => parse_run(
            flags(&[
                ("mount", FlagKind::Strings),
                ("network", FlagKind::String),
                ("security", FlagKind::String),
            ])?,
            args,
            heredocs,
        )?,
        Keyword::Cmd => {
            flags(&[])?;
            InstructionKind::Cmd(command(args)?)
        }
        Keyword::Entrypoint => {
            flags(&[])?;
            InstructionKind::Entrypoint(command(args)?)
        }
        Keyword::Env => {
            flags(&[])?;
            InstructionKind::Env(key_values(keyword, args, escape)?)
        }
        Keyword::Label => {
            flags(&[])?;
            InstructionKind::Label(key_values(keyword, args, escape)?)
        }
        Keyword::Expose => {
            flags(&[])?;
            InstructionKind::Expose(at_least_one(keyword, split_whitespace(args))?)
        }
        Keyword::Copy => parse_copy(
            flags(&[
                ("from", FlagKind::String),
                ("chown", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
                ("parents", FlagKind::Bool),
                ("exclude", FlagKind::Strings),
            ])?,
            args,
            &heredocs,
        )?,
        Keyword::Add => parse_add(
            flags(&[
                ("chown", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
                ("exclude", FlagKind::Strings),
                ("checksum", FlagKind::String),
                ("keep-git-dir", FlagKind::Bool),
            ])?,
            args,
            &heredocs,
        )?,
        Keyword::Volume => {
            flags(&[])?;
            let paths = at_least_one(keyword, word_list(args)?)?;
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err(ErrorReason::EmptyVolume);
            }
            InstructionKind::Volume(paths)
        }
        Keyword::User => {
            flags(&[])?;
            InstructionKind::User(exactly_one(keyword, args)?)
        }
        Keyword::Workdir => {
            flags(&[])?;
            InstructionKind::Workdir(exactly_one(keyword, args)?)
        }
        Keyword::Stopsignal => {
            flags(&[])?;
            InstructionKind::Stopsignal(exactly_one(keyword, args)?)
        }
        Keyword::Maintainer => {
            flags(&[])?;
            InstructionKind::Maintainer(exactly_one(keyword, args)?)
        }
        Keyword::Arg => {
            flags(&[])?;
            let words = at_least_one(keyword, split_keeping_quotes(args, escape))?;
            InstructionKind::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((n, d)) => ArgDecl { name: n.to_owned(), default: Some(d.to_owned()) },
                        None => ArgDecl { name: w, default: None },
                    })
                    .collect(),
            )
        }
        Keyword::Onbuild => {
            flags(&[])?;
            parse_onbuild(args, escape)?
        }
        Keyword::Healthcheck => parse_healthcheck(
            flags(&[
                ("interval", FlagKind::String),
                ("timeout", FlagKind::String),
                ("start-period", FlagKind::String),
                ("start-interval", FlagKind::String),
                ("retries", FlagKind::String),
            ])?,
            !flag_words.is_empty(),
            args,
        )?,
        Keyword::Shell => {
            flags(&[])?;
            match command(args)? {
                Command::Exec(v) if v.is_empty() => {
                    return Err(ErrorReason::AtLeastOneArgument { keyword: name.to_owned() })
                }
                Command::Exec(v) => InstructionKind::Shell(v),
                Command::Shell(s) if s.is_empty() => {
                    return Err(ErrorReason::AtLeastOneArgument { keyword: name.to_owned() })
                }
                Command::Shell(_) => return Err(ErrorReason::ShellNotJson),
            }
        }
    };
    Ok(Parsed::Instruction(kind))
}

fn parse_from(mut flags: Flags, args: &str) -> Result<FromLine, ErrorReason> {
    let words = split_whitespace(args);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !is_valid_stage_name(&lower) {
                return Err(ErrorReason::InvalidStageName { name: name.clone() });
            }
            Some(lower)
        }
        _ => return Err(ErrorReason::FromArguments),
    };
    Ok(FromLine { base: words[0].clone(), name, platform: flags.string("platform") })
}

/// Docker's rule for stage names, after lower-casing: `^[a-z][a-z0-9-_.]*$`.
fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_run(
    mut flags: Flags,
    args: &str,
    heredocs: Vec<Heredoc>,
) -> Result<InstructionKind, ErrorReason> {
    let mounts = flags
        .strings("mount")
        .into_iter()
        .map(|value| {
            Mount::parse(&value).map_err(|reason| ErrorReason::InvalidMount { value, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let network = flags
        .string("network")
        .map(|value| match value.as_str() {
            "default" => Ok(NetworkMode::Default),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(ErrorReason::InvalidNetwork { value }),
        })
        .transpose()?;
    let security = flags
        .string("security")
        .map(|value| match value.as_str() {
            "sandbox" => Ok(Security::Sandbox),
            "insecure" => Ok(Security::Insecure),
            _ => Err(ErrorReason::InvalidSecurity { value }),
        })
        .transpose()?;
    let command = command(args)?;
    let empty = match &command {
        Command::Exec(v) => v.is_empty(),
        Command::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err(ErrorReason::AtLeastOneArgument { keyword: "RUN".to_owned() });
    }
    Ok(InstructionKind::Run(Run { command, mounts, network, security, heredocs }))
}

fn parse_copy(
    mut flags: Flags,
    args: &str,
    heredocs: &[Heredoc],
) -> Result<InstructionKind, ErrorReason> {
    let (sources, dest) = sources_and_dest(Keyword::Copy, args, heredocs)?;
    Ok(InstructionKind::Copy(Copy {
        sources,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags.strings("exclude"),
    }))
}

fn parse_add(
    mut flags: Flags,
    args: &str,
    heredocs: &[Heredoc],
) -> Result<InstructionKind, ErrorReason> {
    let (sources, dest) = sources_and_dest(Keyword::Add, args, heredocs)?;
    Ok(InstructionKind::Add(Add {
        sources,
        dest,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        excludes: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
    }))
}

/// COPY and ADD arguments: sources then the destination; a source written
/// `<<NAME` is the heredoc read after the line.
fn sources_and_dest(
    keyword: Keyword,
    args: &str,
    heredocs: &[Heredoc],
) -> Result<(Vec<Source>, String), ErrorReason> {
    let mut words = word_list(args)?;
    if words.len() < 2 {
        return Err(ErrorReason::AtLeastTwoArguments { keyword: keyword.as_str().to_owned() });
    }
    let dest = words.pop().unwrap_or_default();
    if parse_heredoc_word(&dest)?.is_some() {
        return Err(ErrorReason::HeredocDestination { keyword: keyword.as_str().to_owned() });
    }
    let mut sources = Vec::with_capacity(words.len());
    for word in words {
        let body = parse_heredoc_word(&word)?
            .and_then(|opener| heredocs.iter().find(|h| h.name == opener.name).cloned());
        sources.push(match body {
            Some(h) => Source::Heredoc(h),
            None => Source::Path(word),
        });
    }
    Ok((sources, dest))
}

fn parse_onbuild(args: &str, escape: char) -> Result<InstructionKind, ErrorReason> {
    if args.is_empty() {
        return Err(ErrorReason::AtLeastOneArgument { keyword: "ONBUILD".to_owned() });
    }
    match keyword_of(args) {
        Some(Keyword::Onbuild) => return Err(ErrorReason::OnbuildChain),
        Some(k @ (Keyword::From | Keyword::Maintainer)) => {
            return Err(ErrorReason::OnbuildTrigger { keyword: k.as_str().to_owned() })
        }
        _ => {}
    }
    let Parsed::Instruction(trigger) = parse_line(args, Vec::new(), escape)? else {
        // FROM was refused above; keep the compiler's exhaustiveness honest.
        return Err(ErrorReason::OnbuildTrigger { keyword: "FROM".to_owned() });
    };
    Ok(InstructionKind::Onbuild(Onbuild {
        expression: args.to_owned(),
        trigger: Box::new(trigger),
    }))
}

fn parse_healthcheck(
    mut flags: Flags,
    has_flags: bool,
    args: &str,
) -> Result<InstructionKind, ErrorReason> {
    let (kind, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim_start()),
        None => (args, ""),
    };
    if kind.is_empty() {
        return Err(ErrorReason::AtLeastOneArgument { keyword: "HEALTHCHECK".to_owned() });
    }
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() || has_flags {
                return Err(ErrorReason::HealthcheckNoneArguments);
            }
            Ok(InstructionKind::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let command = command(rest)?;
            let empty = match &command {
                Command::Exec(v) => v.is_empty(),
                Command::Shell(s) => s.is_empty(),
            };
            if empty {
                return Err(ErrorReason::HealthcheckCommand);
            }
            let mut duration = |flag: &str| -> Result<Option<Duration>, ErrorReason> {
                flags.string(flag).map(|value| health_duration(flag, &value)).transpose()
            };
            let interval = duration("interval")?;
            let timeout = duration("timeout")?;
            let start_period = duration("start-period")?;
            let start_interval = duration("start-interval")?;
            let retries = flags
                .string("retries")
                .map(|value| {
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|&r| i32::try_from(r).is_ok())
                        .ok_or(ErrorReason::Retries { value })
                })
                .transpose()?;
            Ok(InstructionKind::Healthcheck(Healthcheck::Check(HealthCheck {
                command,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            })))
        }
        _ => Err(ErrorReason::HealthcheckType { kind: kind.to_owned() }),
    }
}

/// A healthcheck duration: Go syntax, zero or at least 1ms.
fn health_duration(flag: &str, value: &str) -> Result<Duration, ErrorReason> {
    let invalid = || ErrorReason::Duration { flag: flag.to_owned(), value: value.to_owned() };
    let (negative, nanos) = go_duration(value).ok_or_else(invalid)?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if negative || nanos < 1_000_000 {
        return Err(ErrorReason::DurationTooShort { flag: flag.to_owned() });
    }
    Ok(Duration::from_nanos(nanos))
}

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `-1s`, `0`. Gives the
/// sign and the magnitude in nanoseconds; `None` if malformed or beyond
/// Go's range (about 292 years).
pub(crate) fn go_duration(s: &str) -> Option<(bool, u64)> {
    const LIMIT: u128 = i64::MAX as u128;
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some((negative, 0));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_end = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let mut value: u128 = 0;
        for d in int_part.bytes() {
            value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
            if value > LIMIT {
                return None;
            }
        }
        let mut nanos = value.checked_mul(scale)?;
        // Fraction digits beyond twenty cannot change a nanosecond count.
        let (mut fraction, mut denominator) = (0u128, 1u128);
        for d in frac_part.bytes().take(20) {
            fraction = fraction * 10 + u128::from(d - b'0');
            denominator *= 10;
        }
        nanos += fraction * scale / denominator;
        total = total.checked_add(nanos)?;
        if total > LIMIT {
            return None;
        }
        rest = after;
    }
    u64::try_from(total).ok().map(|t| (negative, t))
}

/// Exec form if `args` is a JSON string array, shell form otherwise.
fn command(args: &str) -> Result<Command, ErrorReason> {
    if args.is_empty() {
        return Ok(Command::Shell(String::new()));
    }
    Ok(match json_strings(args)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(args.to_owned()),
    })
}

/// A JSON string array, or else words split on spaces (COPY, ADD, VOLUME).
fn word_list(args: &str) -> Result<Vec<String>, ErrorReason> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    Ok(json_strings(args)?.unwrap_or_else(|| split_whitespace(args)))
}

/// `ENV`/`LABEL`: `k=v ...`, or the legacy `k v` when the first word has no `=`.
fn key_values(keyword: Keyword, args: &str, escape: char) -> Result<Vec<KeyValue>, ErrorReason> {
    let words = at_least_one(keyword, split_keeping_quotes(args, escape))?;
    if !words[0].contains('=') {
        let Some(i) = args.find(is_line_space) else {
            return Err(ErrorReason::NameWithoutValue { keyword: keyword.as_str().to_owned() });
        };
        let value = args[i..].trim_start_matches(is_line_space);
        return Ok(vec![KeyValue { key: args[..i].to_owned(), value: value.to_owned() }]);
    }
    let pairs = words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) => Ok(KeyValue { key: k.to_owned(), value: v.to_owned() }),
            None => Err(ErrorReason::MissingEquals { word }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if pairs.iter().any(|p| p.key.is_empty()) {
        return Err(ErrorReason::BlankName { keyword: keyword.as_str().to_owned() });
    }
    Ok(pairs)
}

fn at_least_one(keyword: Keyword, words: Vec<String>) -> Result<Vec<String>, ErrorReason> {
    if words.is_empty() {
        return Err(ErrorReason::AtLeastOneArgument { keyword: keyword.as_str().to_owned() });
    }
    Ok(words)
}

fn exactly_one(keyword: Keyword, args: &str) -> Result<String, ErrorReason> {
    if args.is_empty() {
        return Err(ErrorReason::ExactlyOneArgument { keyword: keyword.as_str().to_owned() });
    }
    Ok(args.to_owned())
}
