//! The embedded DNS resolver: containers on user-defined networks resolve
//! each other by name, as with Docker, through `nameserver 127.0.0.11`.
//!
//! The daemon holds, per such container, a UDP socket and a TCP listener
//! bound to `127.0.0.11:53` *inside the container's network namespace*
//! (made there on a short-lived thread, see [`netns::run_in`]): queries
//! never leave the namespace on their way in, the socket they arrive on
//! says which container asks, and no firewall rule is needed. Sockets keep
//! their namespace alive, so they are closed when the container leaves its
//! networks ([`Networks::detach`] calls [`Resolvers::stop`]).
//!
//! A query is answered from the endpoints of the networks the asking
//! container is on *now* (a `network connect` or a stop elsewhere counts at
//! once): container names, their `--network-alias`es, their short ids, each
//! also as `NAME.NETWORK`, and PTR for their addresses. Names of containers
//! on other networks are not known. Everything else is forwarded, as the
//! client sent it, from the daemon's own namespace to the container's
//! `--dns` servers or the host's resolvers (so a host-local cache such as
//! 127.0.0.53 works), unless every network of the container is
//! `--internal`: those get REFUSED, having no way out.
//!
//! The daemon being down means no answers: the socket is gone, clients get
//! "connection refused" at once. A restarted daemon serves running
//! containers again from [`Containers::recover`](crate::containers).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kiln_network::dns::{self, Query, Rcode, Record};
use kiln_sys::netns;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use super::{lock, Networks};

/// Where containers send their queries (Docker's address).
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Seconds a client may cache one of our answers (Docker's 600).
const TTL: u32 = 600;
/// How long one upstream server gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries of one container being forwarded at once; more are dropped
/// (the client retries) instead of opening sockets without bound.
const FORWARDS_PER_CONTAINER: usize = 64;
/// TCP connections of one container served at once.
const TCP_PER_CONTAINER: usize = 16;
/// An idle TCP connection is closed after this.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The resolvers being served, by container id.
#[derive(Debug, Default)]
pub(crate) struct Resolvers {
    served: Mutex<BTreeMap<String, Served>>,
}

/// One container's resolver: its socket tasks, aborted (and the sockets
/// closed) on drop.
#[derive(Debug)]
struct Served {
    tasks: Vec<AbortHandle>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Resolvers {
    /// Stops serving container `id` (nothing if it was not served).
    pub(crate) fn stop(&self, id: &str) {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        drop(served);
    }

    fn insert(&self, id: &str, served: Served) {
        self.served.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), served);
    }
}

/// What a name is to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A container (or alias) on one of its networks, with its addresses.
    Addresses(Vec<Ipv4Addr>),
    /// A container address on one of its networks, by its reverse name.
    Pointer(String),
    /// Not ours to answer; `forward` says whether it may go out.
    Unknown { forward: bool },
}

impl Networks {
    /// Serves the embedded resolver to container `id`, whose namespace is
    /// `netns`, forwarding what it does not know to `upstream` (the
    /// container's `--dns`, empty for the host's resolvers). Must be called
    /// from within the daemon's tokio runtime (a blocking task is fine).
    pub(crate) fn serve_dns(&self, id: &str, netns: &Path, upstream: &[String]) -> io::Result<()> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("no runtime to serve DNS on"))?;
        let (udp, tcp) = netns::run_in(netns, || {
            let addr = SocketAddr::from((RESOLVER_ADDR, 53));
            let udp = std::net::UdpSocket::bind(addr)?;
            udp.set_nonblocking(true)?;
            let tcp = std::net::TcpListener::bind(addr)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })?;
        let upstream = Arc::new(upstream_servers(upstream));
        let context = Arc::new(Context {
            networks: self.me.clone(),
            id: id.to_owned(),
            upstream,
            forwards: Arc::new(Semaphore::new(FORWARDS_PER_CONTAINER)),
        });
        let _guard = handle.enter();
        let udp = Arc::new(tokio::net::UdpSocket::from_std(udp)?);
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let tasks = vec![
            handle.spawn(serve_udp(udp, Arc::clone(&context))).abort_handle(),
            handle.spawn(serve_tcp(tcp, context)).abort_handle(),
        ];
        // A second serve of the same container (a restart) replaces the
        // first, whose namespace is gone.
        self.dns.insert(id, Served { tasks });
        Ok(())
    }

    /// Stops serving container `id`'s resolver.
    pub(crate) fn stop_dns(&self, id: &str) {
        self.dns.stop(id);
    }

    /// Whether containers of network mode `mode` get the embedded resolver:
    /// on user-defined networks, as with Docker.
    pub(crate) fn uses_embedded_dns(&self, mode: &str) -> bool {
        matches!(self.resolve_mode(mode), Ok(Some(n)) if n.is_bridge() && !n.is_predefined())
    }

    /// What `name` (lower-case, no trailing dot) is to container `from`.
    pub(crate) fn dns_lookup(&self, from: &str, name: &str) -> Lookup {
        let inner = lock(&self.inner);
        let mine: Vec<&super::NetworkRecord> = inner
            .networks
            .values()
            .filter(|n| n.is_bridge() && !n.is_predefined() && n.endpoints.contains_key(from))
            .collect();
        if let Some(ip) = dns::reverse_ipv4(name) {
            let text = ip.to_string();
            for network in &mine {
                if let Some(e) = network.endpoints.values().find(|e| e.ip == text) {
                    return Lookup::Pointer(format!("{}.{}", e.container_name, network.name));
                }
            }
        }
        let mut found = Vec::new();
        for network in &mine {
            let suffix = format!(".{}", network.name.to_ascii_lowercase());
            let short = name.strip_suffix(suffix.as_str()).unwrap_or(name);
            for endpoint in network.endpoints.values() {
                if answers_to(endpoint, short) {
                    if let Ok(ip) = endpoint.ip.parse::<Ipv4Addr>() {
                        if !found.contains(&ip) {
                            found.push(ip);
                        }
                    }
                }
            }
        }
        if found.is_empty() {
            Lookup::Unknown { forward: mine.is_empty() || mine.iter().any(|n| !n.internal) }
        } else {
            Lookup::Addresses(found)
        }
    }
}

