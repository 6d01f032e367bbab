//! The DNS wire format (RFC 1035) as the embedded resolver at 127.0.0.11
//! needs it: reading one-question queries, writing answers, and the small
//! client side the tests and the bench use.
//!
//! Everything here reads bytes sent by containers, so nothing panics and
//! everything is bounded: names are at most 255 octets with labels of at
//! most 63, compression pointers may only point before the name they
//! continue (so they cannot loop) and are followed at most 128 times.
//! Labels must be printable ASCII without a `.`: container, alias and
//! network names are, and refusing the rest keeps every name an ordinary
//! lower-case `String` (the resolver answers such a query with FORMERR).
//!
//! Sockets, lookups and forwarding are the daemon's (`kiln-engine`); this
//! module only turns bytes into [`Query`]s and answers into bytes.

use std::io::{self, Read};
use std::net::Ipv4Addr;

use kiln_types::{ErrorKind, HasKind};

/// An IPv4 address record.
pub const TYPE_A: u16 = 1;
/// A pointer record: the name of a reverse (`in-addr.arpa`) name.
pub const TYPE_PTR: u16 = 12;
/// An IPv6 address record.
pub const TYPE_AAAA: u16 = 28;
/// The EDNS pseudo-record (RFC 6891) a client adds to say how large an
/// answer it takes over UDP.
pub const TYPE_OPT: u16 = 41;
/// Any type (`dig ANY`).
pub const TYPE_ANY: u16 = 255;
/// The Internet class, the only one the resolver answers.
pub const CLASS_IN: u16 = 1;

/// The largest answer a client without EDNS takes over UDP.
pub const UDP_MIN_SIZE: u16 = 512;
/// The largest EDNS payload size honoured; larger claims are cut to this,
/// since bigger datagrams fragment and get lost.
pub const UDP_MAX_SIZE: u16 = 4096;

/// The most octets a name takes on the wire, the final zero included.
const MAX_NAME_OCTETS: usize = 255;
const MAX_LABEL_OCTETS: usize = 63;
/// Compression pointers followed while reading one name; the
/// backward-only rule already stops loops, this bounds the work.
const MAX_POINTER_JUMPS: usize = 128;
/// The most a DNS message can be: TCP frames it with a 16-bit length.
const MAX_MESSAGE: usize = 65535;
const HEADER_LEN: usize = 12;
/// Where the question's name starts, the target of answer owner names.
const QUESTION_POINTER: [u8; 2] = [0xC0, 0x0C];

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;

/// A response code (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// A query as the resolver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    /// The question's name, lower-cased, without the trailing dot ("web",
    /// "web.mynet", "4.3.2.1.in-addr.arpa"); "" for the root.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The client's EDNS UDP payload size when the query has an OPT record
    /// (clamped to 512..=4096).
    pub edns_udp_size: Option<u16>,
}

/// Why a message was refused. The resolver answers a query it cannot read
/// with [`error_response`] (FORMERR) and logs this.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("dns message is truncated")]
    Truncated,
    #[error("dns message is a response, not a query")]
    NotAQuery,
    #[error("dns message is a query, not a response")]
    NotAResponse,
    #[error("dns query has {0} questions, expected 1")]
    QuestionCount(u16),
    #[error("dns query has {count} {section} records, expected none")]
    UnexpectedRecords { section: &'static str, count: u16 },
    #[error(
        "malformed name in dns message (a label over 63 octets, over 255 octets in all, \
         a label with '.' or a byte that is not printable ASCII, or a compression pointer \
         that does not point back)"
    )]
    BadName,
    #[error("dns query has more than one OPT record, or one whose name is not the root")]
    BadOpt,
    #[error("malformed data in a dns record of type {rtype}")]
    BadRecord { rtype: u16 },
}

impl HasKind for DnsError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Truncated
            | Self::NotAQuery
            | Self::NotAResponse
            | Self::QuestionCount(_)
            | Self::UnexpectedRecords { .. }
            | Self::BadName
            | Self::BadOpt
            | Self::BadRecord { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// What an answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    /// A name without trailing dot.
    Ptr(String),
}

/// A response as a client sees it, for tests and the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub authoritative: bool,
    /// Owner name (lower-case, no trailing dot) and record, A and PTR only.
    pub answers: Vec<(String, Record)>,
}

/// Parses a query message: the header and exactly one question; the answer
/// and authority sections must be empty; the additional section may hold
/// an OPT record, which is read for its UDP size (other additional records
/// are checked for shape and ignored). The opcode is returned as sent: the
/// resolver answers what is not a standard query with NOTIMP. Bytes after
/// the last record are ignored.
pub fn parse_query(msg: &[u8]) -> Result<Query, DnsError> {
    let header = Header::read(msg)?;
    if header.flags & FLAG_QR != 0 {
        return Err(DnsError::NotAQuery);
    }
    if header.questions != 1 {
        return Err(DnsError::QuestionCount(header.questions));
    }
    for (section, count) in [("answer", header.answers), ("authority", header.authorities)] {
        if count != 0 {
            return Err(DnsError::UnexpectedRecords { section, count });
        }
    }
    let (name, mut pos) = read_name(msg, HEADER_LEN, Labels::Strict)?;
    let qtype = read_u16(msg, pos)?;
    let qclass = read_u16(msg, pos.saturating_add(2))?;
    pos = pos.saturating_add(4);

    let mut edns_udp_size = None;
    for _ in 0..header.additionals {
        let record = RecordHeader::read(msg, pos, Labels::Any)?;
        if record.rtype == TYPE_OPT {
            if edns_udp_size.is_some() || !record.owner.is_empty() {
                return Err(DnsError::BadOpt);
            }
            // The OPT record's class is the payload size (RFC 6891 §6.1.2).
            edns_udp_size = Some(record.class.clamp(UDP_MIN_SIZE, UDP_MAX_SIZE));
        }
        pos = record.end;
    }

    Ok(Query {
        id: header.id,
        opcode: ((header.flags >> 11) & 0x0F) as u8,
        recursion_desired: header.flags & FLAG_RD != 0,
        name,
        qtype,
        qclass,
        edns_udp_size,
    })
}

