//! Network links, addresses and routes through a NETLINK_ROUTE socket: the
//! kernel side of bridge networks (a bridge per network, a veth pair per
//! container, its address and default route).
//!
//! Written against the kernel's message format directly rather than by
//! running `ip`: attaching a container is four round trips to the kernel
//! (about 1.2 ms on an idle machine, most of it the kernel creating the veth
//! pair) and does not depend on iproute2 being installed. Which subnet,
//! which address and which names to use is decided by callers; this module
//! only applies.
//!
//! The pair can also be made ahead of need ([`Netlink::create_spare_veth`],
//! into a namespace from [`netns::create`]) and finished when a container
//! starts ([`Netlink::plug_spare`]): two round trips that only rename,
//! enslave and address, with the kernel's work of creating devices and a
//! namespace done before.
//!
//! A [`Netlink`] socket is bound to the network namespace it was created in,
//! for its whole life. [`Netlink::open_in`] creates one inside another
//! namespace from a short-lived thread, so the caller's threads never change
//! namespace. Every call blocks until the kernel has answered (a few
//! microseconds to a millisecond); async callers use `spawn_blocking`.
//!
//! Errors are `io::Error`s whose kind follows the kernel's errno and whose
//! message names the link, address or route; [`errno`] recovers the number.

mod wire;

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};

use crate::netns;
use wire::{Message, Status};

/// Longest interface name the kernel accepts (IFNAMSIZ less the NUL).
pub const MAX_LINK_NAME_LEN: usize = 15;

/// How long to wait for the kernel's answer before giving up. The kernel
/// always answers; this only turns a wedged rtnl lock into an error.
const ANSWER_TIMEOUT_SECS: libc::time_t = 10;

/// Receive buffer: the kernel sizes dump datagrams at most 32 KiB.
const RECV_BUF_LEN: usize = 64 * 1024;

/// A dump the kernel flagged as inconsistent (links changed meanwhile) is
/// retried this many times before its answer is returned as it is.
const DUMP_RETRIES: usize = 3;

/// The kernel refused a request, or a lookup it depends on failed. Wrapped in
/// the `io::Error` each function returns; the source is the errno.
#[derive(Debug, thiserror::Error)]
pub struct NetlinkError {
    what: String,
    /// The kernel's extended-ack text ("Master device is not a bridge").
    kernel: Option<String>,
    #[source]
    source: io::Error,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kernel {
            Some(text) => write!(f, "{}: {text}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// The errno behind an error from this module or [`netns`]: the raw OS error
/// of a plain `io::Error`, or that of the source of a wrapped one.
pub fn errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        let inner = err.get_ref()?;
        std::error::Error::source(inner)?.downcast_ref::<io::Error>()?.raw_os_error()
    })
}

fn failed(what: impl Into<String>, status: Status) -> io::Error {
    os_failure(what, status.errno, status.message)
}

fn os_failure(what: impl Into<String>, errno: i32, kernel: Option<String>) -> io::Error {
    let source = io::Error::from_raw_os_error(errno);
    // ENODEV is what rtnetlink says for an unknown link name; to callers that
    // is "not found", which std leaves uncategorised.
    let kind = if errno == libc::ENODEV { io::ErrorKind::NotFound } else { source.kind() };
    io::Error::new(kind, NetlinkError { what: what.into(), kernel, source })
}

fn no_such_link(what: impl Into<String>) -> io::Error {
    os_failure(what, libc::ENODEV, None)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Checks an interface name the way the kernel will, so a bad one fails
/// before anything is sent: 1 to 15 bytes, not `.` or `..`, and no `/`, `:`,
/// whitespace or NUL.
pub fn validate_link_name(name: &str) -> io::Result<()> {
    if name.is_empty() {
        return Err(invalid("invalid interface name: empty".to_owned()));
    }
    if name.len() > MAX_LINK_NAME_LEN {
        return Err(invalid(format!(
            "invalid interface name {name:?}: longer than {MAX_LINK_NAME_LEN} bytes"
        )));
    }
    if name == "." || name == ".." {
        return Err(invalid(format!("invalid interface name {name:?}")));
    }
    if let Some(c) =
        name.chars().find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        return Err(invalid(format!("invalid interface name {name:?}: contains {c:?}")));
    }
    Ok(())
}

fn validate_prefix_len(addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(invalid(format!("invalid prefix length /{prefix_len} for {addr}: over 32")));
    }
    Ok(())
}

