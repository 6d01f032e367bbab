//! A container's output as the daemon sends it: raw bytes for a container
//! with a tty, else Docker's multiplexed stream, where each frame is an
//! 8-byte header (stream type 0 stdin, 1 stdout, 2 stderr, 3 system error;
//! three zero bytes; the payload length as a big-endian u32) and the
//! payload.
//!
//! [`OutputStream`] reads either from a response body (`logs`) or from a
//! hijacked connection (`attach`, `exec start`), a chunk at a time: a frame
//! longer than a chunk comes out in pieces, never whole in memory.

use std::fmt;

use bytes::{Buf as _, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use kiln_api_types::ApiVersion;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::error::ClientError;
use crate::host::Host;

/// Bytes read at a time from a hijacked connection.
const CHUNK: usize = 32 * 1024;

/// Length of a multiplexed frame header.
const HEADER: usize = 8;

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
const RAW: &str = "application/vnd.docker.raw-stream";

/// Which of the container's streams bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    /// An error of the daemon itself, sent inside the stream.
    SystemErr,
}

impl StreamKind {
    fn from_byte(byte: u8) -> Result<StreamKind, ClientError> {
        match byte {
            0 => Ok(StreamKind::Stdin),
            1 => Ok(StreamKind::Stdout),
            2 => Ok(StreamKind::Stderr),
            3 => Ok(StreamKind::SystemErr),
            kind => Err(ClientError::UnknownStream { kind }),
        }
    }
}

/// How the bytes on the wire are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The container has a tty: one stream, no headers.
    Raw,
    Multiplexed,
}

/// The framing an answer announces, or the one `tty` implies when it does
/// not say.
///
/// docker-compat: before API 1.42 dockerd labels multiplexed streams
/// `raw-stream` too, so that label is trusted only from 1.42 on.
pub(crate) fn framing(headers: &HeaderMap, tty: bool, api_version: ApiVersion) -> Framing {
    let by_tty = if tty { Framing::Raw } else { Framing::Multiplexed };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    match content_type {
        Some(MULTIPLEXED) => Framing::Multiplexed,
        Some(RAW) if api_version >= ApiVersion::new(1, 42) => Framing::Raw,
        _ => by_tty,
    }
}

/// Splits a multiplexed stream into its frames' payloads, fed a chunk at a
/// time. Pure: no I/O.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    buf: BytesMut,
    /// The frame being read and how many of its bytes are still to come.
    current: Option<(StreamKind, usize)>,
}