/// The response to `query`: same id, QR=1, opcode and RD copied, RA=1,
/// AA=1 for NOERROR and NXDOMAIN (the answers are ours), the question
/// re-encoded from `query`, one answer per record (owner name a pointer to
/// the question, class IN, `ttl`), no OPT record.
///
/// When the message would exceed `max_size` bytes (never more than 65535,
/// what TCP can frame), whole answers are dropped from the end until it
/// fits and TC is set; the header and question are always there, so a
/// `max_size` below their size gives a slightly larger message with no
/// answers. A [`Record::Ptr`] whose name cannot be encoded (an empty
/// label, a label over 63 octets, a byte that is not printable ASCII) is
/// left out. A query whose name cannot be encoded (only possible for a
/// hand-built [`Query`]) gets a header-only SERVFAIL.
pub fn response(
    query: &Query,
    rcode: Rcode,
    records: &[Record],
    ttl: u32,
    max_size: usize,
) -> Vec<u8> {
    let limit = max_size.min(MAX_MESSAGE);
    let mut msg = Vec::with_capacity(usize::from(UDP_MIN_SIZE));
    msg.extend_from_slice(&[0; HEADER_LEN]);
    if !write_name(&mut msg, &query.name) {
        return header(query, Rcode::ServFail, false, 0, 0).to_vec();
    }
    msg.extend_from_slice(&query.qtype.to_be_bytes());
    msg.extend_from_slice(&query.qclass.to_be_bytes());

    let mut answers: u16 = 0;
    let mut truncated = false;
    for record in records {
        let mark = msg.len();
        if !write_answer(&mut msg, record, ttl) {
            msg.truncate(mark);
            tracing::debug!(?record, "dns answer left out: its name cannot be encoded");
            continue;
        }
        if msg.len() > limit {
            msg.truncate(mark);
            truncated = true;
            break;
        }
        answers = answers.saturating_add(1);
    }

    if let Some(slot) = msg.get_mut(..HEADER_LEN) {
        for (byte, value) in slot.iter_mut().zip(header(query, rcode, truncated, 1, answers)) {
            *byte = value;
        }
    }
    msg
}

