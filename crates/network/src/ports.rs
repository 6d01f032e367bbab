//! Published ports: `-p`/`--publish` specs, `EXPOSE` keys, and finding or
//! holding a host port.
//!
//! The spec grammar is Docker's, `[ip:][hostPort:]containerPort[/proto]`
//! with ranges (`8000-8002:8000-8002`) and bracketed IPv6 addresses
//! (`[::1]:8080:80`), and so are its error messages.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::str::FromStr;

use kiln_types::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

/// A transport protocol a port can be published for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// The name in port keys and nftables rules (`tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortError;

    /// Case-insensitive, as Docker; an empty string means tcp.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(PortError::InvalidProto { proto: s.to_owned() }),
        }
    }
}

/// Why a port spec or key was refused, or a host port cannot be had.
/// Messages are Docker's.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid proto: {proto}")]
    InvalidProto { proto: String },
    #[error("invalid containerPort: {port}")]
    InvalidContainerPort { port: String },
    #[error("invalid hostPort: {port}")]
    InvalidHostPort { port: String },
    #[error("invalid IP address: {ip}")]
    InvalidHostIp { ip: String },
    #[error("no port specified: {spec}<empty>")]
    NoPort { spec: String },
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch { container: String, host: String },
    /// Docker picks one free port from a host range for a single container
    /// port (`-p 8000-8010:80`); Kiln does not yet.
    #[error("a host port range for a single container port is not supported: {spec}")]
    HostRangeUnsupported { spec: String },
    /// A random port was asked for a protocol Kiln cannot probe (sctp).
    #[error("cannot pick a random host port for {proto}: give one (-p HOSTPORT:PORT/{proto})")]
    RandomUnsupported { proto: Proto },
    /// Someone (another program, or another container) holds the port.
    #[error("Bind for {addr} failed: port is already allocated")]
    AlreadyAllocated { addr: SocketAddr },
    /// Binding failed for another reason (the host ip is not on this host).
    #[error("cannot bind {proto} {addr}")]
    Bind {
        proto: Proto,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl HasKind for PortError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidProto { .. }
            | Self::InvalidContainerPort { .. }
            | Self::InvalidHostPort { .. }
            | Self::InvalidHostIp { .. }
            | Self::NoPort { .. }
            | Self::RangeMismatch { .. } => ErrorKind::InvalidArgument,
            Self::HostRangeUnsupported { .. } | Self::RandomUnsupported { .. } => {
                ErrorKind::Unsupported
            }
            Self::AlreadyAllocated { .. } => ErrorKind::Conflict,
            Self::Bind { .. } => ErrorKind::Internal,
        }
    }
}

/// A container port with its protocol: the `80/tcp` keys of `ExposedPorts`
/// and `PortBindings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub port: u16,
    pub proto: Proto,
}

impl FromStr for PortKey {
    type Err = PortError;

