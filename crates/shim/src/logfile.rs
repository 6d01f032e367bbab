//! Container logs in Docker's json-file format: one JSON object a line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-29T07:44:52.123456789Z"}`.
//!
//! [`LogWriter`] splits output at newlines (a line without one is cut at
//! 16 KiB or at the end of its stream, as Docker does); [`LogReader`] reads
//! entries back for `docker logs`, with `since`, `until` and `tail`, and
//! follows a file that is still growing.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;

/// A partial line is written as its own entry once it reaches this size.
pub const MAX_PARTIAL_LINE: usize = 16 * 1024;

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// A moment as Unix nanoseconds (UTC), the resolution of the log's times.
pub type UnixNanos = i64;

/// Seconds and nanoseconds since the epoch → [`UnixNanos`].
pub fn unix_nanos(secs: i64, nanos: u32) -> UnixNanos {
    secs.saturating_mul(1_000_000_000).saturating_add(i64::from(nanos))
}

/// `2026-11-29T07:44:52.123456789Z`.
pub fn format_time(time: UnixNanos) -> String {
    let (secs, nanos) = (time.div_euclid(1_000_000_000), time.rem_euclid(1_000_000_000));
    kiln_types::time::UtcTime::from_unix(secs).rfc3339_nanos(nanos as u32)
}

/// RFC 3339 with up to nine fractional digits, any offset → [`UnixNanos`].
pub fn parse_time(text: &str) -> Option<UnixNanos> {
    let secs = kiln_types::time::parse_rfc3339(text)?;
    let after_seconds = text.split_once(['T', 't', ' '])?.1.get(8..)?;
    let nanos = match after_seconds.strip_prefix('.') {
        Some(frac) => {
            let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return None;
            }
            let kept = &digits[..digits.len().min(9)];
            let value: u32 = kept.parse().ok()?;
            value * 10u32.pow(9 - kept.len() as u32)
        }
        None => 0,
    };
    Some(unix_nanos(secs, nanos))
}

/// The current time.
pub fn now() -> UnixNanos {
    let (secs, nanos) = kiln_types::time::now();
    unix_nanos(secs, nanos)
}

/// Writes container output as json-file entries.
///
/// Nothing is flushed by itself: call [`LogWriter::flush`] when a batch of
/// output has been written (the shim does at every turn of its loop).
#[derive(Debug)]
pub struct LogWriter<W: Write = BufWriter<File>> {
    out: W,
    /// Per stream, the start of a line whose newline has not come yet.
    partial: [Vec<u8>; 2],
    scratch: Vec<u8>,
}