/// The broadcast address of `addr/prefix_len`, which `ip addr add .. brd +`
/// would set; none for /31 and /32, which have no broadcast.
fn broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(addr) | host_bits))
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth"; none for physical devices and `lo`.
    pub kind: Option<String>,
    /// The bridge (or bond) this link is enslaved to.
    pub master: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`); says nothing about carrier.
    pub is_up: bool,
    /// For a veth: the index of its peer, which may be in another namespace.
    pub peer_index: Option<u32>,
}

fn parse_link(payload: &[u8]) -> io::Result<Link> {
    let index = wire::u32_at(payload, 4).ok_or_else(|| wire::malformed("short ifinfomsg"))?;
    let flags = wire::u32_at(payload, 8).unwrap_or(0);
    let attrs = payload.get(16..).unwrap_or(&[]);
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: None,
        mac: None,
        is_up: flags & wire::IFF_UP != 0,
        peer_index: None,
    };
    for (kind, data) in wire::attrs(attrs) {
        match kind {
            wire::IFLA_IFNAME => link.name = wire::c_string(data),
            wire::IFLA_MTU => link.mtu = wire::u32_at(data, 0),
            wire::IFLA_MASTER => link.master = wire::u32_at(data, 0),
            wire::IFLA_LINK => link.peer_index = wire::u32_at(data, 0),
            wire::IFLA_ADDRESS => link.mac = data.try_into().ok(),
            wire::IFLA_LINKINFO => {
                link.kind = wire::attr(data, wire::IFLA_INFO_KIND).map(wire::c_string);
            }
            _ => {}
        }
    }
    // IFLA_LINK is also set for a device pointing at itself; only a
    // different index is a peer.
    if link.peer_index == Some(link.index) {
        link.peer_index = None;
    }
    Ok(link)
}

/// (address, prefix length, interface index) of an RTM_NEWADDR.
fn parse_address(payload: &[u8]) -> Option<(Ipv4Addr, u8, u32)> {
    let (&family, &prefix_len) = (payload.first()?, payload.get(1)?);
    if family != wire::AF_INET {
        return None;
    }
    let index = wire::u32_at(payload, 4)?;
    let attrs = payload.get(8..)?;
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
    // point-to-point links and the same as IFA_LOCAL elsewhere.
    let data =
        wire::attr(attrs, wire::IFA_LOCAL).or_else(|| wire::attr(attrs, wire::IFA_ADDRESS))?;
    let octets: [u8; 4] = data.try_into().ok()?;
    Some((Ipv4Addr::from(octets), prefix_len, index))
}

/// (destination, prefix length) of an RTM_NEWROUTE in the main table.
fn parse_main_route(payload: &[u8]) -> Option<(Ipv4Addr, u8)> {
    let (&family, &dst_len) = (payload.first()?, payload.get(1)?);
    if family != wire::AF_INET {
        return None;
    }
    let attrs = payload.get(12..)?;
    // rtm_table is a byte; tables past 255 are only in RTA_TABLE.
    let table = wire::attr(attrs, wire::RTA_TABLE)
        .and_then(|d| wire::u32_at(d, 0))
        .unwrap_or_else(|| u32::from(*payload.get(4).unwrap_or(&0)));
    if table != u32::from(wire::RT_TABLE_MAIN) {
        return None;
    }
    let dst = match wire::attr(attrs, wire::RTA_DST) {
        Some(data) => Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?),
        None => Ipv4Addr::UNSPECIFIED,
    };
    Some((dst, dst_len))
}

/// What the kernel sent back for one request.
#[derive(Debug, Default)]
struct Answer {
    /// Data messages (type, payload after the nlmsghdr).
    replies: Vec<(u16, Vec<u8>)>,
    /// The final NLMSG_ERROR or NLMSG_DONE; set once the answer is complete.
    status: Option<Status>,
    /// A dump the kernel marked as inconsistent.
    interrupted: bool,
}

impl Answer {
    fn status(&self) -> Status {
        self.status.clone().unwrap_or(Status { errno: 0, message: None })
    }
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in.
///
/// Requests carry sequence numbers and each waits for its acknowledgement,
/// so errors are reported by the call that caused them. Not `Sync`: one
/// socket serves one conversation at a time; open one per thread.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: Cell<u32>,
}

impl Netlink {
    /// A socket in the calling thread's current network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = open_socket().map_err(|err| {
            let errno = err.raw_os_error().unwrap_or(libc::EIO);
            os_failure("cannot open a NETLINK_ROUTE socket", errno, None)
        })?;
        Ok(Netlink { fd, seq: Cell::new(1) })
    }

    /// A socket inside the network namespace `netns` refers to (a file from
    /// [`netns::open`], `/proc/PID/ns/net`, ..). It is made on a
    /// short-lived thread that enters the namespace, because a netlink socket
    /// stays in the namespace it was created in and setns would otherwise
    /// move one of the caller's own threads.
    pub fn open_in(netns: impl AsFd) -> io::Result<Netlink> {
        netns::run_in_fd(netns.as_fd(), Netlink::open)
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link(name)?.map(|link| link.index))
    }

    /// The link called `name`, if there is one.
    pub fn link(&self, name: &str) -> io::Result<Option<Link>> {
        validate_link_name(name)?;
        let request = Message::new(wire::RTM_GETLINK, 0)
            .ifinfomsg(0, 0, 0)
            .attr_str(wire::IFLA_IFNAME, name)
            .attr_u32(wire::IFLA_EXT_MASK, wire::RTEXT_FILTER_SKIP_STATS);
        let answer = self.request(request)?;
        let status = answer.status();
        if status.errno == libc::ENODEV {
            return Ok(None);
        }
        if status.errno != 0 {
            return Err(failed(format!("cannot look up link {name}"), status));
        }
        match answer.replies.iter().find(|(kind, _)| *kind == wire::RTM_NEWLINK) {
            Some((_, payload)) => parse_link(payload).map(Some),
            None => Ok(None),
        }
    }

    /// Every link in this namespace.
    pub fn links(&self) -> io::Result<Vec<Link>> {
        let answer = self.dump(
            || {
                Message::new(wire::RTM_GETLINK, wire::NLM_F_DUMP)
                    .ifinfomsg(0, 0, 0)
                    .attr_u32(wire::IFLA_EXT_MASK, wire::RTEXT_FILTER_SKIP_STATS)
            },
            "cannot list links",
        )?;
        answer
            .replies
            .iter()
            .filter(|(kind, _)| *kind == wire::RTM_NEWLINK)
            .map(|(_, payload)| parse_link(payload))
            .collect()
    }

    /// Creates a bridge and returns its index. An existing bridge of that
    /// name is fine (its index is returned, its MTU left alone), so a daemon
    /// restart finds its bridges in place; an existing link of another kind
    /// is an `AlreadyExists` error.
    pub fn create_bridge(&self, name: &str, mtu: Option<u32>) -> io::Result<u32> {
        validate_link_name(name)?;
        let mut request = Message::new(wire::RTM_NEWLINK, wire::NLM_F_CREATE | wire::NLM_F_EXCL)
            .ifinfomsg(0, 0, 0)
            .attr_str(wire::IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            request = request.attr_u32(wire::IFLA_MTU, mtu);
        }
        let info = request.begin_nest(wire::IFLA_LINKINFO);
        request.push_str_in_nest(wire::IFLA_INFO_KIND, "bridge");
        request.end_nest(info);
        let status = self.request(request)?.status();
        if status.errno != 0 && status.errno != libc::EEXIST {
            return Err(failed(format!("cannot create bridge {name}"), status));
        }
        let link = self
            .link(name)?
            .ok_or_else(|| no_such_link(format!("bridge {name} vanished after creation")))?;
        if link.kind.as_deref() != Some("bridge") {
            return Err(os_failure(
                format!(
                    "cannot create bridge {name}: a {} link of that name exists",
                    link.kind.as_deref().unwrap_or("non-bridge")
                ),
                libc::EEXIST,
                None,
            ));
        }
        Ok(link.index)
    }

    /// Creates a veth pair: `host` here, `peer` in `peer_netns` (here when
    /// none), both down. The peer is created directly in its namespace, so
    /// its name only has to be free there ("eth0" is fine). A link of either
    /// name that already exists is an `AlreadyExists` error (EEXIST).
    pub fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
        peer_mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> io::Result<()> {
        self.add_veth(&VethRequest {
            host,
            peer,
            peer_netns,
            peer_mac,
            mtu,
            master: None,
            up: false,
        })
    }

    fn add_veth(&self, veth: &VethRequest<'_>) -> io::Result<()> {
        let status = self.request(veth_request(veth)?)?.status();
        if status.errno != 0 {
            return Err(failed(
                format!("cannot create veth pair {}/{}", veth.host, veth.peer),
                status,
            ));
        }
        Ok(())
    }

    /// Enslaves `link` to the bridge `master`.
    pub fn set_master(&self, link: &str, master: &str) -> io::Result<()> {
        validate_link_name(link)?;
        let what = || format!("cannot attach {link} to bridge {master}");
        let index = self
            .link_index(master)?
            .ok_or_else(|| no_such_link(format!("{}: no link {master}", what())))?;
        let request = Message::new(wire::RTM_SETLINK, 0)
            .ifinfomsg(0, 0, 0)
            .attr_str(wire::IFLA_IFNAME, link)
            .attr_u32(wire::IFLA_MASTER, index);
        self.expect_ack(request, what)
    }

    /// Sets `link` administratively up.
    pub fn set_up(&self, link: &str) -> io::Result<()> {
        validate_link_name(link)?;
        let request = Message::new(wire::RTM_SETLINK, 0)
            .ifinfomsg(0, wire::IFF_UP, wire::IFF_UP)
            .attr_str(wire::IFLA_IFNAME, link);
        self.expect_ack(request, || format!("cannot set link {link} up"))
    }

    /// Turns hairpin mode of bridge port `link` on or off (`ip link set
    /// LINK type bridge_slave hairpin on`): the bridge may then send a frame
    /// back out of the port it came in on. A container reaching its own
    /// published port through a host address needs it where the DNAT
    /// happens on the bridge (with `br_netfilter`). One round trip: the
    /// port's flag is changed through its master's link operations, which
    /// RTM_NEWLINK on an existing link reaches and RTM_SETLINK does not.
    pub fn set_hairpin(&self, link: &str, on: bool) -> io::Result<()> {
        validate_link_name(link)?;
        self.expect_ack(hairpin_request(0, Some(link), on), || {
            format!("cannot set hairpin mode {} on {link}", if on { "on" } else { "off" })
        })
    }

    /// Renames `link`. The kernel refuses (EBUSY) to rename a link that is up.
    pub fn rename(&self, link: &str, new_name: &str) -> io::Result<()> {
        validate_link_name(link)?;
        validate_link_name(new_name)?;
        let what = || format!("cannot rename link {link} to {new_name}");
        let index = self
            .link_index(link)?
            .ok_or_else(|| no_such_link(format!("{}: no such link", what())))?;
        let request = Message::new(wire::RTM_SETLINK, 0)
            .ifinfomsg(index, 0, 0)
            .attr_str(wire::IFLA_IFNAME, new_name);
        self.expect_ack(request, what)
    }

    /// Adds `addr/prefix_len` to `link`. An address it already has is fine.
    pub fn add_address(&self, link: &str, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        validate_link_name(link)?;
        validate_prefix_len(addr, prefix_len)?;
        let what = || format!("cannot add address {addr}/{prefix_len} to {link}");
        let index = self
            .link_index(link)?
            .ok_or_else(|| no_such_link(format!("{}: no such link", what())))?;
        let status = self.request(address_request(index, addr, prefix_len))?.status();
        match status.errno {
            0 | libc::EEXIST => Ok(()),
            _ => Err(failed(what(), status)),
        }
    }

    /// The IPv4 addresses of `link`, with their prefix lengths.
    pub fn addresses(&self, link: &str) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        validate_link_name(link)?;
        let what = || format!("cannot list addresses of {link}");
        let index = self
            .link_index(link)?
            .ok_or_else(|| no_such_link(format!("{}: no such link", what())))?;
        let answer = self.dump(
            || Message::new(wire::RTM_GETADDR, wire::NLM_F_DUMP).ifaddrmsg(wire::AF_INET, 0, 0),
            &what(),
        )?;
        Ok(answer
            .replies
            .iter()
            .filter_map(|(_, payload)| parse_address(payload))
            .filter(|(_, _, on)| *on == index)
            .map(|(addr, prefix_len, _)| (addr, prefix_len))
            .collect())
    }

    /// Adds the default route via `gateway`, which must be reachable through
    /// an address on an up link. A default route already there is an
    /// `AlreadyExists` error.
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> io::Result<()> {
        self.expect_ack(default_route_request(gateway, None), || {
            format!("cannot add default route via {gateway}")
        })
    }

    /// Deletes the link called `name`; a veth takes its peer with it. A link
    /// that does not exist is fine: deleting is how callers clean up, also
    /// after a crash that may have got there first.
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        validate_link_name(name)?;
        let request =
            Message::new(wire::RTM_DELLINK, 0).ifinfomsg(0, 0, 0).attr_str(wire::IFLA_IFNAME, name);
        let status = self.request(request)?.status();
        match status.errno {
            0 | libc::ENODEV => Ok(()),
            _ => Err(failed(format!("cannot delete link {name}"), status)),
        }
    }

    /// The IPv4 routes of the main table as (destination, prefix length),
    /// to pick subnets that do not collide with the host's. Default routes
    /// are included as `0.0.0.0/0`; a subnet picker skips them, as Docker's
    /// does, or nothing would ever be free.
    pub fn routes(&self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let answer = self.dump(
            || Message::new(wire::RTM_GETROUTE, wire::NLM_F_DUMP).rtmsg(wire::AF_INET, 0, 0, 0),
            "cannot list routes",
        )?;
        Ok(answer
            .replies
            .iter()
            .filter(|(kind, _)| *kind == wire::RTM_NEWROUTE)
            .filter_map(|(_, payload)| parse_main_route(payload))
            .collect())
    }

    /// Connects a container's namespace to a bridge in this socket's
    /// namespace; see [`attach_container`].
    pub fn attach_container(&self, plan: &VethPlan<'_>) -> io::Result<()> {
        validate_link_name(plan.bridge)?;
        validate_link_name(plan.host_name)?;
        validate_link_name(plan.container_name)?;
        validate_prefix_len(plan.address, plan.prefix_len)?;
        let netns = netns::open(plan.netns)?;
        let bridge = self.link_index(plan.bridge)?.ok_or_else(|| {
            no_such_link(format!(
                "cannot attach {} to bridge {}: no such bridge",
                plan.host_name, plan.bridge
            ))
        })?;
        // Round trip 1 was the bridge's index. 2: the pair, host end already
        // in the bridge and up, peer made in the namespace under its final
        // name with its MAC, so nothing needs renaming or moving.
        self.add_veth(&VethRequest {
            host: plan.host_name,
            peer: plan.container_name,
            peer_netns: Some(netns.as_fd()),
            peer_mac: plan.mac,
            mtu: plan.mtu,
            master: Some(bridge),
            up: true,
        })?;
        // From here on a failure removes the pair (deleting one end deletes
        // both), so nothing half-configured is left behind.
        let inside = configure_inside(&netns, plan);
        if let Err(err) = inside {
            let _ = self.delete_link(plan.host_name);
            return Err(err);
        }
        Ok(())
    }

    /// Creates a veth pair for later use by [`Netlink::plug_spare`]: `host`
    /// here, down and in no bridge, under a temporary name; `peer` in
    /// `netns` (whose socket `inside` is), down. Nothing is left behind on
    /// failure.
    pub fn create_spare_veth(
        &self,
        host: &str,
        peer: &str,
        netns: BorrowedFd<'_>,
        inside: &Netlink,
    ) -> io::Result<SpareVeth> {
        self.create_veth(host, peer, Some(netns), None, None)?;
        let indexes = self.link_index(host).and_then(|host_index| {
            let missing = |name: &str| no_such_link(format!("{name} vanished after creation"));
            let host_index = host_index.ok_or_else(|| missing(host))?;
            let peer_index = inside.link_index(peer)?.ok_or_else(|| missing(peer))?;
            Ok((host_index, peer_index))
        });
        match indexes {
            Ok((host_index, peer_index)) => Ok(SpareVeth {
                host_name: host.to_owned(),
                host_index,
                peer_name: peer.to_owned(),
                peer_index,
            }),
            Err(err) => {
                let _ = self.delete_link(host);
                Err(err)
            }
        }
    }

    /// Puts a spare pair from [`Netlink::create_spare_veth`] to use, through
    /// this socket (in the host end's namespace) and `inside` (in the
    /// peer's): the host end renamed to `plug.host_name`, in the bridge, up
    /// (and in hairpin mode); the peer renamed to `plug.container_name` if it
    /// is not, with its MAC, up, with its address and default route. Two
    /// round trips. On failure the pair is deleted.
    pub fn plug_spare(
        &self,
        inside: &Netlink,
        spare: SpareVeth,
        plug: &Plug<'_>,
    ) -> io::Result<()> {
        plug.validate()?;
        let mut setlink = Message::new(wire::RTM_SETLINK, 0)
            .ifinfomsg(spare.host_index, wire::IFF_UP, wire::IFF_UP)
            .attr_u32(wire::IFLA_MASTER, plug.bridge_index);
        if spare.host_name != plug.host_name {
            setlink = setlink.attr_str(wire::IFLA_IFNAME, plug.host_name);
        }
        let mut host = vec![setlink];
        if plug.hairpin {
            host.push(hairpin_request(spare.host_index, None, true));
        }
        let outside = self.exchange(host).and_then(|answers| {
            let whats = [
                format!(
                    "cannot rename veth {} to {} and put it in bridge {}",
                    spare.host_name, plug.host_name, plug.bridge_index
                ),
                format!("cannot set hairpin mode on {}", plug.host_name),
            ];
            for (answer, what) in answers.iter().zip(whats) {
                let status = answer.status();
                if status.errno != 0 {
                    return Err(failed(what, status));
                }
            }
            Ok(())
        });
        let configured = outside.and_then(|()| {
            let mut up = Message::new(wire::RTM_SETLINK, 0).ifinfomsg(
                spare.peer_index,
                wire::IFF_UP,
                wire::IFF_UP,
            );
            if spare.peer_name != plug.container_name {
                up = up.attr_str(wire::IFLA_IFNAME, plug.container_name);
            }
            if let Some(mac) = plug.mac {
                up = up.attr(wire::IFLA_ADDRESS, &mac);
            }
            inside.configure_peer(up, spare.peer_index, plug)
        });
        if let Err(err) = configured {
            let _ = self.delete_link_index(spare.host_index);
            return Err(err);
        }
        Ok(())
    }

    /// Connects a namespace to a bridge with a new veth pair, through this
    /// socket (in the bridge's namespace) and `inside` (in `netns`): the
    /// host end made in the bridge and up (and in hairpin mode), the peer
    /// made in the namespace with its MAC, then up with its address (and
    /// default route). Three round trips, no thread. On failure the pair is
    /// deleted.
    pub fn plug_new(
        &self,
        inside: &Netlink,
        netns: BorrowedFd<'_>,
        plug: &Plug<'_>,
    ) -> io::Result<()> {
        plug.validate()?;
        let create = VethRequest {
            host: plug.host_name,
            peer: plug.container_name,
            peer_netns: Some(netns),
            peer_mac: plug.mac,
            mtu: None,
            master: Some(plug.bridge_index),
            up: true,
        };
        // The kernel takes a datagram's requests in order: the port exists
        // by the time its hairpin flag is set.
        let mut requests = vec![veth_request(&create)?];
        if plug.hairpin {
            requests.push(hairpin_request(0, Some(plug.host_name), true));
        }
        let answers = self.exchange(requests)?;
        let created =
            answers.first().map(Answer::status).unwrap_or(Status { errno: 0, message: None });
        if created.errno != 0 {
            return Err(failed(
                format!("cannot create veth pair {}/{}", plug.host_name, plug.container_name),
                created,
            ));
        }
        let configured = (|| {
            if let Some(status) = answers.get(1).map(Answer::status).filter(|s| s.errno != 0) {
                return Err(failed(
                    format!("cannot set hairpin mode on {}", plug.host_name),
                    status,
                ));
            }
            let name = plug.container_name;
            let index = inside
                .link_index(name)?
                .ok_or_else(|| no_such_link(format!("{name} missing after creation")))?;
            let up =
                Message::new(wire::RTM_SETLINK, 0).ifinfomsg(index, wire::IFF_UP, wire::IFF_UP);
            inside.configure_peer(up, index, plug)
        })();
        if let Err(err) = configured {
            let _ = self.delete_link(plug.host_name);
            return Err(err);
        }
        Ok(())
    }

    /// Sends `up` (the peer's RTM_SETLINK), its address and, with a
    /// gateway, the default route in one datagram through this socket.
    fn configure_peer(&self, up: Message, index: u32, plug: &Plug<'_>) -> io::Result<()> {
        let name = plug.container_name;
        let mut requests = vec![up, address_request(index, plug.address, plug.prefix_len)];
        let mut whats = vec![
            format!("cannot set {name} up"),
            format!("cannot add address {}/{} to {name}", plug.address, plug.prefix_len),
        ];
        if let Some(gateway) = plug.gateway {
            requests.push(default_route_request(gateway, Some(index)));
            whats.push(format!("cannot add default route via {gateway} on {name}"));
        }
        let answers = self.exchange(requests)?;
        for (answer, what) in answers.iter().zip(whats) {
            let status = answer.status();
            if status.errno != 0 {
                return Err(failed(what, status));
            }
        }
        Ok(())
    }

    /// Deletes the link with index `index`, as [`Netlink::delete_link`]
    /// does by name; one that does not exist is fine.
    pub fn delete_link_index(&self, index: u32) -> io::Result<()> {
        let request = Message::new(wire::RTM_DELLINK, 0).ifinfomsg(index, 0, 0);
        let status = self.request(request)?.status();
        match status.errno {
            0 | libc::ENODEV => Ok(()),
            _ => Err(failed(format!("cannot delete link {index}"), status)),
        }
    }

    fn expect_ack(&self, request: Message, what: impl FnOnce() -> String) -> io::Result<()> {
        let status = self.request(request)?.status();
        if status.errno != 0 {
            return Err(failed(what(), status));
        }
        Ok(())
    }

    fn request(&self, request: Message) -> io::Result<Answer> {
        let mut answers = self.exchange(vec![request])?;
        answers.pop().ok_or_else(|| wire::malformed("no answer"))
    }

    /// A dump, retried while the kernel says it was interrupted by changes.
    fn dump(&self, request: impl Fn() -> Message, what: &str) -> io::Result<Answer> {
        let mut answer = self.request(request())?;
        for _ in 0..DUMP_RETRIES {
            if !answer.interrupted {
                break;
            }
            answer = self.request(request())?;
        }
        let status = answer.status();
        if status.errno != 0 {
            return Err(failed(what, status));
        }
        Ok(answer)
    }

    /// Sends `requests` in one datagram and collects every answer. The kernel
    /// handles them in order, each on its own: a failed one does not stop
    /// the next. Messages with sequence numbers of no request here (left
    /// over from a call that gave up) are skipped.
    fn exchange(&self, requests: Vec<Message>) -> io::Result<Vec<Answer>> {
        let count = requests.len();
        let first = self.seq.get();
        self.seq.set(first.wrapping_add(u32::try_from(count).unwrap_or(u32::MAX)));
        let mut datagram = Vec::new();
        let mut seq = first;
        for request in requests {
            datagram.extend_from_slice(&request.finish(seq));
            seq = seq.wrapping_add(1);
        }
        let sent = retry_eintr(|| socket::send(self.fd.as_raw_fd(), &datagram, MsgFlags::empty()))
            .map_err(|err| {
                os_failure("cannot send a netlink request", err.raw_os_error().unwrap_or(0), None)
            })?;
        if sent != datagram.len() {
            return Err(io::Error::other("netlink request was sent in part"));
        }

        let mut answers: Vec<Answer> = (0..count).map(|_| Answer::default()).collect();
        let mut open = count;
        let mut buf = vec![0u8; RECV_BUF_LEN];
        while open > 0 {
            let len =
                retry_eintr(|| socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC))
                    .map_err(|err| match err.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "no netlink answer from the kernel within {ANSWER_TIMEOUT_SECS} s"
                            ),
                        ),
                        _ => os_failure(
                            "cannot receive a netlink answer",
                            err.raw_os_error().unwrap_or(0),
                            None,
                        ),
                    })?;
            let Some(received) = buf.get(..len) else {
                return Err(wire::malformed("datagram larger than the receive buffer"));
            };
            for reply in wire::split(received)? {
                let index = reply.seq.wrapping_sub(first) as usize;
                let Some(answer) = answers.get_mut(index) else { continue };
                if answer.status.is_some() {
                    continue;
                }
                match reply.kind {
                    wire::NLMSG_NOOP => {}
                    wire::NLMSG_ERROR => {
                        answer.status = Some(wire::error_status(reply.flags, reply.payload)?);
                        open -= 1;
                    }
                    wire::NLMSG_DONE => {
                        answer.status = Some(wire::done_status(reply.payload));
                        open -= 1;
                    }
                    wire::NLMSG_OVERRUN => return Err(wire::malformed("overrun")),
                    // Data: the single answer of a get (its acknowledgement
                    // follows) or one part of a dump (NLMSG_DONE follows).
                    kind => {
                        answer.interrupted |= reply.flags & wire::NLM_F_DUMP_INTR != 0;
                        answer.replies.push((kind, reply.payload.to_vec()));
                    }
                }
            }
        }
        Ok(answers)
    }
}