    /// `80/tcp`, `53/udp`, or `80` (tcp).
    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let (port, proto) = split_proto(key);
        let proto: Proto = proto.parse()?;
        let port = parse_port(port).filter(|&p| p != 0);
        let port = port.ok_or_else(|| PortError::InvalidContainerPort { port: key.to_owned() })?;
        Ok(PortKey { port, proto })
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

/// `EXPOSE`/`--expose` values: `80`, `53/udp`, `8000-8002/tcp`, one key per port.
pub fn parse_expose(spec: &str) -> Result<Vec<PortKey>, PortError> {
    let (ports, proto) = split_proto(spec);
    let proto: Proto = proto.parse()?;
    let (start, end) = parse_range(ports)
        .ok_or_else(|| PortError::InvalidContainerPort { port: ports.to_owned() })?;
    Ok((start..=end).map(|port| PortKey { port, proto }).collect())
}

/// One host port forwarded to one container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// The host address it answers on; `None` for all of them.
    pub host_ip: Option<IpAddr>,
    /// The host port; `None` for one the engine picks at start
    /// ([`pick_free_port`]).
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortBinding {
    /// The container side, as an API key (`80/tcp`).
    pub fn key(&self) -> PortKey {
        PortKey { port: self.container_port, proto: self.proto }
    }

    /// `-P`: an exposed port on all addresses, at a random host port.
    pub fn random(key: PortKey) -> PortBinding {
        PortBinding { host_ip: None, host_port: None, container_port: key.port, proto: key.proto }
    }

    /// Whether it answers on every host address (`None`, `0.0.0.0`, `::`).
    pub fn is_all_addresses(&self) -> bool {
        self.host_ip.is_none_or(|ip| ip.is_unspecified())
    }

    /// One entry of the API's `HostConfig.PortBindings`: the key (`80/tcp`)
    /// and one `{HostIp, HostPort}` of its list. Empty strings and port `0`
    /// mean "all addresses" and "random", as in Docker.
    pub fn from_api(key: &str, host_ip: &str, host_port: &str) -> Result<PortBinding, PortError> {
        let key: PortKey = key.parse()?;
        let host_ip = parse_host_ip(host_ip)?;
        let host_port = match host_port {
            "" => None,
            port => match parse_range(port) {
                Some((start, end)) if start == end => Some(start).filter(|&p| p != 0),
                Some(_) => {
                    return Err(PortError::HostRangeUnsupported { spec: format!("{port}:{key}") })
                }
                None => return Err(PortError::InvalidHostPort { port: port.to_owned() }),
            },
        };
        Ok(PortBinding { host_ip, host_port, container_port: key.port, proto: key.proto })
    }
}

/// Parses one `-p`/`--publish` value into its bindings, one per container
/// port (ranges expand in order).
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, PortError> {
    let (raw, proto) = split_proto(spec);
    let proto: Proto = proto.parse()?;
    let (ip, host, container) = split_parts(raw);

    let host_ip = parse_host_ip(ip)?;
    if container.is_empty() {
        return Err(PortError::NoPort { spec: raw.to_owned() });
    }
    let (start, end) = parse_range(container)
        .filter(|&(start, _)| start != 0)
        .ok_or_else(|| PortError::InvalidContainerPort { port: container.to_owned() })?;

    let host_ports: Vec<Option<u16>> = if host.is_empty() {
        vec![None; usize::from(end - start) + 1]
    } else {
        let (host_start, host_end) = parse_range(host)
            .ok_or_else(|| PortError::InvalidHostPort { port: host.to_owned() })?;
        match (end - start, host_end - host_start) {
            (a, b) if a == b => {
                (host_start..=host_end).map(|p| Some(p).filter(|&p| p != 0)).collect()
            }
            (0, _) => return Err(PortError::HostRangeUnsupported { spec: spec.to_owned() }),
            _ => {
                return Err(PortError::RangeMismatch {
                    container: container.to_owned(),
                    host: host.to_owned(),
                })
            }
        }
    };
    Ok((start..=end)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortBinding {
            host_ip,
            host_port,
            container_port,
            proto,
        })
        .collect())
}

/// `80/udp` → (`80`, `udp`); no protocol, or an empty one, means tcp.
fn split_proto(spec: &str) -> (&str, &str) {
    match spec.rsplit_once('/') {
        Some((port, proto)) => (port, proto),
        None => (spec, ""),
    }
}

/// `ip:host:container`, where the ip may itself hold colons (IPv6, bracketed
/// or not): the last two fields are the ports, the rest is the ip.
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let mut fields = raw.rsplitn(3, ':');
    let container = fields.next().unwrap_or_default();
    match (fields.next(), fields.next()) {
        (None, _) => ("", "", container),
        (Some(host), None) => ("", host, container),
        (Some(host), Some(ip)) => (ip, host, container),
    }
}

fn parse_host_ip(ip: &str) -> Result<Option<IpAddr>, PortError> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ip);
    bare.parse().map(Some).map_err(|_| PortError::InvalidHostIp { ip: ip.to_owned() })
}

/// A decimal port, `0` to `65535`, digits only.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `80` or `8000-8002` (start not after end).
fn parse_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)),
        Some((start, end)) => {
            let (start, end) = (parse_port(start)?, parse_port(end)?);
            (start <= end).then_some((start, end))
        }
    }
}

/// The address a host-side socket binds for `host_ip` (all addresses when
/// `None`).
fn bind_addr(host_ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// A random free host port for `-p 80` and `-P`: the kernel's choice for a
/// socket bound to port 0 on `host_ip`. Docker uses its own ephemeral
/// range; the kernel's (`ip_local_port_range`) serves the same purpose.
///
/// The port is free when this returns; hold it with [`PortReservation`]
/// from then on so that nothing else takes it.
pub fn pick_free_port(proto: Proto, host_ip: Option<IpAddr>) -> io::Result<u16> {
    let addr = bind_addr(host_ip, 0);
    let bound = match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr()?,
        Proto::Udp => UdpSocket::bind(addr)?.local_addr()?,
        Proto::Sctp => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                PortError::RandomUnsupported { proto },
            ));
        }
    };
    Ok(bound.port())
}

/// Checks, before a container starts, that nothing on the host holds the
/// port: binds it and lets it go again. Sctp ports cannot be probed here
/// and pass.
pub fn check_free(proto: Proto, host_ip: Option<IpAddr>, port: u16) -> Result<(), PortError> {
    PortReservation::bind(proto, host_ip, port).map(drop)
}