/// Whether `name` (lower-case) names the endpoint's container: its name,
/// an alias, or its short id.
fn answers_to(endpoint: &super::Endpoint, name: &str) -> bool {
    !name.is_empty()
        && (endpoint.container_name.eq_ignore_ascii_case(name)
            || endpoint.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            || (name.len() == 12 && endpoint.container_id.starts_with(name)))
}

/// Where forwarded queries go: the container's `--dns` servers, else the
/// host's (loopback ones included: the daemon forwards from the host's
/// namespace).
fn upstream_servers(dns: &[String]) -> Vec<SocketAddr> {
    let parse = |text: &str| -> Option<SocketAddr> {
        let text = text.trim();
        let ip = text.split('%').next()?.parse::<IpAddr>().ok()?;
        Some(SocketAddr::new(ip, 53))
    };
    if !dns.is_empty() {
        return dns.iter().filter_map(|d| parse(d)).collect();
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    host.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(parse)
        .collect()
}

/// What a container's resolver needs to answer.
struct Context {
    networks: Weak<Networks>,
    id: String,
    upstream: Arc<Vec<SocketAddr>>,
    forwards: Arc<Semaphore>,
}

async fn serve_udp(socket: Arc<tokio::net::UdpSocket>, context: Arc<Context>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(err) => {
                tracing::debug!(container = %context.id, error = %err, "DNS receive failed");
                continue;
            }
        };
        let msg = buf.get(..n).unwrap_or_default().to_vec();
        let local = match dns::parse_query(&msg) {
            Ok(query) => local_answer(&context, &query, &msg, Transport::Udp),
            Err(_) => Answer::Reply(dns::error_response(&msg, Rcode::FormErr)),
        };
        match local {
            Answer::Reply(Some(reply)) => {
                let _ = socket.send_to(&reply, peer).await;
            }
            Answer::Reply(None) => {}
            Answer::Forward(query) => {
                // Over the limit: dropped, the client asks again.
                let Ok(permit) = Arc::clone(&context.forwards).try_acquire_owned() else {
                    continue;
                };
                let socket = Arc::clone(&socket);
                let context = Arc::clone(&context);
                tokio::spawn(async move {
                    let reply = forward_udp(&msg, &context.upstream)
                        .await
                        .unwrap_or_else(|| servfail(&query, &msg, udp_limit(&query)));
                    let _ = socket.send_to(&reply, peer).await;
                    drop(permit);
                });
            }
        }
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, context: Arc<Context>) {
    let connections = Arc::new(Semaphore::new(TCP_PER_CONTAINER));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else { continue };
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            let _ = serve_tcp_connection(stream, &context).await;
            drop(permit);
        });
    }
}

async fn serve_tcp_connection(
    mut stream: tokio::net::TcpStream,
    context: &Context,
) -> io::Result<()> {
    loop {
        let Ok(msg) = tokio::time::timeout(TCP_IDLE, read_frame(&mut stream)).await else {
            return Ok(());
        };
        let msg = msg?;
        let reply = match dns::parse_query(&msg) {
            Ok(query) => match local_answer(context, &query, &msg, Transport::Tcp) {
                Answer::Reply(reply) => reply,
                Answer::Forward(query) => Some(
                    forward_tcp(&msg, &context.upstream)
                        .await
                        .unwrap_or_else(|| servfail(&query, &msg, 65535)),
                ),
            },
            Err(_) => dns::error_response(&msg, Rcode::FormErr),
        };
        let Some(reply) = reply else { return Ok(()) };
        stream.write_all(&dns::tcp_frame(&reply)).await?;
    }
}

