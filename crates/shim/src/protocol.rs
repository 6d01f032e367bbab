//! The shim's control socket protocol, shared with the daemon.
//!
//! A connection opens with one request line of JSON ([`Request`], ending in
//! `\n`) and gets one reply line ([`Reply`]). The shim's ready line on its
//! stdout is a [`Reply`] too. After the reply of a streaming op (`attach`,
//! `wait`, `exec`) both directions carry frames: an 8-byte header
//! `[kind, 0, 0, 0, len u32 big-endian]` (Docker's multiplexed attach
//! header) and `len` bytes of payload. The exit frame ([`FrameKind::Exit`],
//! an [`ExitRecord`] as JSON) is the last one; then the shim closes.
//!
//! The encoders and [`FrameDecoder`] are pure, for callers with their own
//! I/O (the daemon uses tokio); [`read_frame`], [`write_frame`],
//! [`read_line`] and [`write_line`] are blocking helpers over `std::io`.

use std::io::{self, Read, Write};

use kiln_runtime::spec::Process;
use serde::{Deserialize, Serialize};

/// The socket's file name in the shim's state directory.
pub const SOCKET_NAME: &str = "shim.sock";
/// The exit record's file name in the shim's state directory.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's pid file in its state directory.
pub const PID_FILE: &str = "shim.pid";
/// The shim's own diagnostics, in its state directory.
pub const LOG_FILE: &str = "shim.log";

/// The longest request line the shim reads.
pub const MAX_REQUEST_LINE: usize = 1 << 20;
/// The largest frame payload [`FrameDecoder`] and [`read_frame`] accept.
pub const MAX_FRAME_PAYLOAD: u32 = 1 << 20;

/// Exit code for a command that cannot be found (like a shell, and Docker).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code for a command that cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code for every other failure to run a container (Docker's 125).
pub const EXIT_FAILED: i32 = 125;

/// One request, the first line of a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container; replies with its pid.
    Start,
    /// Stream the container's output from now on and accept stdin frames.
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// One exit frame when the container has exited.
    Wait,
    /// Resize the container's terminal.
    Resize { height: u16, width: u16 },
    /// Run a new process in the container; the connection becomes its stream.
    Exec {
        process: Box<Process>,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        stdin: bool,
    },
}

/// The reply to a request, and the shim's ready line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// 127 (not found), 126 (not executable) or 125, when a process could
    /// not be run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Reply {
    /// `{"ok":true}`.
    pub fn ok() -> Reply {
        Reply { ok: true, ..Reply::default() }
    }

    /// `{"ok":true,"pid":N}`.
    pub fn with_pid(pid: i32) -> Reply {
        Reply { ok: true, pid: Some(pid), ..Reply::default() }
    }

    /// `{"ok":false,"message":…}`.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply { ok: false, message: Some(message.into()), ..Reply::default() }
    }

    /// `{"ok":false,"message":…,"exit_code":N}`: a process that could not run.
    pub fn failed_to_run(message: impl Into<String>, exit_code: i32) -> Reply {
        Reply { exit_code: Some(exit_code), ..Reply::error(message) }
    }
}

/// How a container (or an exec'd process) ended: `exit.json` and the
/// payload of the exit frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit code, or 128+N when killed by signal N.
    pub exit_code: i32,
    /// Whether the container's cgroup saw an OOM kill (false when unknown).
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    pub pid: i32,
}

/// The kinds of frame after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Client → shim: bytes for the process's stdin.
    Stdin = 0,
    /// Shim → client: the process's stdout (all output with a terminal).
    Stdout = 1,
    /// Shim → client: the process's stderr.
    Stderr = 2,
    /// Shim → client: an [`ExitRecord`] as JSON; the last frame.
    Exit = 3,
    /// Client → shim: no more stdin from this client (empty payload).
    CloseStdin = 4,
    /// Client → shim: a [`WindowSize`] as JSON.
    Resize = 5,
}

impl FrameKind {
    pub fn from_u8(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            0 => FrameKind::Stdin,
            1 => FrameKind::Stdout,
            2 => FrameKind::Stderr,
            3 => FrameKind::Exit,
            4 => FrameKind::CloseStdin,
            5 => FrameKind::Resize,
            _ => return None,
        })
    }
}