/// The parts of a veth pair's creation request.
#[derive(Debug)]
struct VethRequest<'a> {
    host: &'a str,
    peer: &'a str,
    peer_netns: Option<BorrowedFd<'a>>,
    peer_mac: Option<[u8; 6]>,
    mtu: Option<u32>,
    master: Option<u32>,
    up: bool,
}

/// The RTM_NEWLINK that creates the pair `veth` describes.
fn veth_request(veth: &VethRequest<'_>) -> io::Result<Message> {
    validate_link_name(veth.host)?;
    validate_link_name(veth.peer)?;
    let flags = if veth.up { wire::IFF_UP } else { 0 };
    let mut request = Message::new(wire::RTM_NEWLINK, wire::NLM_F_CREATE | wire::NLM_F_EXCL)
        .ifinfomsg(0, flags, flags)
        .attr_str(wire::IFLA_IFNAME, veth.host);
    if let Some(mtu) = veth.mtu {
        request = request.attr_u32(wire::IFLA_MTU, mtu);
    }
    if let Some(master) = veth.master {
        request = request.attr_u32(wire::IFLA_MASTER, master);
    }
    let info = request.begin_nest(wire::IFLA_LINKINFO);
    request.push_str_in_nest(wire::IFLA_INFO_KIND, "veth");
    let data = request.begin_nest(wire::IFLA_INFO_DATA);
    let peer = request.begin_nest(wire::VETH_INFO_PEER);
    // The peer is configured before the two ends know each other, and a
    // veth without its peer refuses to go up (ENOTCONN): it stays down
    // here and is set up by its own request.
    request.push_ifinfomsg_in_nest(0, 0, 0);
    request.push_str_in_nest(wire::IFLA_IFNAME, veth.peer);
    if let Some(mtu) = veth.mtu {
        request.push_attr_in_nest(wire::IFLA_MTU, &mtu.to_ne_bytes());
    }
    if let Some(mac) = veth.peer_mac {
        request.push_attr_in_nest(wire::IFLA_ADDRESS, &mac);
    }
    if let Some(netns) = veth.peer_netns {
        let fd = u32::try_from(netns.as_raw_fd()).map_err(|_| invalid("bad netns fd".into()))?;
        request.push_attr_in_nest(wire::IFLA_NET_NS_FD, &fd.to_ne_bytes());
    }
    request.end_nest(peer);
    request.end_nest(data);
    request.end_nest(info);
    Ok(request)
}