impl Demux {
    /// Add bytes read from the wire.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next payload bytes that are here (possibly part of a frame), or
    /// `None` when more input is needed. Never returns empty bytes.
    pub(crate) fn next_piece(&mut self) -> Result<Option<(StreamKind, Bytes)>, ClientError> {
        loop {
            if let Some((kind, remaining)) = self.current {
                if remaining == 0 {
                    self.current = None;
                    continue;
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let take = remaining.min(self.buf.len());
                self.current = Some((kind, remaining - take));
                return Ok(Some((kind, self.buf.split_to(take).freeze())));
            }
            if self.buf.len() < HEADER {
                return Ok(None);
            }
            let kind = StreamKind::from_byte(self.buf[0])?;
            let length = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
            self.buf.advance(HEADER);
            self.current = Some((kind, usize::try_from(length).unwrap_or(usize::MAX)));
        }
    }

    /// The input ended: an error unless it ended between frames.
    pub(crate) fn finish(&self) -> Result<(), ClientError> {
        match self.current {
            Some((_, missing)) if missing > 0 => Err(ClientError::TruncatedFrame { missing }),
            _ if !self.buf.is_empty() => Err(ClientError::TruncatedHeader { got: self.buf.len() }),
            _ => Ok(()),
        }
    }
}

/// Where an [`OutputStream`] reads from.
enum Source {
    Body { body: Incoming, host: Host },
    Connection(Box<dyn AsyncRead + Send + Unpin>),
}

/// A container's output, read piece by piece with [`OutputStream::next`].
pub struct OutputStream {
    source: Source,
    framing: Framing,
    demux: Demux,
    done: bool,
}

impl fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Body { .. } => "body",
            Source::Connection(_) => "connection",
        };
        f.debug_struct("OutputStream")
            .field("source", &source)
            .field("framing", &self.framing)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl OutputStream {
    /// The output in a response body.
    pub(crate) fn from_body(body: Incoming, host: Host, framing: Framing) -> OutputStream {
        OutputStream::new(Source::Body { body, host }, framing)
    }

    /// The output on a hijacked connection.
    pub(crate) fn from_reader(
        reader: impl AsyncRead + Send + Unpin + 'static,
        framing: Framing,
    ) -> OutputStream {
        OutputStream::new(Source::Connection(Box::new(reader)), framing)
    }

    fn new(source: Source, framing: Framing) -> OutputStream {
        OutputStream { source, framing, demux: Demux::default(), done: false }
    }

    /// The next bytes and the stream they belong to; `None` at the end.
    /// With a tty everything is [`StreamKind::Stdout`]. A frame may come out
    /// in several pieces; no piece is empty.
    pub async fn next(&mut self) -> Result<Option<(StreamKind, Bytes)>, ClientError> {
        loop {
            if self.framing == Framing::Multiplexed {
                if let Some(piece) = self.demux.next_piece()? {
                    return Ok(Some(piece));
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.read_chunk().await? {
                Some(chunk) if self.framing == Framing::Raw => {
                    return Ok(Some((StreamKind::Stdout, chunk)));
                }
                Some(chunk) => self.demux.push(&chunk),
                None => {
                    self.done = true;
                    if self.framing == Framing::Multiplexed {
                        self.demux.finish()?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// The next non-empty chunk from the source, or `None` at its end.
    async fn read_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        match &mut self.source {
            Source::Body { body, host } => {
                while let Some(frame) = body.frame().await {
                    let frame =
                        frame.map_err(|source| ClientError::Http { host: host.clone(), source })?;
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
                Ok(None)
            }
            Source::Connection(reader) => {
                let mut buf = vec![0; CHUNK];
                let n = match reader.read(&mut buf).await {
                    Ok(n) => n,
                    // A daemon that closes the connection abruptly after the
                    // last frame has still said everything.
                    Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => 0,
                    Err(source) => return Err(ClientError::Read { source }),
                };
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0, 0, 0];
        out.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Feed `wire` to a demuxer in chunks of `size`; what each stream got.
    fn demux_in_chunks(wire: &[u8], size: usize) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let mut demux = Demux::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for chunk in wire.chunks(size) {
            demux.push(chunk);
            while let Some((kind, bytes)) = demux.next_piece()? {
                assert!(!bytes.is_empty());
                match kind {
                    StreamKind::Stdout => out.extend_from_slice(&bytes),
                    StreamKind::Stderr => err.extend_from_slice(&bytes),
                    other => panic!("unexpected stream {other:?}"),
                }
            }
        }
        demux.finish()?;
        Ok((out, err))
    }

    #[test]
    fn frames_split_across_reads_come_out_whole_per_stream() {
        let mut wire = frame(1, b"hello ");
        wire.extend(frame(2, b"oops\n"));
        wire.extend(frame(1, b"world\n"));
        for size in 1..=wire.len() {
            let (out, err) = demux_in_chunks(&wire, size).expect("demux");
            assert_eq!(out, b"hello world\n", "chunk size {size}");
            assert_eq!(err, b"oops\n", "chunk size {size}");
        }
    }

    #[test]
    fn zero_length_frames_are_skipped() {
        let mut wire = frame(1, b"");
        wire.extend(frame(2, b"e"));
        wire.extend(frame(1, b""));
        let (out, err) = demux_in_chunks(&wire, 3).expect("demux");
        assert_eq!((out.as_slice(), err.as_slice()), (&b""[..], &b"e"[..]));
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_an_error() {
        let mut wire = frame(1, b"ok");
        wire.extend_from_slice(&[1, 0, 0]);
        assert!(matches!(demux_in_chunks(&wire, 4), Err(ClientError::TruncatedHeader { got: 3 })));
        let wire = &frame(2, b"abcdef")[..10];
        assert!(matches!(
            demux_in_chunks(wire, 4),
            Err(ClientError::TruncatedFrame { missing: 4 })
        ));
    }

    #[test]
    fn system_errors_are_their_own_stream_and_unknown_ones_fail() {
        let mut demux = Demux::default();
        demux.push(&frame(3, b"boom"));
        let (kind, bytes) = demux.next_piece().expect("ok").expect("piece");
        assert_eq!((kind, &bytes[..]), (StreamKind::SystemErr, &b"boom"[..]));
        demux.push(&frame(7, b"x"));
        assert!(matches!(demux.next_piece(), Err(ClientError::UnknownStream { kind: 7 })));
    }

    #[test]
    fn framing_follows_the_content_type_then_the_tty() {
        let new = ApiVersion::new(1, 47);
        let old = ApiVersion::new(1, 41);
        let with = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, ct.parse().expect("header"));
            headers
        };
        assert_eq!(framing(&with(MULTIPLEXED), true, new), Framing::Multiplexed);
        assert_eq!(framing(&with(RAW), false, new), Framing::Raw);
        assert_eq!(framing(&with(RAW), false, old), Framing::Multiplexed);
        assert_eq!(framing(&HeaderMap::new(), true, new), Framing::Raw);
        assert_eq!(framing(&HeaderMap::new(), false, new), Framing::Multiplexed);
    }
}