async fn read_frame(stream: &mut tokio::net::TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).await?;
    Ok(msg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

enum Answer {
    /// Send this (or nothing).
    Reply(Option<Vec<u8>>),
    /// Ask upstream; this is the query, for the SERVFAIL if nobody answers.
    Forward(Query),
}

fn udp_limit(query: &Query) -> usize {
    usize::from(query.edns_udp_size.unwrap_or(512))
}

/// SERVFAIL: nobody upstream answered `query` (whose bytes were `msg`).
fn servfail(query: &Query, msg: &[u8], limit: usize) -> Vec<u8> {
    let mut reply = dns::response(query, Rcode::ServFail, &[], 0, limit);
    dns::echo_question_case(&mut reply, msg);
    reply
}

/// Our answer to `query` (whose bytes were `msg`), or that it must be
/// forwarded.
fn local_answer(context: &Context, query: &Query, msg: &[u8], transport: Transport) -> Answer {
    let limit = match transport {
        Transport::Udp => udp_limit(query),
        Transport::Tcp => 65535,
    };
    let reply = |rcode, records: &[Record]| {
        let mut reply = dns::response(query, rcode, records, TTL, limit);
        dns::echo_question_case(&mut reply, msg);
        Answer::Reply(Some(reply))
    };
    if query.opcode != 0 {
        return reply(Rcode::NotImp, &[]);
    }
    let Some(networks) = context.networks.upgrade() else { return Answer::Reply(None) };
    match networks.dns_lookup(&context.id, &query.name) {
        Lookup::Addresses(ips) => {
            let wanted =
                matches!(query.qtype, dns::TYPE_A | dns::TYPE_ANY) && query.qclass == dns::CLASS_IN;
            let records: Vec<Record> =
                if wanted { ips.into_iter().map(Record::A).collect() } else { Vec::new() };
            // A name we know without the record asked for (AAAA: Kiln's
            // networks are IPv4): "no data", not "no such name".
            reply(Rcode::NoError, &records)
        }
        Lookup::Pointer(name) if query.qtype == dns::TYPE_PTR => {
            reply(Rcode::NoError, &[Record::Ptr(name)])
        }
        Lookup::Pointer(_) => reply(Rcode::NoError, &[]),
        Lookup::Unknown { forward: false } => reply(Rcode::Refused, &[]),
        Lookup::Unknown { forward: true } if context.upstream.is_empty() => {
            reply(Rcode::ServFail, &[])
        }
        Lookup::Unknown { forward: true } => Answer::Forward(query.clone()),
    }
}

/// Sends `msg` to each upstream server in turn over UDP until one answers
/// it (same id).
async fn forward_udp(msg: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let bind: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(socket) = tokio::net::UdpSocket::bind(bind).await else { continue };
        if socket.connect(server).await.is_err() || socket.send(msg).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) if n >= 2 && buf.get(..2) == msg.get(..2) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                // Someone else's answer: keep waiting for ours.
                Ok(Ok(_)) => continue,
                Ok(Err(_)) | Err(_) => break,
            }
        }
    }
    None
}

/// [`forward_udp`] over TCP, for clients that asked over TCP (an answer
/// too big for UDP).
async fn forward_tcp(msg: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(server).await?;
            stream.write_all(&dns::tcp_frame(msg)).await?;
            read_frame(&mut stream).await
        };
        if let Ok(Ok(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            return Some(reply);
        }
    }
    None
}

/// The resolv.conf of a container served by the embedded resolver: our
/// address, and the search domains and options of `base` (the host's file
/// with `--dns-search`/`--dns-option` applied), with `ndots:0` as Docker
/// writes it unless `base` sets ndots.
pub(crate) fn embedded_resolv_conf(base: &str) -> String {
    let mut text = format!("nameserver {RESOLVER_ADDR}\n");
    let mut has_ndots = false;
    let mut options: Vec<&str> = Vec::new();
    for line in base.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") => {
                text.push_str(line.trim());
                text.push('\n');
            }
            Some("options") => {
                for option in words {
                    has_ndots |= option.starts_with("ndots:");
                    options.push(option);
                }
            }
            _ => {}
        }
    }
    if !has_ndots {
        options.insert(0, "ndots:0");
    }
    text.push_str(&format!("options {}\n", options.join(" ")));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_points_at_the_resolver_and_keeps_search_and_options() {
        let text =
            embedded_resolv_conf("nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n");
        assert_eq!(text, "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n");
        let text = embedded_resolv_conf("options ndots:2\n");
        assert_eq!(text, "nameserver 127.0.0.11\noptions ndots:2\n");
    }

    #[test]
    fn upstream_servers_are_the_containers_dns_when_given() {
        let servers = upstream_servers(&["10.1.2.3".into(), "bogus".into(), "fe80::1%eth0".into()]);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0], "10.1.2.3:53".parse().expect("addr"));
    }

    #[test]
    fn names_aliases_and_short_ids_answer() {
        let endpoint = super::super::Endpoint {
            container_id: "0123456789abcdef".into(),
            container_name: "Web".into(),
            aliases: vec!["api".into()],
            ..Default::default()
        };
        assert!(answers_to(&endpoint, "web"));
        assert!(answers_to(&endpoint, "api"));
        assert!(answers_to(&endpoint, "0123456789ab"));
        assert!(!answers_to(&endpoint, "0123"));
        assert!(!answers_to(&endpoint, ""));
        assert!(!answers_to(&endpoint, "db"));
    }
}