impl LogWriter<BufWriter<File>> {
    /// Opens (appending, creating with mode 0640) the log at `path`.
    pub fn open(path: &Path) -> io::Result<LogWriter<BufWriter<File>>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(path)?;
        Ok(LogWriter::new(BufWriter::with_capacity(32 * 1024, file)))
    }
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W) -> LogWriter<W> {
        LogWriter { out, partial: [Vec::new(), Vec::new()], scratch: Vec::new() }
    }

    /// Logs `data` read from `stream` at `time`: each complete line is an
    /// entry; the rest waits for its newline (or for 16 KiB).
    pub fn write(&mut self, stream: Stream, mut data: &[u8], time: UnixNanos) -> io::Result<()> {
        let mut stamp = None;
        while !data.is_empty() {
            let buf = &mut self.partial[stream.index()];
            let room = MAX_PARTIAL_LINE - buf.len();
            let window = &data[..room.min(data.len())];
            let (piece, complete) = match window.iter().position(|&b| b == b'\n') {
                Some(i) => (&window[..=i], true),
                None => (window, window.len() == room),
            };
            data = &data[piece.len()..];
            if !complete {
                buf.extend_from_slice(piece);
                break;
            }
            let stamp = stamp.get_or_insert_with(|| format_time(time));
            if buf.is_empty() {
                write_entry(&mut self.out, &mut self.scratch, stream, piece, stamp)?;
            } else {
                buf.extend_from_slice(piece);
                write_entry(&mut self.out, &mut self.scratch, stream, buf, stamp)?;
                buf.clear();
            }
        }
        Ok(())
    }

    /// Writes what is left of `stream`'s last line: the stream has ended.
    pub fn finish(&mut self, stream: Stream, time: UnixNanos) -> io::Result<()> {
        let buf = &mut self.partial[stream.index()];
        if !buf.is_empty() {
            write_entry(&mut self.out, &mut self.scratch, stream, buf, &format_time(time))?;
            *buf = Vec::new();
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_entry(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    stream: Stream,
    text: &[u8],
    time: &str,
) -> io::Result<()> {
    line.clear();
    line.extend_from_slice(b"{\"log\":\"");
    escape_json(line, text);
    line.extend_from_slice(b"\",\"stream\":\"");
    line.extend_from_slice(stream.as_str().as_bytes());
    line.extend_from_slice(b"\",\"time\":\"");
    line.extend_from_slice(time.as_bytes());
    line.extend_from_slice(b"\"}\n");
    let result = out.write_all(line);
    if line.capacity() > 4 * MAX_PARTIAL_LINE {
        *line = Vec::new();
    }
    result
}

/// Appends `bytes` as the inside of a JSON string, the way Docker's
/// json-file does: control characters, `<`, `>`, `&`, U+2028 and U+2029
/// escaped, and each byte of invalid UTF-8 as U+FFFD.
pub fn escape_json(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{0}'..='\u{1f}' | '<' | '>' | '&' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c => {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: Stream,
    pub time: UnixNanos,
    /// The text, with its trailing newline when the line was complete.
    pub bytes: Vec<u8>,
}

#[derive(Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
}

/// Parses one line of a json-file log; `None` for anything else.
pub fn parse_entry(line: &[u8]) -> Option<Entry> {
    let raw: RawEntry = serde_json::from_slice(line).ok()?;
    let stream = match raw.stream.as_str() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    Some(Entry { stream, time: parse_time(&raw.time)?, bytes: raw.log.into_bytes() })
}

/// Which entries a [`LogReader`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only entries at or after this time.
    pub since: Option<UnixNanos>,
    /// Only entries at or before this time; reading ends at the first later one.
    pub until: Option<UnixNanos>,
    /// Start with the last N entries of the file (before `since` applies,
    /// as Docker does); `None`: from the start.
    pub tail: Option<usize>,
}

/// Reads a json-file log from a position, and again as it grows.
#[derive(Debug)]
pub struct LogReader {
    file: File,
    offset: u64,
    options: ReadOptions,
    past_until: bool,
    caught_up: bool,
}

/// How much of the file one [`LogReader::next_entries`] reads at most.
const BATCH_BYTES: usize = 1 << 20;

impl LogReader {
    pub fn open(path: &Path, options: ReadOptions) -> io::Result<LogReader> {
        let mut file = File::open(path)?;
        let offset = match options.tail {
            Some(n) => tail_offset(&mut file, n)?,
            None => 0,
        };
        Ok(LogReader { file, offset, options, past_until: false, caught_up: false })
    }

    /// The entries written since the last call (at most about 1 MiB of
    /// them), filtered; a last line still being written is left for later.
    pub fn next_entries(&mut self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        if self.past_until {
            self.caught_up = true;
            return Ok(entries);
        }
        let len = self.file.metadata()?.len();
        if len < self.offset {
            // Truncated under us: start again from its beginning.
            self.offset = 0;
        }
        let want = usize::try_from(len - self.offset).unwrap_or(usize::MAX).min(BATCH_BYTES);
        let mut buf = vec![0u8; want];
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut got = 0;
        while got < want {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        let mut consumed = 0;
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                if consumed == 0 && line.len() >= BATCH_BYTES {
                    // A line longer than a batch is not an entry: skip it.
                    consumed += line.len();
                }
                break;
            }
            consumed += line.len();
            let Some(entry) = parse_entry(line) else { continue };
            if self.options.until.is_some_and(|until| entry.time > until) {
                self.past_until = true;
                break;
            }
            if self.options.since.is_some_and(|since| entry.time < since) {
                continue;
            }
            entries.push(entry);
        }
        let reached_end = self.offset + got as u64 >= len;
        self.offset += consumed as u64;
        self.caught_up = self.past_until || reached_end;
        Ok(entries)
    }

    /// True once a call found no more complete lines to read: the reader
    /// has caught up with the writer (for now), or passed `until`.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// True once an entry after `until` was seen: following can stop.
    pub fn is_past_until(&self) -> bool {
        self.past_until
    }
}

