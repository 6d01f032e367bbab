//! The local terminal while a container is attached: raw mode, its size,
//! and the detach keys typed on stdin.
//!
//! The window size comes from `stty size` on our stdout: reading it
//! directly needs an ioctl that is `unsafe`, which this crate does not
//! allow, and a `stty` costs about a millisecond, once at start and once
//! per SIGWINCH. Where `stty` is missing, `$LINES` and `$COLUMNS` are used.

use std::io::IsTerminal as _;
use std::os::fd::AsFd as _;
use std::process::{Command, Stdio};

use nix::sys::termios::{self, SetArg, Termios};

/// Docker's default detach sequence, `ctrl-p,ctrl-q`.
pub(crate) const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// A terminal window's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub height: u32,
    pub width: u32,
}

/// The size of the terminal on our stdout; `None` when stdout is not a
/// terminal or the size is unknown (0×0).
pub(crate) fn size() -> Option<Size> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let from_stty = stdout.as_fd().try_clone_to_owned().ok().and_then(|tty| {
        let output = Command::new("stty")
            .arg("size")
            .stdin(Stdio::from(tty))
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| parse_stty_size(&String::from_utf8_lossy(&output.stdout)))?
    });
    from_stty.or_else(|| {
        let var = |name| std::env::var(name).ok();
        size_from_env(var("LINES").as_deref(), var("COLUMNS").as_deref())
    })
}

/// `stty size` prints `ROWS COLUMNS`.
fn parse_stty_size(text: &str) -> Option<Size> {
    let mut numbers = text.split_whitespace().map(str::parse::<u32>);
    let (Some(Ok(height)), Some(Ok(width)), None) =
        (numbers.next(), numbers.next(), numbers.next())
    else {
        return None;
    };
    (height > 0 && width > 0).then_some(Size { height, width })
}

fn size_from_env(lines: Option<&str>, columns: Option<&str>) -> Option<Size> {
    parse_stty_size(&format!("{} {}", lines?, columns?))
}

/// What went wrong with the local terminal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TerminalError {
    #[error("unable to set IO streams as raw terminal")]
    Raw {
        #[source]
        source: nix::Error,
    },
}

/// Stdin in raw mode (no echo, no line editing, no signals from keys) for
/// as long as the guard lives; dropping it restores the terminal, on every
/// way out.
#[derive(Debug)]
pub(crate) struct RawMode {
    original: Termios,
}

impl RawMode {
    /// Raw mode on stdin; `None` when stdin is not a terminal.
    pub(crate) fn enter() -> Result<Option<RawMode>, TerminalError> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let original =
            termios::tcgetattr(stdin.as_fd()).map_err(|source| TerminalError::Raw { source })?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|source| TerminalError::Raw { source })?;
        Ok(Some(RawMode { original }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.original);
    }
}

/// `--detach-keys` that do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({keys}) provided")]
pub(crate) struct DetachKeysError {
    pub keys: String,
}

/// `ctrl-p,ctrl-q` → its bytes, as docker's `term.ToBytes`: single
/// characters, `ctrl-@`, `ctrl-a` … `ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`,
/// `ctrl-^`, `ctrl-_`, and `DEL`.
pub(crate) fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, DetachKeysError> {
    let bad = || DetachKeysError { keys: keys.to_owned() };
    keys.split(',')
        .map(|key| match key.as_bytes() {
            [byte] => Ok(*byte),
            b"DEL" => Ok(127),
            [b'c', b't', b'r', b'l', b'-', c] => match c {
                b'@' => Ok(0),
                b'a'..=b'z' => Ok(c - b'a' + 1),
                b'[' => Ok(27),
                b'\\' => Ok(28),
                b']' => Ok(29),
                b'^' => Ok(30),
                b'_' => Ok(31),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        })
        .collect()
}

/// What typed bytes turn into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Send these on (possibly none: a partial sequence is held back).
    Forward(Vec<u8>),
    /// The whole detach sequence was typed; send `before` and detach.
    Detach { before: Vec<u8> },
}

/// Watches stdin for the detach sequence. Bytes pass through unless they
/// may be the start of it; held bytes are released as soon as the
/// sequence breaks, so nothing typed is lost.
#[derive(Debug, Clone)]
pub(crate) struct DetachDetector {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachDetector {
    pub(crate) fn new(keys: Vec<u8>) -> DetachDetector {
        DetachDetector { keys, matched: 0 }
    }