/// A host port held by an open socket for as long as a container publishes
/// it.
///
/// Published ports are forwarded by DNAT rules, so no process listens on
/// them; without a holder, another program could bind the port later and
/// then never see its traffic. The socket never receives anything: the
/// DNAT rules take every packet for the port before it reaches a socket.
/// Drop it after the port's rules are gone, not before: in between, a
/// connection waits in the listen queue and is reset, rather than going to
/// a program that took the port in the gap.
#[derive(Debug)]
pub struct PortReservation {
    /// The bound socket; `None` for sctp, which std cannot open: the DNAT
    /// rule alone publishes an sctp port.
    _socket: Option<OwnedFd>,
    addr: SocketAddr,
    proto: Proto,
}

impl PortReservation {
    /// Binds `host_ip:port` (`port` not 0), failing with Docker's "port is
    /// already allocated" when it is taken.
    pub fn bind(
        proto: Proto,
        host_ip: Option<IpAddr>,
        port: u16,
    ) -> Result<PortReservation, PortError> {
        let addr = bind_addr(host_ip, port);
        let socket = match proto {
            Proto::Tcp => TcpListener::bind(addr).map(|s| Some(s.into())),
            Proto::Udp => UdpSocket::bind(addr).map(|s| Some(s.into())),
            Proto::Sctp => Ok(None),
        };
        match socket {
            Ok(socket) => Ok(PortReservation { _socket: socket, addr, proto }),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => {
                Err(PortError::AlreadyAllocated { addr })
            }
            Err(source) => Err(PortError::Bind { proto, addr, source }),
        }
    }

    /// The held address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The held protocol.
    pub fn proto(&self) -> Proto {
        self.proto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        host_ip: Option<&str>,
        host_port: Option<u16>,
        container_port: u16,
        proto: Proto,
    ) -> PortBinding {
        PortBinding {
            host_ip: host_ip.map(|ip| ip.parse().expect("ip")),
            host_port,
            container_port,
            proto,
        }
    }

    #[test]
    fn publish_specs_docker_accepts() {
        use Proto::*;
        let cases: &[(&str, Vec<PortBinding>)] = &[
            ("8080:80", vec![binding(None, Some(8080), 80, Tcp)]),
            ("127.0.0.1:8080:80", vec![binding(Some("127.0.0.1"), Some(8080), 80, Tcp)]),
            ("8080:80/udp", vec![binding(None, Some(8080), 80, Udp)]),
            ("8080:80/UDP", vec![binding(None, Some(8080), 80, Udp)]),
            ("9000:9000/sctp", vec![binding(None, Some(9000), 9000, Sctp)]),
            ("80/", vec![binding(None, None, 80, Tcp)]),
            ("80", vec![binding(None, None, 80, Tcp)]),
            ("0:80", vec![binding(None, None, 80, Tcp)]),
            ("127.0.0.1::80", vec![binding(Some("127.0.0.1"), None, 80, Tcp)]),
            (
                "8000-8002:8000-8002",
                vec![
                    binding(None, Some(8000), 8000, Tcp),
                    binding(None, Some(8001), 8001, Tcp),
                    binding(None, Some(8002), 8002, Tcp),
                ],
            ),
            (
                "9000-9001:80-81/udp",
                vec![binding(None, Some(9000), 80, Udp), binding(None, Some(9001), 81, Udp)],
            ),
            ("8000-8001", vec![binding(None, None, 8000, Tcp), binding(None, None, 8001, Tcp)]),
            ("[::1]:8080:80", vec![binding(Some("::1"), Some(8080), 80, Tcp)]),
            ("[::]::80/udp", vec![binding(Some("::"), None, 80, Udp)]),
            ("::1:8080:80", vec![binding(Some("::1"), Some(8080), 80, Tcp)]),
            ("65535:65535", vec![binding(None, Some(65535), 65535, Tcp)]),
        ];
        for (spec, want) in cases {
            let got = parse_publish(spec).unwrap_or_else(|err| panic!("{spec}: {err}"));
            assert_eq!(&got, want, "{spec}");
        }
    }