/// The payload of a resize frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub height: u16,
    pub width: u16,
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type {0}")]
    UnknownKind(u8),
    #[error("frame header has non-zero padding")]
    Padding,
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME_PAYLOAD}")]
    TooLarge(u32),
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The 8-byte header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub len: u32,
}

impl FrameHeader {
    pub const LEN: usize = 8;

    pub fn parse(bytes: &[u8; 8]) -> Result<FrameHeader, FrameError> {
        let kind = FrameKind::from_u8(bytes[0]).ok_or(FrameError::UnknownKind(bytes[0]))?;
        if bytes[1..4] != [0, 0, 0] {
            return Err(FrameError::Padding);
        }
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if len > MAX_FRAME_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        Ok(FrameHeader { kind, len })
    }

    pub fn encode(self) -> [u8; 8] {
        let len = self.len.to_be_bytes();
        [self.kind as u8, 0, 0, 0, len[0], len[1], len[2], len[3]]
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

/// Header and payload in one buffer. Payloads over 4 GiB are not frames;
/// the shim never makes one (callers split big writes).
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FrameHeader::LEN + payload.len());
    append_frame(&mut out, kind, payload);
    out
}

/// Appends a frame to `out`.
pub fn append_frame(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&FrameHeader { kind, len }.encode());
    out.extend_from_slice(&payload[..len as usize]);
}

/// An exit frame carrying `record`.
pub fn encode_exit_frame(record: &ExitRecord) -> Vec<u8> {
    encode_frame(FrameKind::Exit, &to_json(record))
}

/// A resize frame.
pub fn encode_resize_frame(size: WindowSize) -> Vec<u8> {
    encode_frame(FrameKind::Resize, &to_json(&size))
}

/// A value as one line of JSON, with its `\n`.
pub fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = to_json(value);
    line.push(b'\n');
    line
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // The protocol's types have string keys and no maps that could fail.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// Parses a request line (with or without its `\n`).
pub fn parse_request(line: &[u8]) -> Result<Request, serde_json::Error> {
    serde_json::from_slice(trim_newline(line))
}

/// Parses a reply line (with or without its `\n`).
pub fn parse_reply(line: &[u8]) -> Result<Reply, serde_json::Error> {
    serde_json::from_slice(trim_newline(line))
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits frames out of a byte stream fed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.buf.first_chunk::<8>() else { return Ok(None) };
        let header = FrameHeader::parse(header)?;
        let end = FrameHeader::LEN + header.len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[FrameHeader::LEN..end].to_vec();
        self.buf.drain(..end);
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        Ok(Some(Frame { kind: header.kind, payload }))
    }

    /// Bytes held that do not make a whole frame yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Reads one frame; `None` at a clean end of stream (between frames).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let header = FrameHeader::parse(&header)?;
    let mut payload = vec![0u8; header.len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame { kind: header.kind, payload }))
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode_frame(kind, payload))
}

/// Writes a value as one line of JSON.
pub fn write_line<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    w.write_all(&encode_line(value))
}