/// Hairpin mode of bridge port `index` (or `name`), which only
/// RTM_NEWLINK on the existing link reaches (see [`Netlink::set_hairpin`]).
fn hairpin_request(index: u32, name: Option<&str>, on: bool) -> Message {
    let mut request = Message::new(wire::RTM_NEWLINK, 0).ifinfomsg(index, 0, 0);
    if let Some(name) = name {
        request = request.attr_str(wire::IFLA_IFNAME, name);
    }
    let info = request.begin_nest(wire::IFLA_LINKINFO);
    request.push_str_in_nest(wire::IFLA_INFO_SLAVE_KIND, "bridge");
    let data = request.begin_nest(wire::IFLA_INFO_SLAVE_DATA);
    request.push_attr_in_nest(wire::IFLA_BRPORT_MODE, &[u8::from(on)]);
    request.end_nest(data);
    request.end_nest(info);
    request
}

fn address_request(index: u32, addr: Ipv4Addr, prefix_len: u8) -> Message {
    let mut request = Message::new(wire::RTM_NEWADDR, wire::NLM_F_CREATE | wire::NLM_F_EXCL)
        .ifaddrmsg(wire::AF_INET, prefix_len, index)
        .attr(wire::IFA_LOCAL, &addr.octets())
        .attr(wire::IFA_ADDRESS, &addr.octets());
    if let Some(brd) = broadcast(addr, prefix_len) {
        request = request.attr(wire::IFA_BROADCAST, &brd.octets());
    }
    request
}