/// For a message [`parse_query`] refused: a header-only response with the
/// id (when at least 2 bytes were there), the opcode and RD copied, QR=1,
/// RA=1, no question, and `rcode` (usually [`Rcode::FormErr`]). `None` when
/// there are fewer than 2 bytes or the message is itself a response (QR
/// set): answering those could start a loop between two resolvers.
pub fn error_response(msg: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    let id = msg.get(0..2)?;
    let flags_high = msg.get(2).copied().unwrap_or(0);
    if flags_high & 0x80 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(id);
    // Opcode (0x78) and RD (0x01) from the query; RA in the low byte.
    out.push(0x80 | (flags_high & 0x79));
    out.push(0x80 | rcode as u8);
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// The address a reverse name asks about: "4.3.2.1.in-addr.arpa" (any
/// case, an optional trailing dot) → 1.2.3.4. `None` for anything else:
/// other names, partial reverse names ("3.2.1.in-addr.arpa", a network),
/// numbers over 255, and numbers with leading zeros ("01"), which no
/// resolver writes.
pub fn reverse_ipv4(name: &str) -> Option<Ipv4Addr> {
    const SUFFIX: &str = ".in-addr.arpa";
    let name = name.strip_suffix('.').unwrap_or(name);
    let split = name.len().checked_sub(SUFFIX.len())?;
    if !name.get(split..)?.eq_ignore_ascii_case(SUFFIX) {
        return None;
    }
    let mut parts = name.get(..split)?.split('.');
    let mut octets = [0u8; 4];
    for octet in octets.iter_mut().rev() {
        *octet = parse_octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// The reverse name of an address: 1.2.3.4 → "4.3.2.1.in-addr.arpa".
pub fn reverse_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

/// A query message, for tests, benches and the forwarder's health checks:
/// the given `id`, RD=1, one question of class IN, no OPT record. The
/// name's case is kept and a trailing dot is optional. A name that cannot
/// be sent (a label over 63 octets, over 255 in all, bytes that are not
/// printable ASCII) is still written label by label as given, so tests can
/// send the bad names a broken client would; empty labels are skipped.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&FLAG_RD.to_be_bytes());
    for count in [1u16, 0, 0, 0] {
        msg.extend_from_slice(&count.to_be_bytes());
    }
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = label.as_bytes();
        let bytes = bytes.get(..usize::from(u8::MAX)).unwrap_or(bytes);
        // Lengths over 63 read back as reserved label types or pointers,
        // which parse_query refuses.
        msg.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        msg.extend_from_slice(bytes);
    }
    msg.push(0);
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg
}

/// Parses a response: the header, the questions (skipped) and the answer
/// section; A and PTR answers of class IN are returned, other answers
/// skipped. Authority and additional sections are not read.
pub fn parse_response(msg: &[u8]) -> Result<Response, DnsError> {
    let header = Header::read(msg)?;
    if header.flags & FLAG_QR == 0 {
        return Err(DnsError::NotAResponse);
    }
    let mut pos = HEADER_LEN;
    for _ in 0..header.questions {
        let (_, end) = read_name(msg, pos, Labels::Strict)?;
        read_u16(msg, end.saturating_add(2))?;
        pos = end.saturating_add(4);
    }
    let mut answers = Vec::new();
    for _ in 0..header.answers {
        let record = RecordHeader::read(msg, pos, Labels::Strict)?;
        let bad = DnsError::BadRecord { rtype: record.rtype };
        match (record.rtype, record.class) {
            (TYPE_A, CLASS_IN) => {
                let data = msg.get(record.data..record.end).ok_or(DnsError::Truncated)?;
                let octets: [u8; 4] = data.try_into().map_err(|_| bad)?;
                answers.push((record.owner, Record::A(Ipv4Addr::from(octets))));
            }
            (TYPE_PTR, CLASS_IN) => {
                let (name, end) = read_name(msg, record.data, Labels::Strict)?;
                if end != record.end {
                    return Err(bad);
                }
                answers.push((record.owner, Record::Ptr(name)));
            }
            _ => {}
        }
        pos = record.end;
    }
    Ok(Response {
        id: header.id,
        rcode: (header.flags & 0x000F) as u8,
        truncated: header.flags & FLAG_TC != 0,
        authoritative: header.flags & FLAG_AA != 0,
        answers,
    })
}

/// Length-prefixed framing for DNS over TCP (RFC 1035 §4.2.2): a 2-byte
/// big-endian length, then `msg`. Callers keep messages within 65535 bytes
/// ([`response`] never makes larger ones); a larger `msg` gives an empty
/// frame, sending nothing rather than a corrupt message.
pub fn tcp_frame(msg: &[u8]) -> Vec<u8> {
    let Ok(len) = u16::try_from(msg.len()) else {
        return Vec::new();
    };
    let mut frame = Vec::with_capacity(msg.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    frame
}

/// Reads one length-prefixed message from a DNS-over-TCP stream. `None`
/// when the stream ends cleanly before a new message; an
/// [`io::ErrorKind::UnexpectedEof`] error when it ends inside one.
pub fn read_tcp_frame<R: Read>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    loop {
        match reader.read(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let mut second = [0u8; 1];
    reader.read_exact(&mut second)?;
    let [high] = first;
    let [low] = second;
    let mut msg = vec![0; usize::from(u16::from_be_bytes([high, low]))];
    reader.read_exact(&mut msg)?;
    Ok(Some(msg))
}

/// The fixed 12-byte header (RFC 1035 §4.1.1).
struct Header {
    id: u16,
    flags: u16,
    questions: u16,
    answers: u16,
    authorities: u16,
    additionals: u16,
}

impl Header {
    fn read(msg: &[u8]) -> Result<Self, DnsError> {
        Ok(Self {
            id: read_u16(msg, 0)?,
            flags: read_u16(msg, 2)?,
            questions: read_u16(msg, 4)?,
            answers: read_u16(msg, 6)?,
            authorities: read_u16(msg, 8)?,
            additionals: read_u16(msg, 10)?,
        })
    }
}

/// The header of a response to `query`.
fn header(
    query: &Query,
    rcode: Rcode,
    truncated: bool,
    questions: u16,
    answers: u16,
) -> [u8; HEADER_LEN] {
    let mut flags = FLAG_QR | (u16::from(query.opcode & 0x0F) << 11) | FLAG_RA | rcode as u16;
    if matches!(rcode, Rcode::NoError | Rcode::NxDomain) {
        flags |= FLAG_AA;
    }
    if truncated {
        flags |= FLAG_TC;
    }
    if query.recursion_desired {
        flags |= FLAG_RD;
    }
    let mut out = [0; HEADER_LEN];
    for (slot, value) in out.chunks_exact_mut(2).zip([query.id, flags, questions, answers, 0, 0]) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
    out
}

/// The fixed part of a resource record and where its data lies.
struct RecordHeader {
    owner: String,
    rtype: u16,
    class: u16,
    /// Offset of the record data.
    data: usize,
    /// Offset just past the record.
    end: usize,
}

impl RecordHeader {
    fn read(msg: &[u8], pos: usize, labels: Labels) -> Result<Self, DnsError> {
        let (owner, pos) = read_name(msg, pos, labels)?;
        let rtype = read_u16(msg, pos)?;
        let class = read_u16(msg, pos.saturating_add(2))?;
        // The TTL (4 bytes) is not needed.
        let data_len = read_u16(msg, pos.saturating_add(8))?;
        let data = pos.saturating_add(10);
        let end = data.saturating_add(usize::from(data_len));
        if end > msg.len() {
            return Err(DnsError::Truncated);
        }
        Ok(Self { owner, rtype, class, data, end })
    }
}

/// Which label bytes a name may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Labels {
    /// Printable ASCII without '.': names the resolver looks up or returns.
    Strict,
    /// Any bytes (read as Latin-1): names of records that are only skipped.
    Any,
}

/// Reads the name starting at `start`: returns it lower-cased, without
/// trailing dot, and the offset where the message goes on after it (past
/// its first compression pointer, or past its final zero).
fn read_name(msg: &[u8], start: usize, labels: Labels) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = start;
    // Pointers must point before the labels that led to them: each jump
    // lands strictly earlier than the last, so reading ends.
    let mut segment_start = start;
    let mut end = None;
    let mut octets = 1; // the final zero
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((name, end.unwrap_or(pos.saturating_add(1))));
            }
            0x00 => {
                let len = usize::from(len);
                octets += 1 + len;
                if octets > MAX_NAME_OCTETS {
                    return Err(DnsError::BadName);
                }
                let from = pos.saturating_add(1);
                let label = msg.get(from..from.saturating_add(len)).ok_or(DnsError::Truncated)?;
                if labels == Labels::Strict && !label.iter().all(|&b| is_label_byte(b)) {
                    return Err(DnsError::BadName);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                pos = from.saturating_add(len);
            }
            0xC0 => {
                let low = *msg.get(pos.saturating_add(1)).ok_or(DnsError::Truncated)?;
                let target = usize::from(len & 0x3F) << 8 | usize::from(low);
                jumps += 1;
                if target >= segment_start || jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::BadName);
                }
                end.get_or_insert(pos.saturating_add(2));
                pos = target;
                segment_start = target;
            }
            // 0x40 and 0x80: extended and reserved label types.
            _ => return Err(DnsError::BadName),
        }
    }
}