    pub(crate) fn scan(&mut self, input: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(input.len() + self.matched);
        for &byte in input {
            if self.keys.is_empty() {
                out.push(byte);
                continue;
            }
            if byte != self.keys[self.matched] && self.matched > 0 {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
            }
            if byte == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach { before: out };
                }
            } else {
                out.push(byte);
            }
        }
        Scan::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_dockers() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").as_deref(), Ok(DEFAULT_DETACH_KEYS));
        assert_eq!(parse_detach_keys("ctrl-a"), Ok(vec![1]));
        assert_eq!(parse_detach_keys("ctrl-z"), Ok(vec![26]));
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_"),
            Ok(vec![0, 27, 28, 29, 30, 31])
        );
        assert_eq!(parse_detach_keys("a,b,DEL"), Ok(vec![b'a', b'b', 127]));
        assert_eq!(parse_detach_keys("x,ctrl-x"), Ok(vec![b'x', 24]));
        for bad in ["", "ctrl-", "ctrl-A", "ctrl-1", "alt-x", "ab", "ctrl-p,,ctrl-q"] {
            assert_eq!(
                parse_detach_keys(bad),
                Err(DetachKeysError { keys: bad.to_owned() }),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_detach_keys("bogus").expect_err("bad").to_string(),
            "Invalid detach keys (bogus) provided"
        );
    }

    #[test]
    fn plain_input_passes_through() {
        let mut detector = DetachDetector::new(vec![16, 17]);
        assert_eq!(detector.scan(b"ls -l\r"), Scan::Forward(b"ls -l\r".to_vec()));
        assert_eq!(detector.scan(b""), Scan::Forward(Vec::new()));
    }

    #[test]
    fn the_whole_sequence_detaches_after_sending_what_came_before() {
        let mut detector = DetachDetector::new(vec![16, 17]);
        assert_eq!(detector.scan(b"ab\x10\x11cd"), Scan::Detach { before: b"ab".to_vec() });
        // Across reads, one key at a time, as typed.
        let mut detector = DetachDetector::new(vec![16, 17]);
        assert_eq!(detector.scan(b"x\x10"), Scan::Forward(b"x".to_vec()));
        assert_eq!(detector.scan(b"\x11"), Scan::Detach { before: Vec::new() });
    }

    #[test]
    fn a_broken_sequence_releases_the_held_bytes() {
        let mut detector = DetachDetector::new(vec![16, 17]);
        assert_eq!(detector.scan(b"\x10"), Scan::Forward(Vec::new()));
        assert_eq!(detector.scan(b"a"), Scan::Forward(b"\x10a".to_vec()));
        // A repeated first key: the first is released, the second held.
        assert_eq!(detector.scan(b"\x10\x10"), Scan::Forward(b"\x10".to_vec()));
        assert_eq!(detector.scan(b"\x11"), Scan::Detach { before: Vec::new() });
        let mut detector = DetachDetector::new(b"abc".to_vec());
        assert_eq!(detector.scan(b"abxabc"), Scan::Detach { before: b"abx".to_vec() });
    }

    #[test]
    fn single_key_and_empty_sequences() {
        let mut detector = DetachDetector::new(vec![1]);
        assert_eq!(detector.scan(b"hi\x01there"), Scan::Detach { before: b"hi".to_vec() });
        let mut detector = DetachDetector::new(Vec::new());
        assert_eq!(detector.scan(b"\x10\x11"), Scan::Forward(b"\x10\x11".to_vec()));
    }

    #[test]
    fn window_sizes_parse_from_stty_and_the_environment() {
        assert_eq!(parse_stty_size("24 80\n"), Some(Size { height: 24, width: 80 }));
        assert_eq!(parse_stty_size("0 0\n"), None);
        assert_eq!(parse_stty_size("24\n"), None);
        assert_eq!(parse_stty_size("24 80 1"), None);
        assert_eq!(parse_stty_size("stty: not a tty"), None);
        assert_eq!(size_from_env(Some("50"), Some("132")), Some(Size { height: 50, width: 132 }));
        assert_eq!(size_from_env(None, Some("132")), None);
    }
}