fn default_route_request(gateway: Ipv4Addr, oif: Option<u32>) -> Message {
    let mut request = Message::new(wire::RTM_NEWROUTE, wire::NLM_F_CREATE | wire::NLM_F_EXCL)
        .rtmsg(wire::AF_INET, wire::RT_TABLE_MAIN, wire::RTPROT_BOOT, wire::RTN_UNICAST)
        .attr(wire::RTA_GATEWAY, &gateway.octets());
    if let Some(oif) = oif {
        request = request.attr_u32(wire::RTA_OIF, oif);
    }
    request
}

/// A veth pair made ahead of a container by
/// [`Netlink::create_spare_veth`], waiting for [`Netlink::plug_spare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareVeth {
    /// The host end's temporary name, in the creating socket's namespace.
    pub host_name: String,
    pub host_index: u32,
    /// The peer's name in its namespace.
    pub peer_name: String,
    pub peer_index: u32,
}

/// What one container's veth pair on one bridge gets, for
/// [`Netlink::plug_spare`] and [`Netlink::plug_new`].
#[derive(Debug, Clone)]
pub struct Plug<'a> {
    /// The bridge's index, in the namespace of the socket doing the plugging.
    pub bridge_index: u32,
    /// The host end's name, unique on the host.
    pub host_name: &'a str,
    /// The name inside the container: "eth0", "eth1" for a second network.
    pub container_name: &'a str,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The default route's gateway; none for a second network or an
    /// internal one.
    pub gateway: Option<Ipv4Addr>,
    /// The container end's MAC; the kernel's random one when none.
    pub mac: Option<[u8; 6]>,
    /// Hairpin mode on the bridge port (see [`Netlink::set_hairpin`]).
    pub hairpin: bool,
}