/// Whether a byte may appear in a label the resolver reads or writes.
fn is_label_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.'
}

/// Appends `name` ("web.mynet", "" or "." for the root, one trailing dot
/// allowed) uncompressed; false, leaving `out` partly written, when it
/// cannot be encoded under [`Labels::Strict`] rules.
fn write_name(out: &mut Vec<u8>, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut octets = 1;
    if !name.is_empty() {
        for label in name.split('.') {
            let bytes = label.as_bytes();
            octets += 1 + bytes.len();
            let Ok(len) = u8::try_from(bytes.len()) else { return false };
            if bytes.is_empty()
                || bytes.len() > MAX_LABEL_OCTETS
                || octets > MAX_NAME_OCTETS
                || !bytes.iter().all(|&b| is_label_byte(b))
            {
                return false;
            }
            out.push(len);
            out.extend_from_slice(bytes);
        }
    }
    out.push(0);
    true
}

/// Appends one answer owned by the question's name; false when a PTR
/// target cannot be encoded.
fn write_answer(out: &mut Vec<u8>, record: &Record, ttl: u32) -> bool {
    out.extend_from_slice(&QUESTION_POINTER);
    let rtype = match record {
        Record::A(_) => TYPE_A,
        Record::Ptr(_) => TYPE_PTR,
    };
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    match record {
        Record::A(ip) => {
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        Record::Ptr(name) => {
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            if !write_name(out, name) {
                return false;
            }
            // A name is at most 255 octets, so the length fits.
            let Ok(len) = u16::try_from(out.len().saturating_sub(len_at + 2)) else {
                return false;
            };
            if let Some([high, low]) = out.get_mut(len_at..len_at + 2) {
                [*high, *low] = len.to_be_bytes();
            }
        }
    }
    true
}

fn read_u16(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    let bytes = msg.get(pos..pos.saturating_add(2)).ok_or(DnsError::Truncated)?;
    let pair: [u8; 2] = bytes.try_into().map_err(|_| DnsError::Truncated)?;
    Ok(u16::from_be_bytes(pair))
}

/// One decimal octet of a reverse name: 0..=255, no sign, no leading zero.
fn parse_octet(text: &str) -> Option<u8> {
    let digits_only =
        !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// Gives `reply` (a [`response`] to `query_msg`) the question exactly as
/// the client wrote it: [`parse_query`] lower-cases the name, and clients
/// that randomise its case (DNS 0x20, as unbound and dnsmasq do when they
/// forward) check that it comes back unchanged. The owner names of the
/// answers point at the question, so they follow. Nothing is changed when
/// the two questions differ in more than case (a compressed question).
pub fn echo_question_case(reply: &mut [u8], query_msg: &[u8]) {
    let end = |msg: &[u8]| -> Option<usize> {
        let mut pos = HEADER_LEN;
        loop {
            let len = usize::from(*msg.get(pos)?);
            if len == 0 {
                return Some(pos + 1 + 4);
            }
            if len > 63 {
                return None;
            }
            pos += 1 + len;
        }
    };
    let (Some(ours), Some(theirs)) = (end(reply), end(query_msg)) else { return };
    if ours != theirs {
        return;
    }
    let (Some(mine), Some(asked)) =
        (reply.get_mut(HEADER_LEN..ours), query_msg.get(HEADER_LEN..ours))
    else {
        return;
    };
    if mine.eq_ignore_ascii_case(asked) {
        mine.copy_from_slice(asked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dig @127.0.0.11 web.mynet` as dig 9.18 sends it (RFC 1035 §4.1,
    /// RFC 6891 §6.1.2): RD and AD set, one question, and an OPT record
    /// with a 1232-byte UDP size and a client cookie.
    const DIG_QUERY: [u8; 50] = [
        0x8f, 0x3a, // id
        0x01, 0x20, // RD, AD
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // 1 question, 1 additional
        3, b'w', b'e', b'b', 5, b'm', b'y', b'n', b'e', b't', 0, // web.mynet
        0x00, 0x01, 0x00, 0x01, // A, IN
        0x00, // OPT: root name
        0x00, 0x29, // type 41
        0x04, 0xd0, // UDP payload size 1232
        0x00, 0x00, 0x00, 0x00, // extended rcode, version 0, no DO
        0x00, 0x0c, // 12 bytes of options
        0x00, 0x0a, 0x00, 0x08, // COOKIE, 8 bytes
        0x5e, 0x31, 0x7a, 0x02, 0xc4, 0x19, 0x88, 0xf0,
    ];

    /// busybox `nslookup web` (no EDNS): RD only.
    const NSLOOKUP_QUERY: [u8; 21] = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        3, b'w', b'e', b'b', 0, 0x00, 0x1c, 0x00, 0x01, // web AAAA IN
    ];

    fn query(name: &str, qtype: u16) -> Query {
        parse_query(&build_query(0xbeef, name, qtype)).expect("a valid query")
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 18, 0, last)
    }

    /// A query with one extra record appended to the additional section.
    fn with_additional(mut msg: Vec<u8>, record: &[u8]) -> Vec<u8> {
        let count = read_u16(&msg, 10).expect("a header") + 1;
        msg.splice(10..12, count.to_be_bytes());
        msg.extend_from_slice(record);
        msg
    }

    fn opt(udp_size: u16) -> Vec<u8> {
        let mut record = vec![0, 0, 41];
        record.extend_from_slice(&udp_size.to_be_bytes());
        record.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        record
    }

    #[test]
    fn dig_query_is_read_with_its_edns_size() {
        let query = parse_query(&DIG_QUERY).expect("dig's query parses");
        assert_eq!(
            query,
            Query {
                id: 0x8f3a,
                opcode: 0,
                recursion_desired: true,
                name: "web.mynet".into(),
                qtype: TYPE_A,
                qclass: CLASS_IN,
                edns_udp_size: Some(1232),
            }
        );
    }

    #[test]
    fn nslookup_query_has_no_edns_size() {
        let query = parse_query(&NSLOOKUP_QUERY).expect("nslookup's query parses");
        assert_eq!((query.id, query.name.as_str(), query.qtype), (0x1234, "web", TYPE_AAAA));
        assert_eq!(query.edns_udp_size, None);
    }

    #[test]
    fn built_query_round_trips_lower_cased() {
        let msg = build_query(7, "Web.MyNet.", TYPE_A);
        let query = parse_query(&msg).expect("parses");
        assert_eq!(
            query,
            Query {
                id: 7,
                opcode: 0,
                recursion_desired: true,
                name: "web.mynet".into(),
                qtype: TYPE_A,
                qclass: CLASS_IN,
                edns_udp_size: None,
            }
        );
        assert_eq!(query.name, self::query("web.mynet", TYPE_A).name);
        assert_eq!(self::query("", TYPE_ANY).name, "");
        assert_eq!(self::query(".", TYPE_ANY).name, "");
    }

    #[test]
    fn a_answers_round_trip_with_the_question_echoed() {
        let msg = build_query(0x4242, "web.mynet", TYPE_A);
        let query = parse_query(&msg).expect("parses");
        let out = response(&query, Rcode::NoError, &[Record::A(ip(2)), Record::A(ip(3))], 600, 512);
        let parsed = parse_response(&out).expect("our response parses");
        assert_eq!(
            parsed,
            Response {
                id: 0x4242,
                rcode: 0,
                truncated: false,
                authoritative: true,
                answers: vec![
                    ("web.mynet".into(), Record::A(ip(2))),
                    ("web.mynet".into(), Record::A(ip(3))),
                ],
            }
        );
        // QR, RD copied, AA; RA; one question, the same bytes as asked.
        assert_eq!(out.get(2..4), Some(&[0x85, 0x80][..]));
        assert_eq!(out.get(4..6), Some(&[0, 1][..]));
        assert_eq!(out.get(12..msg.len()), msg.get(12..));
        // TTL of the first answer.
        let first = msg.len();
        assert_eq!(out.get(first + 6..first + 10), Some(&600u32.to_be_bytes()[..]));
    }

    #[test]
    fn ptr_answers_round_trip() {
        let name = reverse_name(ip(5));
        let query = query(&name, TYPE_PTR);
        let out = response(&query, Rcode::NoError, &[Record::Ptr("Web.MyNet".into())], 600, 512);
        let parsed = parse_response(&out).expect("parses");
        assert_eq!(parsed.answers, vec![(name, Record::Ptr("web.mynet".into()))]);
        assert!(parsed.authoritative);
    }

    #[test]
    fn nxdomain_is_authoritative_and_empty() {
        let out = response(&query("nope.mynet", TYPE_A), Rcode::NxDomain, &[], 600, 512);
        let parsed = parse_response(&out).expect("parses");
        assert_eq!((parsed.rcode, parsed.authoritative), (3, true));
        assert!(parsed.answers.is_empty());
    }

    #[test]
    fn aaaa_for_a_known_name_is_an_empty_noerror() {
        let out = response(&query("web", TYPE_AAAA), Rcode::NoError, &[], 600, 512);
        let parsed = parse_response(&out).expect("parses");
        assert_eq!((parsed.rcode, parsed.truncated, parsed.answers.len()), (0, false, 0));
    }

    #[test]
    fn refusals_are_not_authoritative() {
        for rcode in [Rcode::ServFail, Rcode::NotImp, Rcode::Refused] {
            let parsed =
                parse_response(&response(&query("x", TYPE_A), rcode, &[], 0, 512)).expect("parses");
            assert_eq!((parsed.rcode, parsed.authoritative), (rcode as u8, false));
        }
    }

    #[test]
    fn opcode_and_recursion_desired_are_copied() {
        let mut msg = build_query(1, "web", TYPE_A);
        msg.splice(2..4, [0x10, 0x00]); // opcode 2 (STATUS), RD clear
        let query = parse_query(&msg).expect("parses");
        assert_eq!((query.opcode, query.recursion_desired), (2, false));
        let out = response(&query, Rcode::NotImp, &[], 0, 512);
        assert_eq!(out.get(2..4), Some(&[0x90, 0x84][..]));
    }

    #[test]
    fn small_max_size_drops_whole_answers_and_sets_tc() {
        let query = query("web.mynet", TYPE_A);
        let records: Vec<Record> = (1..=100).map(|i| Record::A(ip(i))).collect();
        let out = response(&query, Rcode::NoError, &records, 600, 512);
        assert!(out.len() <= 512, "{} bytes", out.len());
        let parsed = parse_response(&out).expect("a truncated response still parses");
        assert!(parsed.truncated);
        // 12 header + 15 question, then 16 bytes an answer.
        assert_eq!(parsed.answers.len(), (512 - 12 - 15) / 16);
        let kept: Vec<Record> = parsed.answers.into_iter().map(|(_, r)| r).collect();
        assert_eq!(kept, records.get(..kept.len()).expect("a prefix"));

        let out = response(&query, Rcode::NoError, &records, 600, 0);
        let parsed = parse_response(&out).expect("header and question only");
        assert!(parsed.truncated && parsed.answers.is_empty());
        assert_eq!(out.len(), 12 + 15);

        let out = response(&query, Rcode::NoError, &records, 600, 4096);
        assert!(!parse_response(&out).expect("parses").truncated);
    }

    #[test]
    fn responses_never_exceed_what_tcp_can_frame() {
        let records: Vec<Record> = (0..5000).map(|i| Record::A(Ipv4Addr::from(i))).collect();
        let out = response(&query("web", TYPE_A), Rcode::NoError, &records, 600, usize::MAX);
        assert!(out.len() <= 65535);
        assert_eq!(tcp_frame(&out).len(), out.len() + 2);
        let parsed = parse_response(&out).expect("parses");
        assert!(parsed.truncated);
        assert_eq!(parsed.answers.len(), (65535 - 12 - 9) / 16);
    }

    #[test]
    fn ptr_names_that_cannot_be_encoded_are_left_out() {
        let records = [
            Record::Ptr("a..b".into()),
            Record::Ptr("x".repeat(64)),
            Record::Ptr("caf\u{e9}".into()),
            Record::Ptr(["y".repeat(63), "y".repeat(63), "y".repeat(63), "y".repeat(63)].join(".")),
            Record::Ptr("web.mynet.".into()),
        ];
        let parsed =
            parse_response(&response(&query("x", TYPE_PTR), Rcode::NoError, &records, 1, 512))
                .expect("parses");
        assert_eq!(parsed.answers, vec![("x".into(), Record::Ptr("web.mynet".into()))]);
        assert!(!parsed.truncated);
    }

    #[test]
    fn hand_built_query_with_a_bad_name_gets_servfail() {
        let mut query = query("web", TYPE_A);
        query.name = "bad..name".into();
        let parsed = parse_response(&response(&query, Rcode::NoError, &[Record::A(ip(2))], 1, 512))
            .expect("parses");
        assert_eq!((parsed.id, parsed.rcode, parsed.answers.len()), (0xbeef, 2, 0));
    }

    #[test]
    fn edns_size_is_read_and_clamped() {
        for (sent, read) in [(1232, 1232), (100, 512), (65000, 4096), (4096, 4096)] {
            let msg = with_additional(build_query(1, "web", TYPE_A), &opt(sent));
            assert_eq!(parse_query(&msg).expect("parses").edns_udp_size, Some(read), "{sent}");
        }
    }

    #[test]
    fn two_opt_records_or_a_named_one_are_refused() {
        let twice =
            with_additional(with_additional(build_query(1, "web", TYPE_A), &opt(1232)), &opt(512));
        assert_eq!(parse_query(&twice), Err(DnsError::BadOpt));
        let mut named = vec![0xC0, 0x0C];
        named.extend_from_slice(opt(1232).get(1..).expect("opt"));
        let named = with_additional(build_query(1, "web", TYPE_A), &named);
        assert_eq!(parse_query(&named), Err(DnsError::BadOpt));
    }

    #[test]
    fn other_additional_records_are_skipped() {
        // A TXT record owned by the question's name (a pointer to it), with
        // a byte in its data that names may not hold, then an OPT record.
        let txt = [0xC0, 0x0C, 0x00, 0x10, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x02, 0x01, 0xff];
        let msg = with_additional(with_additional(build_query(9, "web", TYPE_A), &txt), &opt(900));
        let query = parse_query(&msg).expect("parses");
        assert_eq!((query.name.as_str(), query.edns_udp_size), ("web", Some(900)));
    }

    #[test]
    fn question_may_use_a_compression_pointer() {
        // "web" then a pointer to offset 6, the high byte of ANCOUNT: zero,
        // the root.
        let mut msg = build_query(0, "", TYPE_A);
        msg.splice(12..13, [3, b'w', b'e', b'b', 0xC0, 0x06]);
        let query = parse_query(&msg).expect("parses");
        assert_eq!((query.name.as_str(), query.qtype, query.qclass), ("web", TYPE_A, CLASS_IN));
        // The answer's owner points to the question: the same name.
        let parsed = parse_response(&response(&query, Rcode::NoError, &[Record::A(ip(2))], 1, 512))
            .expect("parses");
        assert_eq!(parsed.answers, vec![("web".into(), Record::A(ip(2)))]);
    }

    #[test]
    fn pointers_that_loop_or_point_forward_are_refused() {
        // The question is a pointer to itself.
        let mut msg = build_query(0, "", TYPE_A);
        msg.splice(12..13, [0xC0, 0x0C]);
        assert_eq!(parse_query(&msg), Err(DnsError::BadName));
        // A label, then a pointer back to that label: a loop.
        let mut msg = build_query(0, "", TYPE_A);
        msg.splice(12..13, [1, b'a', 0xC0, 0x0C]);
        assert_eq!(parse_query(&msg), Err(DnsError::BadName));
        // Two pointers at each other: the first points forward.
        let mut msg = build_query(0, "", TYPE_A);
        msg.splice(12..13, [0xC0, 0x0E, 0xC0, 0x0C]);
        assert_eq!(parse_query(&msg), Err(DnsError::BadName));

        // In a response: an answer owner pointing into itself.
        let mut out = response(&query("web", TYPE_A), Rcode::NoError, &[Record::A(ip(2))], 1, 512);
        let owner = 12 + 5 + 4;
        out.splice(owner..owner + 2, [0xC0, owner as u8]);
        assert_eq!(parse_response(&out), Err(DnsError::BadName));
    }

    #[test]
    fn pointer_chains_are_bounded() {
        // A root at 0, then pointers each to the one before: a chain of
        // `jumps` backward pointers ending at the last one.
        fn chain(jumps: usize) -> Vec<u8> {
            let mut msg = vec![0];
            for i in 0..jumps {
                let target = if i == 0 { 0 } else { 1 + 2 * (i - 1) };
                msg.extend_from_slice(&(0xC000 | target as u16).to_be_bytes());
            }
            msg
        }
        let ok = chain(128);
        assert_eq!(read_name(&ok, ok.len() - 2, Labels::Strict), Ok((String::new(), ok.len())));
        let long = chain(129);
        assert_eq!(read_name(&long, long.len() - 2, Labels::Strict), Err(DnsError::BadName));
    }

    #[test]
    fn every_truncation_of_a_query_is_an_error() {
        for len in 0..DIG_QUERY.len() {
            let prefix = DIG_QUERY.get(..len).expect("a prefix");
            assert!(parse_query(prefix).is_err(), "{len} bytes parsed");
        }
    }

    #[test]
    fn every_truncation_of_a_response_is_an_error() {
        let records = [Record::A(ip(2)), Record::Ptr("web.mynet".into())];
        let out = response(&query("web", TYPE_ANY), Rcode::NoError, &records, 1, 512);
        assert_eq!(parse_response(&out).expect("whole").answers.len(), 2);
        for len in 0..out.len() {
            let prefix = out.get(..len).expect("a prefix");
            assert!(parse_response(prefix).is_err(), "{len} bytes parsed");
        }
    }

    #[test]
    fn malformed_queries_name_what_is_wrong() {
        let response_bytes = response(&query("web", TYPE_A), Rcode::NoError, &[], 1, 512);
        assert_eq!(parse_query(&response_bytes), Err(DnsError::NotAQuery));
        assert_eq!(parse_response(&build_query(1, "web", TYPE_A)), Err(DnsError::NotAResponse));

        let mut msg = build_query(1, "web", TYPE_A);
        msg.splice(4..6, [0, 2]);
        assert_eq!(parse_query(&msg), Err(DnsError::QuestionCount(2)));
        msg.splice(4..6, [0, 0]);
        assert_eq!(parse_query(&msg), Err(DnsError::QuestionCount(0)));
        let mut msg = build_query(1, "web", TYPE_A);
        msg.splice(8..10, [0, 1]);
        assert_eq!(
            parse_query(&msg),
            Err(DnsError::UnexpectedRecords { section: "authority", count: 1 })
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let long_label = "a".repeat(64);
        let too_long = ["b".repeat(63), "c".repeat(63), "d".repeat(63), "e".repeat(62)].join(".");
        assert_eq!(too_long.len() + 2, 256);
        for name in
            [long_label.as_str(), &too_long, "a\u{1}b", "caf\u{e9}", "a b", &"f".repeat(200)]
        {
            assert_eq!(
                parse_query(&build_query(1, name, TYPE_A)),
                Err(DnsError::BadName),
                "{name:?}"
            );
        }
        // 253 characters, 255 octets: the longest name there is.
        let longest = ["b".repeat(63), "c".repeat(63), "d".repeat(63), "e".repeat(61)].join(".");
        assert_eq!(query(&longest, TYPE_A).name, longest);
        // A '.' inside a label.
        let mut msg = build_query(1, "", TYPE_A);
        msg.splice(12..13, [3, b'a', b'.', b'b', 0]);
        assert_eq!(parse_query(&msg), Err(DnsError::BadName));
    }

    #[test]
    fn error_response_answers_garbage_but_never_a_response() {
        let out = error_response(&[0xab, 0xcd, 0x01], Rcode::FormErr).expect("an answer");
        assert_eq!(out, [0xab, 0xcd, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
        let parsed = parse_response(&out).expect("parses");
        assert_eq!((parsed.id, parsed.rcode), (0xabcd, 1));

        let out = error_response(&[0x12, 0x34], Rcode::FormErr).expect("an answer");
        assert_eq!(parse_response(&out).expect("parses").id, 0x1234);

        assert_eq!(error_response(&[], Rcode::FormErr), None);
        assert_eq!(error_response(&[0x12], Rcode::FormErr), None);
        let ours = response(&query("web", TYPE_A), Rcode::NoError, &[], 1, 512);
        assert_eq!(error_response(&ours, Rcode::FormErr), None);
    }

    #[test]
    fn reverse_names_map_to_addresses() {
        assert_eq!(reverse_ipv4("4.3.2.1.in-addr.arpa"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(reverse_ipv4("4.3.2.1.IN-ADDR.ARPA."), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(reverse_ipv4("0.0.0.255.in-addr.arpa"), Some(Ipv4Addr::new(255, 0, 0, 0)));
        for name in [
            "3.2.1.in-addr.arpa",
            "5.4.3.2.1.in-addr.arpa",
            "256.3.2.1.in-addr.arpa",
            "04.3.2.1.in-addr.arpa",
            "+4.3.2.1.in-addr.arpa",
            "4..2.1.in-addr.arpa",
            "4.3.2.1.in-addr.arpa.example",
            "in-addr.arpa",
            ".in-addr.arpa",
            "web.mynet",
            "",
            "\u{e9}.in-addr.arpa",
        ] {
            assert_eq!(reverse_ipv4(name), None, "{name}");
        }
        let ip = Ipv4Addr::new(172, 18, 0, 42);
        assert_eq!(reverse_name(ip), "42.0.18.172.in-addr.arpa");
        assert_eq!(reverse_ipv4(&reverse_name(ip)), Some(ip));
    }

    #[test]
    fn tcp_frames_round_trip() {
        let first = build_query(1, "web", TYPE_A);
        let second = build_query(2, "db", TYPE_A);
        let mut stream = tcp_frame(&first);
        assert_eq!(stream.get(..2), Some(&[0, 21][..]));
        stream.extend_from_slice(&tcp_frame(&second));
        let mut reader = io::Cursor::new(stream);
        assert_eq!(read_tcp_frame(&mut reader).expect("reads"), Some(first.clone()));
        assert_eq!(read_tcp_frame(&mut reader).expect("reads"), Some(second));
        assert_eq!(read_tcp_frame(&mut reader).expect("reads"), None);

        let mut cut = tcp_frame(&first);
        cut.pop();
        let err = read_tcp_frame(&mut io::Cursor::new(cut)).expect_err("ends inside");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_tcp_frame(&mut io::Cursor::new([0u8])).expect_err("ends in the length");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        assert!(tcp_frame(&vec![0; 65536]).is_empty());
    }

    /// What the fuzz target checks, on a fixed set of mutations so CI runs
    /// it: no panic, and every query that parses gets an answer that parses.
    #[test]
    fn mutated_messages_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            DIG_QUERY.to_vec(),
            NSLOOKUP_QUERY.to_vec(),
            response(
                &query("web", TYPE_ANY),
                Rcode::NoError,
                &[Record::A(ip(2)), Record::Ptr("a.b".into())],
                1,
                512,
            ),
        ];
        let mut parsed = 0;
        for round in 0..30_000 {
            let mut msg = seeds[round % seeds.len()].clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % msg.len().max(1);
                match next() % 4 {
                    0 => msg.truncate(at),
                    1 => msg.insert(at, next() as u8),
                    _ => {
                        if let Some(byte) = msg.get_mut(at) {
                            *byte = next() as u8;
                        }
                    }
                }
            }
            let _ = error_response(&msg, Rcode::FormErr);
            let _ = parse_response(&msg);
            if let Ok(query) = parse_query(&msg) {
                parsed += 1;
                let _ = reverse_ipv4(&query.name);
                let records = [Record::A(ip(2)), Record::Ptr(query.name.clone())];
                let out = response(&query, Rcode::NoError, &records, 1, 512);
                let answer = parse_response(&out).expect("our answer parses");
                assert_eq!(answer.id, query.id);
                assert!(answer.answers.iter().all(|(owner, _)| *owner == query.name));
            }
        }
        assert!(parsed > 1000, "only {parsed} mutations parsed");
    }

    #[test]
    fn the_question_comes_back_in_the_clients_case() {
        let msg = build_query(9, "WeB.Example", TYPE_A);
        let query = parse_query(&msg).expect("a query");
        assert_eq!(query.name, "web.example");
        let mut reply =
            response(&query, Rcode::NoError, &[Record::A([10, 0, 0, 2].into())], 60, 512);
        echo_question_case(&mut reply, &msg);
        assert_eq!(reply.get(12..29), msg.get(12..29));
        let parsed = parse_response(&reply).expect("a response");
        assert_eq!(parsed.answers.len(), 1);
        // A different name is left alone.
        let other = build_query(9, "db.example", TYPE_A);
        let before = reply.clone();
        echo_question_case(&mut reply, &other);
        assert_eq!(reply, before);
    }
}