/// Every entry of the log at `path` that `options` selects.
pub fn read_entries(path: &Path, options: ReadOptions) -> io::Result<Vec<Entry>> {
    let mut reader = LogReader::open(path, options)?;
    let mut all = Vec::new();
    loop {
        all.extend(reader.next_entries()?);
        if reader.caught_up() {
            return Ok(all);
        }
    }
}

/// The offset where the last `n` complete lines of `file` start, found by
/// reading backwards from the end.
fn tail_offset(file: &mut File, n: usize) -> io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    // The (n+1)-th newline from the end ends the line before the n lines.
    let mut newlines = 0;
    let mut end = len;
    let mut block = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let piece = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(piece)?;
        for (i, &b) in piece.iter().enumerate().rev() {
            if b == b'\n' {
                newlines += 1;
                if newlines == n + 1 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixNanos = 1_796_197_492_123_456_789;

    fn written(f: impl FnOnce(&mut LogWriter<Vec<u8>>)) -> String {
        let mut w = LogWriter::new(Vec::new());
        f(&mut w);
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn times_format_and_parse_with_nanoseconds() {
        assert_eq!(format_time(T), "2026-12-02T07:44:52.123456789Z");
        assert_eq!(parse_time("2026-12-02T07:44:52.123456789Z"), Some(T));
        assert_eq!(parse_time("2026-12-02T07:44:52.5Z"), Some(T - 123_456_789 + 500_000_000));
        assert_eq!(parse_time("2026-12-02T08:44:52+01:00"), Some(T - 123_456_789));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn lines_become_entries_with_stream_and_time() {
        let text = written(|w| {
            w.write(Stream::Stdout, b"one\ntwo\nthr", T).unwrap();
            w.write(Stream::Stderr, b"err\n", T).unwrap();
            w.write(Stream::Stdout, b"ee\n", T).unwrap();
        });
        let t = "2026-12-02T07:44:52.123456789Z";
        assert_eq!(
            text,
            format!(
                "{{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n\
                 {{\"log\":\"two\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n\
                 {{\"log\":\"err\\n\",\"stream\":\"stderr\",\"time\":\"{t}\"}}\n\
                 {{\"log\":\"three\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n"
            )
        );
    }

    #[test]
    fn partial_lines_are_cut_at_16k_and_at_end_of_stream() {
        let long = vec![b'x'; MAX_PARTIAL_LINE + 10];
        let text = written(|w| {
            w.write(Stream::Stdout, &long, T).unwrap();
            w.write(Stream::Stdout, b"tail", T).unwrap();
            w.finish(Stream::Stdout, T).unwrap();
            w.finish(Stream::Stderr, T).unwrap();
        });
        let entries: Vec<Entry> =
            text.lines().map(|l| parse_entry(l.as_bytes()).unwrap()).collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].bytes.len(), MAX_PARTIAL_LINE);
        assert_eq!(entries[1].bytes, [&[b'x'; 10][..], b"tail"].concat());
    }

    #[test]
    fn a_long_line_with_its_newline_later_is_split_like_docker() {
        let mut line = vec![b'y'; MAX_PARTIAL_LINE + 3];
        line.push(b'\n');
        let text = written(|w| w.write(Stream::Stderr, &line, T).unwrap());
        let entries: Vec<Entry> =
            text.lines().map(|l| parse_entry(l.as_bytes()).unwrap()).collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].bytes.len(), MAX_PARTIAL_LINE);
        assert_eq!(entries[1].bytes, b"yyy\n");
        assert!(entries.iter().all(|e| e.stream == Stream::Stderr));
    }

    #[test]
    fn control_characters_html_and_invalid_utf8_are_escaped() {
        let mut out = Vec::new();
        escape_json(&mut out, b"a\"b\\c\t\x01\x1b[0m<&>\xff\xfeok \xe2\x80\xa8 \xc3\xa9");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\"b\\\\c\\t\\u0001\\u001b[0m\\u003c\\u0026\\u003e\\ufffd\\ufffdok \\u2028 é"
        );
        let text = written(|w| w.write(Stream::Stdout, b"bad \xff\x00 byte\n", T).unwrap());
        let entry = parse_entry(text.trim_end().as_bytes()).unwrap();
        assert_eq!(entry.bytes, "bad \u{fffd}\u{0} byte\n".as_bytes());
    }

    #[test]
    fn writer_and_reader_round_trip_with_since_until_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path).unwrap();
        for i in 0..10i64 {
            let stream = if i % 2 == 0 { Stream::Stdout } else { Stream::Stderr };
            w.write(stream, format!("line {i}\n").as_bytes(), T + i * 1000).unwrap();
        }
        w.flush().unwrap();
        let all = read_entries(&path, ReadOptions::default()).unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(
            all[3],
            Entry { stream: Stream::Stderr, time: T + 3000, bytes: b"line 3\n".to_vec() }
        );
        let since =
            read_entries(&path, ReadOptions { since: Some(T + 7000), ..Default::default() })
                .unwrap();
        assert_eq!(
            since.iter().map(|e| e.time).collect::<Vec<_>>(),
            [T + 7000, T + 8000, T + 9000]
        );
        let until =
            read_entries(&path, ReadOptions { until: Some(T + 1000), ..Default::default() })
                .unwrap();
        assert_eq!(until.len(), 2);
        let tail =
            read_entries(&path, ReadOptions { tail: Some(3), ..Default::default() }).unwrap();
        assert_eq!(tail[0].bytes, b"line 7\n");
        assert_eq!(tail.len(), 3);
        let none =
            read_entries(&path, ReadOptions { tail: Some(0), ..Default::default() }).unwrap();
        assert!(none.is_empty());
        let more =
            read_entries(&path, ReadOptions { tail: Some(50), ..Default::default() }).unwrap();
        assert_eq!(more.len(), 10);
    }

    #[test]
    fn tail_reads_backwards_across_blocks_of_a_big_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut w = LogWriter::open(&path).unwrap();
        for i in 0..20_000 {
            w.write(Stream::Stdout, format!("entry number {i}\n").as_bytes(), T).unwrap();
        }
        w.flush().unwrap();
        let tail =
            read_entries(&path, ReadOptions { tail: Some(2), ..Default::default() }).unwrap();
        let texts: Vec<_> = tail.iter().map(|e| String::from_utf8_lossy(&e.bytes)).collect();
        assert_eq!(texts, ["entry number 19998\n", "entry number 19999\n"]);
        assert_eq!(read_entries(&path, ReadOptions::default()).unwrap().len(), 20_000);
    }

    #[test]
    fn follower_sees_new_entries_and_waits_for_a_half_written_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("follow.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"first\n", T).unwrap();
        w.flush().unwrap();
        let mut reader = LogReader::open(&path, ReadOptions::default()).unwrap();
        assert_eq!(reader.next_entries().unwrap().len(), 1);
        assert!(reader.caught_up());
        assert!(reader.next_entries().unwrap().is_empty());
        // A writer caught mid-line: the reader must not lose or mangle it.
        let mut raw = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(b"{\"log\":\"sec").unwrap();
        assert!(reader.next_entries().unwrap().is_empty());
        raw.write_all(b"ond\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-02T07:44:52Z\"}\n")
            .unwrap();
        let next = reader.next_entries().unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].bytes, b"second\n");
        assert_eq!(next[0].stream, Stream::Stderr);
    }
}
