//! The byte layout of NETLINK_ROUTE messages: building requests and walking
//! replies. Pure byte work, no sockets, so it is tested without root.
//!
//! Every message is a `struct nlmsghdr` (16 bytes), a fixed family header
//! (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) and then attributes (`struct rtattr`:
//! u16 length including itself, u16 type, data padded to 4 bytes). Numbers
//! are in host byte order, as the kernel's uapi structs are. The constants
//! below are the uapi values from linux/netlink.h, rtnetlink.h, if_link.h,
//! if_addr.h and veth.h; the `libc` crate has only some of them on Linux.

use std::io;

// linux/netlink.h
pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
#[cfg(test)]
const NLM_F_MULTI: u16 = 0x2;
pub(super) const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;
/// On an NLMSG_ERROR: the echoed request was cut to its header.
const NLM_F_CAPPED: u16 = 0x100;
/// On an NLMSG_ERROR: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
pub(super) const SOL_NETLINK: i32 = 270;
pub(super) const NETLINK_CAP_ACK: i32 = 10;
pub(super) const NETLINK_EXT_ACK: i32 = 11;

// linux/rtnetlink.h
pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_DELLINK: u16 = 17;
pub(super) const RTM_GETLINK: u16 = 18;
pub(super) const RTM_SETLINK: u16 = 19;
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_GETADDR: u16 = 22;
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_GETROUTE: u16 = 26;
pub(super) const RTA_DST: u16 = 1;
pub(super) const RTA_OIF: u16 = 4;
pub(super) const RTA_GATEWAY: u16 = 5;
pub(super) const RTA_TABLE: u16 = 15;
pub(super) const RT_TABLE_MAIN: u8 = 254;
pub(super) const RTPROT_BOOT: u8 = 3;
pub(super) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(super) const RTN_UNICAST: u8 = 1;

// linux/if_link.h, linux/veth.h
pub(super) const IFLA_ADDRESS: u16 = 1;
pub(super) const IFLA_IFNAME: u16 = 3;
pub(super) const IFLA_MTU: u16 = 4;
pub(super) const IFLA_LINK: u16 = 5;
pub(super) const IFLA_MASTER: u16 = 10;
pub(super) const IFLA_LINKINFO: u16 = 18;
pub(super) const IFLA_NET_NS_FD: u16 = 28;
pub(super) const IFLA_EXT_MASK: u16 = 29;
pub(super) const IFLA_INFO_KIND: u16 = 1;
pub(super) const IFLA_INFO_DATA: u16 = 2;
pub(super) const IFLA_INFO_SLAVE_KIND: u16 = 4;
pub(super) const IFLA_INFO_SLAVE_DATA: u16 = 5;
/// linux/if_link.h `IFLA_BRPORT_MODE`: a bridge port's hairpin flag (u8).
pub(super) const IFLA_BRPORT_MODE: u16 = 4;
pub(super) const VETH_INFO_PEER: u16 = 1;
/// IFLA_EXT_MASK bit: leave the (large) statistics out of link answers.
pub(super) const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
/// linux/if.h: the administrative "up" flag of `ifi_flags`.
pub(super) const IFF_UP: u32 = 1;

// linux/if_addr.h
pub(super) const IFA_ADDRESS: u16 = 1;
pub(super) const IFA_LOCAL: u16 = 2;
pub(super) const IFA_BROADCAST: u16 = 4;

pub(super) const AF_UNSPEC: u8 = 0;
pub(super) const AF_INET: u8 = 2;

const HEADER_LEN: usize = 16;
const ATTR_HEADER_LEN: usize = 4;
/// Attribute types carry two flag bits (nested, network byte order) on top.
const ATTR_TYPE_MASK: u16 = 0x3fff;

/// Rounds up to netlink's 4-byte alignment.
pub(super) const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A request being built: its `nlmsghdr`, a family header, attributes.
///
/// The header's length is written by [`Message::finish`]; attribute nests
/// are closed by [`Message::end_nest`], which writes their length.
#[derive(Debug, Clone)]
pub(super) struct Message {
    buf: Vec<u8>,
}

/// An open nested attribute, to be closed with [`Message::end_nest`].
#[derive(Debug)]
#[must_use]
pub(super) struct Nest(usize);