/// Reads one line (up to [`MAX_REQUEST_LINE`]) a byte at a time, so nothing
/// after the `\n` is consumed; `None` at end of stream before any byte.
pub fn read_line(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Ok(Some(line));
                }
                if line.len() > MAX_REQUEST_LINE {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips_and_matches_docker_layout() {
        let bytes = encode_frame(FrameKind::Stderr, b"oops\n");
        assert_eq!(&bytes[..8], &[2, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&bytes[8..], b"oops\n");
        let header = FrameHeader::parse(bytes[..8].try_into().unwrap()).unwrap();
        assert_eq!(header, FrameHeader { kind: FrameKind::Stderr, len: 5 });
        let big = FrameHeader { kind: FrameKind::Stdout, len: 0x0102_0304 }.encode();
        assert_eq!(big, [1, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(FrameHeader::parse(&[9, 0, 0, 0, 0, 0, 0, 0]), Err(FrameError::UnknownKind(9)));
        assert_eq!(FrameHeader::parse(&[1, 0, 1, 0, 0, 0, 0, 0]), Err(FrameError::Padding));
        assert!(matches!(
            FrameHeader::parse(&[0, 0, 0, 0, 0xff, 0, 0, 0]),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn decoder_splits_frames_fed_byte_by_byte() {
        let mut stream = encode_frame(FrameKind::Stdin, b"hello");
        stream.extend(encode_frame(FrameKind::CloseStdin, b""));
        stream.extend(encode_resize_frame(WindowSize { height: 24, width: 80 }));
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in stream {
            decoder.push(&[byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], Frame { kind: FrameKind::Stdin, payload: b"hello".to_vec() });
        assert_eq!(frames[1].kind, FrameKind::CloseStdin);
        let size: WindowSize = serde_json::from_slice(&frames[2].payload).unwrap();
        assert_eq!(size, WindowSize { height: 24, width: 80 });
    }

    #[test]
    fn blocking_helpers_read_what_was_written() {
        let mut buf = Vec::new();
        write_line(&mut buf, &Reply::with_pid(42)).unwrap();
        write_frame(&mut buf, FrameKind::Stdout, b"out").unwrap();
        let record = ExitRecord {
            exit_code: 3,
            oom_killed: false,
            finished_at: "2026-01-02T03:04:05.000000006Z".into(),
            pid: 42,
        };
        buf.extend(encode_exit_frame(&record));
        let mut r = &buf[..];
        let line = read_line(&mut r).unwrap().unwrap();
        assert_eq!(line, b"{\"ok\":true,\"pid\":42}\n");
        assert_eq!(parse_reply(&line).unwrap(), Reply::with_pid(42));
        let out = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(out, Frame { kind: FrameKind::Stdout, payload: b"out".to_vec() });
        let exit = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(exit.kind, FrameKind::Exit);
        assert_eq!(serde_json::from_slice::<ExitRecord>(&exit.payload).unwrap(), record);
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_clean_end() {
        let bytes = encode_frame(FrameKind::Stdout, b"abcdef");
        assert!(read_frame(&mut &bytes[..10]).is_err());
        assert!(read_frame(&mut &bytes[..3]).is_err());
    }

    #[test]
    fn requests_parse_from_their_wire_form() {
        assert_eq!(parse_request(b"{\"op\":\"start\"}\n").unwrap(), Request::Start);
        assert_eq!(parse_request(b"{\"op\":\"wait\"}").unwrap(), Request::Wait);
        assert_eq!(
            parse_request(br#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#).unwrap(),
            Request::Attach { stdin: true, stdout: true, stderr: false }
        );
        assert_eq!(
            parse_request(br#"{"op":"resize","height":40,"width":120}"#).unwrap(),
            Request::Resize { height: 40, width: 120 }
        );
        let exec = parse_request(
            br#"{"op":"exec","process":{"args":["echo","hi"],"cwd":"/","env":["A=b"]},"tty":false,"stdin":true}"#,
        )
        .unwrap();
        let Request::Exec { process, tty, stdin } = exec else { panic!("not exec: {exec:?}") };
        assert_eq!(process.args, ["echo", "hi"]);
        assert!(!tty && stdin);
    }

    #[test]
    fn malformed_requests_are_errors() {
        for bad in [
            &b""[..],
            b"not json",
            b"{}",
            b"{\"op\":\"explode\"}",
            b"{\"op\":\"resize\",\"height\":-1,\"width\":2}",
            b"{\"op\":\"exec\"}",
            b"[1,2]",
        ] {
            assert!(parse_request(bad).is_err(), "{:?} parsed", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn replies_have_the_documented_wire_form() {
        assert_eq!(encode_line(&Reply::ok()), b"{\"ok\":true}\n");
        assert_eq!(
            encode_line(&Reply::failed_to_run("exec: \"nope\": not found", 127)),
            b"{\"ok\":false,\"message\":\"exec: \\\"nope\\\": not found\",\"exit_code\":127}\n"
        );
        let record = ExitRecord {
            exit_code: 137,
            oom_killed: true,
            finished_at: "2026-11-29T07:44:52.123456789Z".into(),
            pid: 7,
        };
        assert_eq!(
            String::from_utf8(to_json(&record)).unwrap(),
            r#"{"exit_code":137,"oom_killed":true,"finished_at":"2026-11-29T07:44:52.123456789Z","pid":7}"#
        );
    }
}