impl Plug<'_> {
    fn validate(&self) -> io::Result<()> {
        validate_link_name(self.host_name)?;
        validate_link_name(self.container_name)?;
        validate_prefix_len(self.address, self.prefix_len)
    }
}

/// What [`attach_container`] sets up for one container on one network.
#[derive(Debug, Clone)]
pub struct VethPlan<'a> {
    /// The bridge, in the namespace of the socket doing the attaching.
    pub bridge: &'a str,
    /// The host end's name, unique on the host ("veth" + part of the id).
    pub host_name: &'a str,
    /// The container's network namespace, from [`netns::create_named`].
    pub netns: &'a Path,
    /// The name inside the container: "eth0", "eth1" for a second network.
    pub container_name: &'a str,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The container end's MAC (`--mac-address`); random when none.
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
}

/// Connects a container's network namespace to a bridge in the caller's
/// current namespace: a veth pair with the host end in the bridge and up,
/// the other end in the namespace as `container_name` with its address,
/// up, `lo` up and a default route via the gateway.
///
/// Four round trips to the kernel and one short-lived thread: the bridge's
/// index, the pair (created in place, host end already enslaved and up),
/// the container end's index, then one batch for the container end up, its
/// address, `lo` up and the route. On failure the pair is deleted again.
pub fn attach_container(plan: &VethPlan<'_>) -> io::Result<()> {
    Netlink::open()?.attach_container(plan)
}

/// The namespace half of [`attach_container`], through a socket in it.
fn configure_inside(netns: &File, plan: &VethPlan<'_>) -> io::Result<()> {
    let inside = Netlink::open_in(netns)?;
    let name = plan.container_name;
    let index = inside
        .link_index(name)?
        .ok_or_else(|| no_such_link(format!("{name} missing from {}", plan.netns.display())))?;
    let up = Message::new(wire::RTM_SETLINK, 0).ifinfomsg(index, wire::IFF_UP, wire::IFF_UP);
    let lo_up = Message::new(wire::RTM_SETLINK, 0)
        .ifinfomsg(0, wire::IFF_UP, wire::IFF_UP)
        .attr_str(wire::IFLA_IFNAME, "lo");
    let answers = inside.exchange(vec![
        up,
        address_request(index, plan.address, plan.prefix_len),
        lo_up,
        default_route_request(plan.gateway, Some(index)),
    ])?;
    let whats = [
        format!("cannot set {name} up in {}", plan.netns.display()),
        format!("cannot add address {}/{} to {name}", plan.address, plan.prefix_len),
        format!("cannot set lo up in {}", plan.netns.display()),
        format!("cannot add default route via {} on {name}", plan.gateway),
    ];
    for (answer, what) in answers.iter().zip(whats) {
        let status = answer.status();
        if status.errno != 0 {
            return Err(failed(what, status));
        }
    }
    Ok(())
}

fn open_socket() -> io::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        socket::SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    // Bound to a port the kernel picks, and connected to the kernel (port
    // 0): unicasts from any other socket are then refused, so nothing but
    // the kernel can answer our requests.
    socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    socket::connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT_SECS, 0);
    socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &timeout)?;
    // Best effort: error answers then carry the kernel's explanation and no
    // copy of our request. Kernels before 4.12 and 4.2 lack these options.
    let _ = set_netlink_option(fd.as_fd(), wire::NETLINK_EXT_ACK);
    let _ = set_netlink_option(fd.as_fd(), wire::NETLINK_CAP_ACK);
    Ok(fd)
}