impl Message {
    pub(super) fn new(kind: u16, flags: u16) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
        Message { buf }
    }

    /// Whether the kernel answers with a multi-part dump ending in NLMSG_DONE.
    pub(super) fn is_dump(&self) -> bool {
        u16::from_ne_bytes([self.buf[6], self.buf[7]]) & NLM_F_DUMP == NLM_F_DUMP
    }

    /// `struct ifinfomsg`: family, pad, type, index, flags, change mask.
    pub(super) fn ifinfomsg(mut self, index: u32, flags: u32, change: u32) -> Message {
        self.push_ifinfomsg(index, flags, change);
        self
    }

    fn push_ifinfomsg(&mut self, index: u32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
    pub(super) fn ifaddrmsg(mut self, family: u8, prefix_len: u8, index: u32) -> Message {
        self.buf.extend_from_slice(&[family, prefix_len, 0, RT_SCOPE_UNIVERSE]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    /// `struct rtmsg`: family, dst_len, src_len, tos, table, protocol,
    /// scope, type, flags.
    pub(super) fn rtmsg(mut self, family: u8, table: u8, protocol: u8, kind: u8) -> Message {
        self.buf.extend_from_slice(&[family, 0, 0, 0, table, protocol, RT_SCOPE_UNIVERSE, kind]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self
    }

    pub(super) fn attr(mut self, kind: u16, data: &[u8]) -> Message {
        self.push_attr(kind, data);
        self
    }

    pub(super) fn attr_u32(self, kind: u16, value: u32) -> Message {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A NUL-terminated string attribute, as the kernel's `NLA_STRING`
    /// policies for names and kinds expect.
    pub(super) fn attr_str(mut self, kind: u16, value: &str) -> Message {
        let start = self.begin(kind);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.close(start);
        self
    }

    fn push_attr(&mut self, kind: u16, data: &[u8]) {
        let start = self.begin(kind);
        self.buf.extend_from_slice(data);
        self.close(start);
    }

    pub(super) fn begin_nest(&mut self, kind: u16) -> Nest {
        Nest(self.begin(kind))
    }

    pub(super) fn end_nest(&mut self, nest: Nest) {
        self.close(nest.0);
    }

    /// Appends bytes inside an open nest (the peer's `ifinfomsg` of a veth).
    pub(super) fn push_ifinfomsg_in_nest(&mut self, index: u32, flags: u32, change: u32) {
        self.push_ifinfomsg(index, flags, change);
    }

    pub(super) fn push_attr_in_nest(&mut self, kind: u16, data: &[u8]) {
        self.push_attr(kind, data);
    }

    pub(super) fn push_str_in_nest(&mut self, kind: u16, value: &str) {
        let start = self.begin(kind);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.close(start);
    }

    fn begin(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        start
    }

    /// Writes the attribute's length (unpadded, as the kernel expects) and
    /// pads the buffer to the next attribute's alignment.
    fn close(&mut self, start: usize) {
        let len = self.buf.len() - start;
        // An attribute over 64 KiB cannot be expressed; nothing here comes
        // close (names are 16 bytes), so saturate rather than panic.
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len16.to_ne_bytes());
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// Sets the sequence number and total length; the bytes go on the wire.
    /// Requests other than dumps always ask for an acknowledgement, so that
    /// each ends in exactly one NLMSG_ERROR (0 for success) and a batch of
    /// them can be answered in any grouping of datagrams.
    pub(super) fn finish(mut self, seq: u32) -> Vec<u8> {
        if !self.is_dump() {
            let flags = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | NLM_F_ACK;
            self.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        }
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One message of a reply, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply<'a> {
    pub(super) kind: u16,
    pub(super) flags: u16,
    pub(super) seq: u32,
    /// Everything after the `nlmsghdr`.
    pub(super) payload: &'a [u8],
}

/// Splits a datagram from the kernel into its messages.
pub(super) fn split(mut buf: &[u8]) -> io::Result<Vec<Reply<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= HEADER_LEN {
        let len = u32_at(buf, 0).unwrap_or(0) as usize;
        if len < HEADER_LEN || len > buf.len() {
            return Err(malformed("message length out of bounds"));
        }
        out.push(Reply {
            kind: u16_at(buf, 4).unwrap_or(0),
            flags: u16_at(buf, 6).unwrap_or(0),
            seq: u32_at(buf, 8).unwrap_or(0),
            payload: &buf[HEADER_LEN..len],
        });
        buf = buf.get(align(len)..).unwrap_or(&[]);
    }
    if !buf.is_empty() {
        return Err(malformed("trailing bytes after the last message"));
    }
    Ok(out)
}

/// What an NLMSG_ERROR (or NLMSG_DONE) says: 0 for an acknowledgement, else
/// a positive errno, and the kernel's extended-ack text when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Status {
    pub(super) errno: i32,
    pub(super) message: Option<String>,
}

/// Decodes the payload of an NLMSG_ERROR: `int error` (0 or -errno), the
/// request's header (and its body unless capped), then, when flagged,
/// extended-ack attributes with a human-readable message.
pub(super) fn error_status(flags: u16, payload: &[u8]) -> io::Result<Status> {
    let error = i32_at(payload, 0).ok_or_else(|| malformed("short NLMSG_ERROR"))?;
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            HEADER_LEN
        } else {
            u32_at(payload, 4).map_or(HEADER_LEN, |len| len as usize)
        };
        let tlvs = payload.get(4 + align(echoed)..).unwrap_or(&[]);
        message = attrs(tlvs)
            .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)
            .map(|(_, data)| c_string(data))
            .filter(|text| !text.is_empty());
    }
    Ok(Status { errno: error.saturating_neg(), message })
}