    #[test]
    fn publish_specs_docker_refuses_with_its_messages() {
        let cases = [
            ("70000:80", "invalid hostPort: 70000"),
            ("abc", "invalid containerPort: abc"),
            ("8080:abc", "invalid containerPort: abc"),
            ("8080:0", "invalid containerPort: 0"),
            ("8080:80/foo", "invalid proto: foo"),
            ("8080:-80", "invalid containerPort: -80"),
            ("8002-8000", "invalid containerPort: 8002-8000"),
            ("x:80", "invalid hostPort: x"),
            ("127.0.0.1:80", "invalid hostPort: 127.0.0.1"),
            ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
            ("[::1:8080:80", "invalid IP address: [::1"),
            ("8080:", "no port specified: 8080:<empty>"),
            ("127.0.0.1:8080:/udp", "no port specified: 127.0.0.1:8080:<empty>"),
            (
                "8000-8002:8000-8001",
                "invalid ranges specified for container and host Ports: 8000-8001 and 8000-8002",
            ),
            (
                "8000-8010:80",
                "a host port range for a single container port is not supported: 8000-8010:80",
            ),
        ];
        for (spec, want) in cases {
            let err = parse_publish(spec).expect_err(spec);
            assert_eq!(err.to_string(), want, "{spec}");
        }
        assert_eq!(parse_publish("70000:80").unwrap_err().kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn api_port_bindings_build_bindings() {
        let b = PortBinding::from_api("80/tcp", "", "8080").expect("binding");
        assert_eq!(b, binding(None, Some(8080), 80, Proto::Tcp));
        assert_eq!(b.key().to_string(), "80/tcp");
        let b = PortBinding::from_api("53/udp", "127.0.0.1", "").expect("binding");
        assert_eq!(b, binding(Some("127.0.0.1"), None, 53, Proto::Udp));
        assert_eq!(PortBinding::from_api("80", "0.0.0.0", "0").expect("binding").host_port, None);
        assert!(PortBinding::from_api("80", "0.0.0.0", "0").expect("binding").is_all_addresses());
        assert!(!b.is_all_addresses());

        assert_eq!(
            PortBinding::from_api("80/tcp", "", "70000").unwrap_err().to_string(),
            "invalid hostPort: 70000"
        );
        assert_eq!(
            PortBinding::from_api("http", "", "80").unwrap_err().to_string(),
            "invalid containerPort: http"
        );
        assert_eq!(
            PortBinding::from_api("80/tcp", "localhost", "80").unwrap_err().to_string(),
            "invalid IP address: localhost"
        );
        assert_eq!(
            PortBinding::from_api("80/icmp", "", "80").unwrap_err().to_string(),
            "invalid proto: icmp"
        );
    }

    #[test]
    fn expose_keys_parse_and_print() {
        let key: PortKey = "53/udp".parse().expect("key");
        assert_eq!(key, PortKey { port: 53, proto: Proto::Udp });
        assert_eq!(key.to_string(), "53/udp");
        assert_eq!("80".parse::<PortKey>().expect("key").to_string(), "80/tcp");
        assert_eq!(
            parse_expose("8000-8002/udp").expect("expose"),
            (8000..=8002).map(|port| PortKey { port, proto: Proto::Udp }).collect::<Vec<_>>()
        );
        assert_eq!(parse_expose("http").unwrap_err().to_string(), "invalid containerPort: http");
        let all = PortBinding::random("8888/tcp".parse().expect("key"));
        assert_eq!(all, binding(None, None, 8888, Proto::Tcp));
    }

    #[test]
    fn picked_ports_are_free_and_usable() {
        for proto in [Proto::Tcp, Proto::Udp] {
            let port = pick_free_port(proto, Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).expect("pick");
            assert_ne!(port, 0);
            check_free(proto, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), port).expect("free");
        }
        let err = pick_free_port(Proto::Sctp, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn a_port_someone_listens_on_is_already_allocated() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let err = check_free(Proto::Tcp, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), port).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
        // All addresses conflicts with one address.
        let err = check_free(Proto::Tcp, None, port).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Bind for 0.0.0.0:{port} failed: port is already allocated")
        );
    }

    #[test]
    fn a_reservation_holds_the_port_until_dropped() {
        let port = pick_free_port(Proto::Udp, None).expect("pick");
        let held = PortReservation::bind(Proto::Udp, None, port).expect("reserve");
        assert_eq!(held.addr().port(), port);
        assert!(matches!(
            check_free(Proto::Udp, None, port),
            Err(PortError::AlreadyAllocated { .. })
        ));
        drop(held);
        check_free(Proto::Udp, None, port).expect("free again");
    }

    #[test]
    fn binding_an_address_not_on_this_host_says_so() {
        // 192.0.2.0/24 is TEST-NET-1: never assigned to a host.
        let err = check_free(Proto::Tcp, Some("192.0.2.1".parse().expect("ip")), 8080).unwrap_err();
        assert_eq!(err.to_string(), "cannot bind tcp 192.0.2.1:8080");
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