fn set_netlink_option(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the pointer and length describe `on`, an int that lives for
    // the call; setsockopt only reads it. The descriptor is borrowed, so open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            wire::SOL_NETLINK,
            option,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn retry_eintr<T>(mut call: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_are_checked_before_anything_is_sent() {
        for good in ["eth0", "kiln0", "veth1a2b3c4", "a", "br-0123456789ab"] {
            assert!(validate_link_name(good).is_ok(), "{good}");
        }
        let err = validate_link_name("kt0123456789abcd").expect_err("16 bytes");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"kt0123456789abcd\""), "{err}");
        assert!(err.to_string().contains("longer than 15 bytes"), "{err}");
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\0b"] {
            let err = validate_link_name(bad).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        // Multi-byte characters count in bytes, as the kernel counts them.
        assert!(validate_link_name("ééééééééé").is_err());
    }

    #[test]
    fn long_names_fail_without_a_socket_round_trip() {
        // A socket that is not netlink: if a request were sent, the error
        // would not be InvalidInput naming the name.
        let (a, _b) = std::os::unix::net::UnixDatagram::pair().expect("pair");
        // Were a request sent, its answer would time out: not InvalidInput.
        a.set_read_timeout(Some(std::time::Duration::from_millis(200))).expect("timeout");
        let nl = Netlink { fd: OwnedFd::from(a), seq: Cell::new(1) };
        let long = "kt-this-is-too-long";
        let checks: Vec<io::Result<()>> = vec![
            nl.create_bridge(long, None).map(drop),
            nl.create_veth(long, "eth0", None, None, None),
            nl.create_veth("kta", long, None, None, None),
            nl.set_master(long, "br"),
            nl.set_up(long),
            nl.rename("a", long),
            nl.add_address(long, Ipv4Addr::new(10, 0, 0, 1), 24),
            nl.delete_link(long),
            nl.link_index(long).map(drop),
        ];
        for result in checks {
            let err = result.expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(long), "{err}");
        }
    }

    #[test]
    fn prefix_lengths_over_32_are_refused() {
        let err = validate_prefix_len(Ipv4Addr::new(10, 1, 2, 3), 33).expect_err("33");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("10.1.2.3"), "{err}");
        assert!(validate_prefix_len(Ipv4Addr::new(10, 1, 2, 3), 32).is_ok());
    }

    #[test]
    fn broadcast_is_the_last_address_of_the_subnet() {
        assert_eq!(
            broadcast(Ipv4Addr::new(10, 213, 4, 1), 24),
            Some(Ipv4Addr::new(10, 213, 4, 255))
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(172, 17, 0, 1), 16),
            Some(Ipv4Addr::new(172, 17, 255, 255))
        );
        assert_eq!(broadcast(Ipv4Addr::new(10, 0, 0, 1), 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(Ipv4Addr::new(10, 0, 0, 1), 31), None);
        assert_eq!(broadcast(Ipv4Addr::new(10, 0, 0, 1), 32), None);
    }

    #[test]
    fn kernel_errors_keep_their_errno_kind_and_name_the_link() {
        let err = failed(
            "cannot create veth pair kta/ktb",
            Status { errno: libc::EEXIST, message: None },
        );
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(errno(&err), Some(libc::EEXIST));
        assert_eq!(err.to_string(), "cannot create veth pair kta/ktb");
        let source = std::error::Error::source(&err).expect("source").to_string();
        assert!(source.contains("os error 17"), "{source}");

        let err = no_such_link("cannot attach a to bridge b: no link b");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(errno(&err), Some(libc::ENODEV));

        let with_text = failed(
            "cannot attach a to bridge b",
            Status { errno: libc::EINVAL, message: Some("Master is not a bridge".into()) },
        );
        assert_eq!(with_text.to_string(), "cannot attach a to bridge b: Master is not a bridge");
        assert_eq!(errno(&io::Error::from_raw_os_error(libc::EPERM)), Some(libc::EPERM));
        assert_eq!(errno(&io::Error::other("plain")), None);
    }

    fn link_payload(index: u32, flags: u32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut msg = Message::new(wire::RTM_NEWLINK, 0).ifinfomsg(index, flags, 0);
        for (kind, data) in attrs {
            msg = msg.attr(*kind, data);
        }
        msg.finish(1)[16..].to_vec()
    }

    #[test]
    fn link_answers_decode_name_kind_master_mtu_mac_and_state() {
        let mut linkinfo = Message::new(0, 0).attr_str(wire::IFLA_INFO_KIND, "veth").finish(0);
        let linkinfo = linkinfo.split_off(16);
        let payload = link_payload(
            7,
            wire::IFF_UP,
            &[
                (wire::IFLA_IFNAME, b"kt1h\0".to_vec()),
                (wire::IFLA_MTU, 1400u32.to_ne_bytes().to_vec()),
                (wire::IFLA_MASTER, 3u32.to_ne_bytes().to_vec()),
                (wire::IFLA_LINK, 2u32.to_ne_bytes().to_vec()),
                (wire::IFLA_ADDRESS, vec![2, 0x42, 0, 0, 0, 9]),
                (wire::IFLA_LINKINFO, linkinfo),
            ],
        );
        let link = parse_link(&payload).expect("link");
        assert_eq!(
            link,
            Link {
                index: 7,
                name: "kt1h".into(),
                kind: Some("veth".into()),
                master: Some(3),
                mtu: Some(1400),
                mac: Some([2, 0x42, 0, 0, 0, 9]),
                is_up: true,
                peer_index: Some(2),
            }
        );
        let down =
            parse_link(&link_payload(1, 0, &[(wire::IFLA_LINK, 1u32.to_ne_bytes().to_vec())]))
                .expect("lo");
        assert!(!down.is_up);
        assert_eq!(down.peer_index, None, "a link pointing at itself has no peer");
        assert!(parse_link(&[0; 6]).is_err());
    }

    #[test]
    fn address_answers_prefer_the_local_address() {
        let payload = Message::new(wire::RTM_NEWADDR, 0)
            .ifaddrmsg(wire::AF_INET, 24, 5)
            .attr(wire::IFA_ADDRESS, &[10, 213, 0, 9])
            .attr(wire::IFA_LOCAL, &[10, 213, 0, 2])
            .finish(1)[16..]
            .to_vec();
        assert_eq!(parse_address(&payload), Some((Ipv4Addr::new(10, 213, 0, 2), 24, 5)));
        let v6 = Message::new(wire::RTM_NEWADDR, 0).ifaddrmsg(10, 64, 5).finish(1)[16..].to_vec();
        assert_eq!(parse_address(&v6), None);
    }

    #[test]
    fn route_answers_keep_the_main_table_only() {
        let main = Message::new(wire::RTM_NEWROUTE, 0)
            .rtmsg(wire::AF_INET, wire::RT_TABLE_MAIN, 2, wire::RTN_UNICAST)
            .attr(wire::RTA_DST, &[192, 168, 16, 0])
            .finish(1);
        let mut main = main[16..].to_vec();
        main[1] = 20; // rtm_dst_len
        assert_eq!(parse_main_route(&main), Some((Ipv4Addr::new(192, 168, 16, 0), 20)));

        let default = Message::new(wire::RTM_NEWROUTE, 0)
            .rtmsg(wire::AF_INET, wire::RT_TABLE_MAIN, 3, wire::RTN_UNICAST)
            .attr(wire::RTA_GATEWAY, &[10, 0, 0, 1])
            .finish(1)[16..]
            .to_vec();
        assert_eq!(parse_main_route(&default), Some((Ipv4Addr::UNSPECIFIED, 0)));

        let local_table = Message::new(wire::RTM_NEWROUTE, 0)
            .rtmsg(wire::AF_INET, 255, 2, 2)
            .attr(wire::RTA_DST, &[127, 0, 0, 1])
            .finish(1)[16..]
            .to_vec();
        assert_eq!(parse_main_route(&local_table), None);

        // A table past 255 is in RTA_TABLE, whatever rtm_table says.
        let big_table = Message::new(wire::RTM_NEWROUTE, 0)
            .rtmsg(wire::AF_INET, wire::RT_TABLE_MAIN, 2, 1)
            .attr_u32(wire::RTA_TABLE, 1000)
            .finish(1)[16..]
            .to_vec();
        assert_eq!(parse_main_route(&big_table), None);
    }

    /// A named namespace in a scratch dir standing for the host, removed
    /// (with its links) on drop, and a tag for link names.
    struct TestHost {
        path: std::path::PathBuf,
        tag: String,
        _dir: kiln_testing::ScratchDir,
    }

    impl TestHost {
        fn new() -> TestHost {
            let dir = kiln_testing::ScratchDir::new().expect("scratch dir");
            let tag = dir.name().trim_start_matches("kiln-t-").chars().take(8).collect();
            let path = dir.path().join("host");
            netns::create_named(&path).expect("host namespace");
            TestHost { path, tag, _dir: dir }
        }

        fn netlink(&self) -> Netlink {
            netns::run_in(&self.path, Netlink::open).expect("netlink in the host namespace")
        }

        /// A bridge with `10.213.7.1/24`, up; its index.
        fn bridge(&self, nl: &Netlink) -> u32 {
            let name = format!("kt{}b", self.tag);
            let index = nl.create_bridge(&name, None).expect("bridge");
            nl.add_address(&name, Ipv4Addr::new(10, 213, 7, 1), 24).expect("gateway");
            nl.set_up(&name).expect("bridge up");
            index
        }
    }

    impl Drop for TestHost {
        fn drop(&mut self) {
            let _ = netns::remove_named(&self.path);
        }
    }

    /// An unnamed namespace with `lo` up and a socket in it.
    fn spare_namespace() -> (File, Netlink) {
        netns::create(|| {
            let inside = Netlink::open()?;
            inside.set_up("lo")?;
            Ok(inside)
        })
        .expect("unnamed namespace")
    }

    #[test]
    fn a_spare_pair_waits_down_and_plugs_in_two_round_trips() {
        kiln_testing::require_privileged!();
        let host = TestHost::new();
        let nl = host.netlink();
        let bridge = host.bridge(&nl);
        let (ns, inside) = spare_namespace();
        let spare_name = format!("kt{}s", host.tag);
        let spare = nl.create_spare_veth(&spare_name, "eth0", ns.as_fd(), &inside).expect("spare");
        let waiting = nl.link(&spare_name).expect("lookup").expect("the host end");
        assert!(
            !waiting.is_up && waiting.master.is_none(),
            "waits down, in no bridge: {waiting:?}"
        );
        assert_eq!(waiting.index, spare.host_index);
        let peer = inside.link("eth0").expect("lookup").expect("the peer");
        assert!(!peer.is_up);
        assert_eq!(peer.index, spare.peer_index);

        // Named later, as a container's namespace is.
        let named = host._dir.path().join("container");
        netns::mount_named(ns.as_fd(), &named).expect("mount");
        let final_name = format!("kt{}h", host.tag);
        let mac = [0x02, 0x42, 10, 213, 7, 2];
        let plug = Plug {
            bridge_index: bridge,
            host_name: &final_name,
            container_name: "eth0",
            address: Ipv4Addr::new(10, 213, 7, 2),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 213, 7, 1)),
            mac: Some(mac),
            hairpin: true,
        };
        nl.plug_spare(&inside, spare, &plug).expect("plug");
        assert!(nl.link(&spare_name).expect("lookup").is_none(), "renamed");
        let plugged = nl.link(&final_name).expect("lookup").expect("the host end");
        assert_eq!((plugged.master, plugged.is_up), (Some(bridge), true));
        // Read back through a socket made by entering the mounted path.
        let container = netns::run_in(&named, Netlink::open).expect("netlink by path");
        let eth0 = container.link("eth0").expect("lookup").expect("eth0");
        assert_eq!((eth0.is_up, eth0.mac), (true, Some(mac)));
        assert!(container.link("lo").expect("lookup").is_some_and(|l| l.is_up));
        assert_eq!(
            container.addresses("eth0").expect("addresses"),
            vec![(Ipv4Addr::new(10, 213, 7, 2), 24)]
        );
        assert!(container.routes().expect("routes").contains(&(Ipv4Addr::UNSPECIFIED, 0)));
        // The gateway answers: the pair carries traffic.
        let listener = netns::run_in(&host.path, || {
            std::net::TcpListener::bind((Ipv4Addr::new(10, 213, 7, 1), 0))
        })
        .expect("listen on the gateway");
        let to = listener.local_addr().expect("addr");
        netns::run_in(&named, || {
            std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(5)).map(drop)
        })
        .expect("connect from the container");

        // A second network's pair, made now, through the same sockets.
        let second = format!("kt{}i", host.tag);
        let plug = Plug {
            host_name: &second,
            container_name: "eth1",
            address: Ipv4Addr::new(10, 213, 7, 3),
            gateway: None,
            mac: None,
            ..plug
        };
        nl.plug_new(&inside, ns.as_fd(), &plug).expect("plug new");
        let eth1 = container.link("eth1").expect("lookup").expect("eth1");
        assert!(eth1.is_up);
        assert_eq!(
            container.addresses("eth1").expect("addresses"),
            vec![(Ipv4Addr::new(10, 213, 7, 3), 24)]
        );
        let defaults = container.routes().expect("routes").iter().filter(|r| r.1 == 0).count();
        assert_eq!(defaults, 1, "no second default route");
        netns::remove_named(&named).expect("unmount");
    }

    #[test]
    fn a_spare_that_cannot_be_plugged_is_deleted() {
        kiln_testing::require_privileged!();
        let host = TestHost::new();
        let nl = host.netlink();
        let (ns, inside) = spare_namespace();
        let spare_name = format!("kt{}s", host.tag);
        let spare = nl.create_spare_veth(&spare_name, "eth0", ns.as_fd(), &inside).expect("spare");
        let final_name = format!("kt{}h", host.tag);
        let plug = Plug {
            bridge_index: u32::MAX,
            host_name: &final_name,
            container_name: "eth0",
            address: Ipv4Addr::new(10, 213, 8, 2),
            prefix_len: 24,
            gateway: None,
            mac: None,
            hairpin: false,
        };
        let err = nl.plug_spare(&inside, spare, &plug).expect_err("no such bridge");
        assert!(err.to_string().contains(&spare_name), "{err}");
        assert!(nl.link(&spare_name).expect("lookup").is_none(), "host end deleted");
        assert!(nl.link(&final_name).expect("lookup").is_none());
        assert!(inside.link("eth0").expect("lookup").is_none(), "peer deleted with it");
    }

    #[test]
    fn veth_request_puts_peer_name_namespace_mac_and_mtu_in_the_peer() {
        // add_veth talks to a socketpair instead of the kernel, which
        // captures the request.
        let (a, b) = std::os::unix::net::UnixDatagram::pair().expect("pair");
        let nl = Netlink { fd: OwnedFd::from(a), seq: Cell::new(100) };
        let ns = File::open("/dev/null").expect("fd");
        // The kernel's acknowledgement, queued before the request is sent.
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&wire::NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&0u16.to_ne_bytes());
        ack.extend_from_slice(&100u32.to_ne_bytes());
        ack.extend_from_slice(&0u32.to_ne_bytes());
        ack.extend_from_slice(&0i32.to_ne_bytes());
        ack.extend_from_slice(&[0u8; 16]);
        b.send(&ack).expect("queue ack");
        nl.add_veth(&VethRequest {
            host: "kth",
            peer: "eth0",
            peer_netns: Some(ns.as_fd()),
            peer_mac: Some([2, 1, 2, 3, 4, 5]),
            mtu: Some(1450),
            master: Some(9),
            up: true,
        })
        .expect("acknowledged");
        let mut sent = vec![0u8; 4096];
        let n = b.recv(&mut sent).expect("request");
        let msgs = wire::split(&sent[..n]).expect("split");
        assert_eq!(msgs.len(), 1);
        let body = msgs[0].payload;
        assert_eq!(msgs[0].kind, wire::RTM_NEWLINK);
        assert_eq!(wire::u32_at(body, 8), Some(wire::IFF_UP), "host end up");
        let attrs = &body[16..];
        assert_eq!(
            wire::attr(attrs, wire::IFLA_IFNAME).map(wire::c_string).as_deref(),
            Some("kth")
        );
        assert_eq!(wire::attr(attrs, wire::IFLA_MASTER).and_then(|d| wire::u32_at(d, 0)), Some(9));
        let info = wire::attr(attrs, wire::IFLA_LINKINFO).expect("linkinfo");
        let data = wire::attr(info, wire::IFLA_INFO_DATA).expect("data");
        let peer = wire::attr(data, wire::VETH_INFO_PEER).expect("peer");
        assert_eq!(wire::u32_at(peer, 8), Some(0), "peer left down: it cannot go up yet");
        let peer_attrs = &peer[16..];
        assert_eq!(
            wire::attr(peer_attrs, wire::IFLA_IFNAME).map(wire::c_string).as_deref(),
            Some("eth0")
        );
        assert_eq!(wire::attr(peer_attrs, wire::IFLA_ADDRESS), Some(&[2u8, 1, 2, 3, 4, 5][..]));
        assert_eq!(
            wire::attr(peer_attrs, wire::IFLA_MTU).and_then(|d| wire::u32_at(d, 0)),
            Some(1450)
        );
        assert_eq!(
            wire::attr(peer_attrs, wire::IFLA_NET_NS_FD).and_then(|d| wire::u32_at(d, 0)),
            Some(ns.as_raw_fd() as u32)
        );
    }
}