/// Decodes an NLMSG_DONE, which may carry an error code for a failed dump.
pub(super) fn done_status(payload: &[u8]) -> Status {
    let error = i32_at(payload, 0).unwrap_or(0);
    Status { errno: error.saturating_neg(), message: None }
}

/// The attributes in `buf`, as (type without flag bits, data). Stops at the
/// first malformed one: the kernel does not send those, and a truncated walk
/// only means a field is reported missing.
pub(super) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & ATTR_TYPE_MASK;
        if len < ATTR_HEADER_LEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let data = &rest[ATTR_HEADER_LEN..len];
        rest = rest.get(align(len)..).unwrap_or(&[]);
        Some((kind, data))
    })
}

/// The first attribute of type `kind`.
pub(super) fn attr(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, data)| data)
}

/// A string attribute without its NUL terminator.
pub(super) fn c_string(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).trim_end().to_owned()
}

pub(super) fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed netlink reply: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b
    }

    #[test]
    fn finished_message_has_its_length_sequence_and_request_flag() {
        let bytes = Message::new(RTM_NEWLINK, NLM_F_CREATE)
            .ifinfomsg(0, 0, 0)
            .attr_str(IFLA_IFNAME, "kt0")
            .finish(42);
        assert_eq!(u32_at(&bytes, 0), Some(bytes.len() as u32));
        assert_eq!(u16_at(&bytes, 4), Some(RTM_NEWLINK));
        assert_eq!(u16_at(&bytes, 6), Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE));
        assert_eq!(u32_at(&bytes, 8), Some(42));
        // header 16 + ifinfomsg 16 + attr (4 + "kt0\0" = 8)
        assert_eq!(bytes.len(), 40);
        let attrs: Vec<_> = attrs(&bytes[32..]).collect();
        assert_eq!(attrs, vec![(IFLA_IFNAME, &b"kt0\0"[..])]);
    }

    #[test]
    fn dumps_are_not_acknowledged_requests_are() {
        let dump = Message::new(RTM_GETROUTE, NLM_F_DUMP).rtmsg(AF_INET, 0, 0, 0).finish(1);
        assert_eq!(u16_at(&dump, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        let get = Message::new(RTM_GETLINK, 0).ifinfomsg(0, 0, 0).finish(2);
        assert_eq!(u16_at(&get, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
    }

    #[test]
    fn string_attributes_are_padded_but_their_length_is_not() {
        let bytes = Message::new(RTM_GETLINK, 0).attr_str(IFLA_IFNAME, "eth0").finish(1);
        // "eth0\0" is 5 bytes: rta_len 9, padded to 12.
        assert_eq!(u16_at(&bytes, 16), Some(9));
        assert_eq!(bytes.len(), 16 + 12);
    }

    #[test]
    fn nests_hold_the_length_of_everything_inside_them() {
        let mut msg = Message::new(RTM_NEWLINK, 0).ifinfomsg(0, 0, 0);
        let info = msg.begin_nest(IFLA_LINKINFO);
        msg.push_str_in_nest(IFLA_INFO_KIND, "veth");
        let data = msg.begin_nest(IFLA_INFO_DATA);
        let peer = msg.begin_nest(VETH_INFO_PEER);
        msg.push_ifinfomsg_in_nest(0, 1, 1);
        msg.push_str_in_nest(IFLA_IFNAME, "eth0");
        msg.end_nest(peer);
        msg.end_nest(data);
        msg.end_nest(info);
        let bytes = msg.finish(7);

        let linkinfo = attr(&bytes[32..], IFLA_LINKINFO).expect("linkinfo");
        assert_eq!(attr(linkinfo, IFLA_INFO_KIND).map(c_string).as_deref(), Some("veth"));
        let data = attr(linkinfo, IFLA_INFO_DATA).expect("info data");
        let peer = attr(data, VETH_INFO_PEER).expect("peer");
        assert_eq!(peer.len(), 16 + 12, "ifinfomsg + padded name");
        assert_eq!(u32_at(peer, 8), Some(1), "peer ifi_flags");
        assert_eq!(attr(&peer[16..], IFLA_IFNAME).map(c_string).as_deref(), Some("eth0"));
        // Nothing after the outer nest.
        assert_eq!(attrs(&bytes[32..]).count(), 1);
    }

    #[test]
    fn a_datagram_splits_into_its_aligned_messages() {
        let mut buf = header(20, RTM_NEWLINK, NLM_F_MULTI, 5);
        buf.extend_from_slice(&[1, 2, 3, 4]);
        buf.extend_from_slice(&header(17, RTM_NEWLINK, NLM_F_MULTI, 5));
        buf.extend_from_slice(&[9, 0, 0, 0]); // 1 byte of payload + 3 of padding
        buf.extend_from_slice(&header(20, NLMSG_DONE, NLM_F_MULTI, 5));
        buf.extend_from_slice(&0i32.to_ne_bytes());
        let msgs = split(&buf).expect("split");
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].payload, &[1, 2, 3, 4]);
        assert_eq!(msgs[1].payload, &[9]);
        assert_eq!(msgs[2].kind, NLMSG_DONE);
        assert_eq!(done_status(msgs[2].payload).errno, 0);
    }

    #[test]
    fn a_message_longer_than_the_datagram_is_an_error_not_a_panic() {
        let buf = header(400, RTM_NEWLINK, 0, 1);
        let err = split(&buf).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let buf = header(3, RTM_NEWLINK, 0, 1);
        assert!(split(&buf).is_err());
    }

    #[test]
    fn error_payload_gives_errno_and_extended_ack_text() {
        // error = -EEXIST, capped echo of the request header, then
        // NLMSGERR_ATTR_MSG "File exists here".
        let mut payload = (-17i32).to_ne_bytes().to_vec();
        payload.extend_from_slice(&header(64, RTM_NEWLINK, 0, 3));
        let text = b"device already exists\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        let status = error_status(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).expect("status");
        assert_eq!(status.errno, 17);
        assert_eq!(status.message.as_deref(), Some("device already exists"));
    }

    #[test]
    fn uncapped_error_skips_the_whole_echoed_request() {
        let mut payload = (-19i32).to_ne_bytes().to_vec();
        let mut echoed = header(24, RTM_DELLINK, 0, 3);
        echoed.extend_from_slice(&[0xff; 8]);
        payload.extend_from_slice(&echoed);
        let text = b"no such device\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        let status = error_status(NLM_F_ACK_TLVS, &payload).expect("status");
        assert_eq!(status, Status { errno: 19, message: Some("no such device".into()) });
    }

    #[test]
    fn an_acknowledgement_is_errno_zero() {
        let mut payload = 0i32.to_ne_bytes().to_vec();
        payload.extend_from_slice(&header(16, RTM_SETLINK, 0, 9));
        assert_eq!(error_status(NLM_F_CAPPED, &payload).expect("ack").errno, 0);
        assert!(error_status(0, &[1, 2]).is_err(), "too short for an error code");
    }

    #[test]
    fn attribute_walk_stops_at_a_bad_length() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&8u16.to_ne_bytes());
        buf.extend_from_slice(&IFLA_MTU.to_ne_bytes());
        buf.extend_from_slice(&1500u32.to_ne_bytes());
        buf.extend_from_slice(&200u16.to_ne_bytes()); // claims more than there is
        buf.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        let found: Vec<_> = attrs(&buf).map(|(k, _)| k).collect();
        assert_eq!(found, vec![IFLA_MTU]);
        // The nested flag bit is not part of the type.
        let mut nested = Vec::new();
        nested.extend_from_slice(&4u16.to_ne_bytes());
        nested.extend_from_slice(&(IFLA_LINKINFO | 0x8000).to_ne_bytes());
        assert_eq!(attrs(&nested).next().map(|(k, _)| k), Some(IFLA_LINKINFO));
    }
}
