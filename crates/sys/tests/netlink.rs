//! Netlink and named network namespaces against the real kernel (root).
//!
//! Nothing here touches the host's own namespace: each test makes a "host"
//! namespace for its bridge and a "container" namespace, both bind-mounted
//! under its own scratch dir, with names `kt<random hex>`. Removing the
//! namespaces on drop (also when a test fails) takes every link in them.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_sys::netlink::{self, Netlink, VethPlan};
use kiln_sys::netns;
use kiln_testing::ScratchDir;

const MAC: [u8; 6] = [0x02, 0x42, 0x0a, 0xd5, 0x00, 0x02];
/// An address on the test's host side outside the container's subnet: a
/// connection to it can only leave the container by its default route.
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 1);

/// A named namespace, removed on drop.
struct Namespace {
    path: PathBuf,
}

impl Namespace {
    fn create(path: PathBuf) -> Namespace {
        netns::create_named(&path)
            .unwrap_or_else(|err| panic!("create netns {}: {err}", path.display()));
        Namespace { path }
    }

    fn file(&self) -> File {
        netns::open(&self.path).expect("open netns")
    }

    fn run<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> T {
        netns::run_in(&self.path, f).expect("run in netns")
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(err) = netns::remove_named(&self.path) {
            eprintln!("warning: cannot remove {}: {err}", self.path.display());
        }
    }
}

/// A test's namespaces, names and scratch dir. Fields drop in order: the
/// namespaces (and their links) before the dir they are mounted in.
struct Fixture {
    host: Namespace,
    container: Namespace,
    tag: String,
    dir: ScratchDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = ScratchDir::new().expect("scratch dir");
        let tag = dir.name().trim_start_matches("kiln-t-").to_owned();
        let host = Namespace::create(dir.path().join("host"));
        let container = Namespace::create(dir.path().join("container"));
        Fixture { host, container, tag, dir }
    }

    /// `kt<10 hex><suffix>`: 13 bytes with a one-letter suffix.
    fn name(&self, suffix: &str) -> String {
        let name = format!("kt{}{suffix}", self.tag);
        assert!(name.len() <= netlink::MAX_LINK_NAME_LEN, "{name}");
        name
    }

    /// A socket in the test's host namespace, made by run_in.
    fn host_netlink(&self) -> Netlink {
        self.host.run(Netlink::open)
    }

    /// A socket in the container namespace, made by open_in.
    fn container_netlink(&self) -> Netlink {
        Netlink::open_in(self.container.file()).expect("netlink in container netns")
    }

    /// A bridge in the host namespace, up, with `gateway/24` and [`OUTSIDE`].
    fn bridge(&self, host: &Netlink, gateway: Ipv4Addr) -> (String, u32) {
        let name = self.name("b");
        let index = host.create_bridge(&name, Some(1450)).expect("create bridge");
        host.set_up(&name).expect("bridge up");
        host.add_address(&name, gateway, 24).expect("gateway address");
        host.add_address(&name, OUTSIDE, 32).expect("outside address");
        (name, index)
    }
}

fn is_mounted(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let path = path.to_str().expect("utf-8 path");
    mountinfo.lines().any(|line| line.split(' ').nth(4) == Some(path))
}

/// Accepts one connection on a listener made in `host`, from a client in
/// `container`: sends "ping", expects "pong". Returns the address the
/// server saw the client come from.
fn round_trip(host: &Namespace, container: &Namespace, to: Ipv4Addr) -> SocketAddr {
    let listener = host.run(|| TcpListener::bind((to, 0)));
    let addr = listener.local_addr().expect("local addr");
    let server = std::thread::spawn(move || -> io::Result<SocketAddr> {
        let (mut conn, peer) = listener.accept()?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut ping = [0u8; 4];
        conn.read_exact(&mut ping)?;
        assert_eq!(&ping, b"ping");
        conn.write_all(b"pong")?;
        Ok(peer)
    });
    let reply = container.run(|| {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"ping")?;
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply)?;
        Ok(reply)
    });
    assert_eq!(reply, b"pong", "reply from {addr}");
    server.join().expect("server thread").expect("server")
}

#[test]
fn bridge_veth_address_and_default_route_carry_tcp_out_of_the_namespace() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let host = fx.host_netlink();
    let gateway = Ipv4Addr::new(10, 213, 1, 1);
    let (bridge, bridge_index) = fx.bridge(&host, gateway);
    assert_eq!(
        host.create_bridge(&bridge, Some(1450)).expect("create again"),
        bridge_index,
        "creating an existing bridge returns it"
    );
    host.add_address(&bridge, gateway, 24).expect("adding an address twice is fine");
    let mut addresses = host.addresses(&bridge).expect("addresses");
    addresses.sort();
    assert_eq!(addresses, vec![(gateway, 24), (OUTSIDE, 32)]);

    let (host_end, peer) = (fx.name("h"), fx.name("p"));
    let netns = fx.container.file();
    host.create_veth(&host_end, &peer, Some(netns.as_fd()), Some(MAC), Some(1450))
        .expect("create veth");
    host.set_master(&host_end, &bridge).expect("enslave");
    host.set_up(&host_end).expect("host end up");
    let link = host.link(&host_end).expect("lookup").expect("host end exists");
    assert_eq!(link.master, Some(bridge_index));
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert_eq!(link.mtu, Some(1450));
    assert!(link.is_up);
    assert_eq!(host.link_index(&peer).expect("lookup"), None, "peer is not on the host side");

    let inside = fx.container_netlink();
    inside.rename(&peer, "eth0").expect("rename");
    assert_eq!(inside.link_index(&peer).expect("lookup"), None, "old name gone");
    let address = Ipv4Addr::new(10, 213, 1, 2);
    inside.add_address("eth0", address, 24).expect("address");
    inside.set_up("eth0").expect("eth0 up");
    inside.set_up("lo").expect("lo up");
    inside.add_default_route(gateway).expect("default route");
    let eth0 = inside.link("eth0").expect("lookup").expect("eth0");
    assert_eq!(eth0.mac, Some(MAC));
    assert_eq!(eth0.mtu, Some(1450));
    assert!(eth0.is_up);
    let routes = inside.routes().expect("routes");
    assert!(routes.contains(&(Ipv4Addr::UNSPECIFIED, 0)), "{routes:?}");
    assert!(routes.contains(&(Ipv4Addr::new(10, 213, 1, 0), 24)), "{routes:?}");
    assert!(
        !host.routes().expect("host routes").contains(&(Ipv4Addr::UNSPECIFIED, 0)),
        "the test host namespace has no default route of its own"
    );

    let seen = round_trip(&fx.host, &fx.container, gateway);
    assert_eq!(seen.ip(), address);
    let seen = round_trip(&fx.host, &fx.container, OUTSIDE);
    assert_eq!(seen.ip(), address, "through the default route");
}

#[test]
fn attach_container_sets_up_eth0_lo_and_route_in_a_few_round_trips() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let host = fx.host_netlink();
    let gateway = Ipv4Addr::new(10, 213, 2, 1);
    let (bridge, bridge_index) = fx.bridge(&host, gateway);
    let host_end = fx.name("h");
    let address = Ipv4Addr::new(10, 213, 2, 2);
    let plan = VethPlan {
        bridge: &bridge,
        host_name: &host_end,
        netns: &fx.container.path,
        container_name: "eth0",
        address,
        prefix_len: 24,
        gateway,
        mac: Some(MAC),
        mtu: Some(1450),
    };
    let started = Instant::now();
    host.attach_container(&plan).expect("attach");
    eprintln!("attach_container (first, cold): {:?}", started.elapsed());

    let link = host.link(&host_end).expect("lookup").expect("host end");
    assert_eq!(link.master, Some(bridge_index));
    assert!(link.is_up);
    let inside = fx.container_netlink();
    let mut links: Vec<_> = inside
        .links()
        .expect("links")
        .into_iter()
        .map(|l| (l.name, l.is_up, if l.kind.is_some() { l.mac } else { None }))
        .collect();
    links.sort();
    assert_eq!(
        links,
        vec![("eth0".to_owned(), true, Some(MAC)), ("lo".to_owned(), true, None)],
        "exactly lo and eth0 in the container, both up"
    );
    assert_eq!(inside.addresses("eth0").expect("addresses"), vec![(address, 24)]);
    assert!(inside.routes().expect("routes").contains(&(Ipv4Addr::UNSPECIFIED, 0)));
    // lo works: a connection to 127.0.0.1 inside the namespace.
    fx.container.run(|| {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        TcpStream::connect(listener.local_addr()?).map(drop)
    });
    assert_eq!(round_trip(&fx.host, &fx.container, OUTSIDE).ip(), address);

    // Steady state, as the engine sees it: a fresh namespace per container
    // and the host socket kept open.
    let mut namespaces = Vec::new();
    let mut creates = Vec::new();
    let mut attaches = Vec::new();
    for i in 0..8u8 {
        let started = Instant::now();
        let ns = Namespace::create(fx.dir.path().join(format!("c{i}")));
        creates.push(started.elapsed());
        let name = fx.name(&format!("{i}"));
        let plan = VethPlan {
            host_name: &name,
            netns: &ns.path,
            address: Ipv4Addr::new(10, 213, 2, 10 + i),
            ..plan.clone()
        };
        let started = Instant::now();
        host.attach_container(&plan).expect("attach");
        attaches.push(started.elapsed());
        namespaces.push(ns);
    }
    creates.sort();
    attaches.sort();
    eprintln!(
        "netns::create_named median {:?}; attach_container median {:?} (min {:?}, max {:?}) over {}",
        creates[creates.len() / 2],
        attaches[attaches.len() / 2],
        attaches[0],
        attaches[attaches.len() - 1],
        attaches.len()
    );
    // The last one is reachable too, so each attach did the whole job.
    let last = namespaces.last().expect("namespaces");
    assert_eq!(round_trip(&fx.host, last, OUTSIDE).ip(), Ipv4Addr::new(10, 213, 2, 17));

    // The free function works from inside the host namespace.
    let extra = Namespace::create(fx.dir.path().join("free"));
    let name = fx.name("f");
    let plan = VethPlan {
        host_name: &name,
        netns: &extra.path,
        address: Ipv4Addr::new(10, 213, 2, 99),
        mac: None,
        ..plan.clone()
    };
    fx.host.run(|| netlink::attach_container(&plan));
    assert_eq!(round_trip(&fx.host, &extra, gateway).ip(), Ipv4Addr::new(10, 213, 2, 99));
}

#[test]
fn attach_container_that_fails_half_way_leaves_no_veth_behind() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let host = fx.host_netlink();
    let (bridge, _) = fx.bridge(&host, Ipv4Addr::new(10, 213, 3, 1));
    let host_end = fx.name("h");
    // A gateway outside the container's subnet: the default route fails
    // after the pair, its address and lo are already in place.
    let plan = VethPlan {
        bridge: &bridge,
        host_name: &host_end,
        netns: &fx.container.path,
        container_name: "eth0",
        address: Ipv4Addr::new(10, 213, 3, 2),
        prefix_len: 24,
        gateway: Ipv4Addr::new(10, 99, 0, 1),
        mac: None,
        mtu: None,
    };
    let err = host.attach_container(&plan).expect_err("unreachable gateway");
    let message = err.to_string();
    assert!(message.contains("default route via 10.99.0.1"), "{message}");
    assert_eq!(host.link_index(&host_end).expect("lookup"), None, "host end removed");
    let inside = fx.container_netlink();
    assert_eq!(inside.link_index("eth0").expect("lookup"), None, "container end removed");

    let missing = fx.name("x");
    let plan = VethPlan { bridge: &missing, ..plan };
    let err = host.attach_container(&plan).expect_err("no such bridge");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(host.link_index(&host_end).expect("lookup"), None);
}

#[test]
fn delete_link_and_remove_named_leave_no_interface_and_no_mount() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let host = fx.host_netlink();
    let (host_end, peer) = (fx.name("h"), fx.name("p"));
    let netns = fx.container.file();
    host.create_veth(&host_end, &peer, Some(netns.as_fd()), None, None).expect("veth");
    let inside = fx.container_netlink();
    assert!(inside.link_index(&peer).expect("lookup").is_some());

    host.delete_link(&host_end).expect("delete");
    assert_eq!(host.link_index(&host_end).expect("lookup"), None);
    assert_eq!(inside.link_index(&peer).expect("lookup"), None, "the peer goes with it");
    host.delete_link(&host_end).expect("deleting an absent link is fine");

    let path = fx.container.path.clone();
    assert!(is_mounted(&path), "{} is a mount before removal", path.display());
    netns::remove_named(&path).expect("remove");
    assert!(!is_mounted(&path), "{} still mounted", path.display());
    assert!(!path.exists());
    netns::remove_named(&path).expect("removing again is fine");
}

#[test]
fn existing_and_overlong_names_are_clear_errors() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let host = fx.host_netlink();
    let (a, b, c) = (fx.name("a"), fx.name("b"), fx.name("c"));
    host.create_veth(&a, &b, None, None, None).expect("veth");

    let err = host.create_veth(&a, &c, None, None, None).expect_err("name taken");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(netlink::errno(&err), Some(libc::EEXIST));
    assert!(err.to_string().contains(&a), "{err}");
    assert_eq!(host.link_index(&c).expect("lookup"), None, "nothing half-made");

    let err = host.create_bridge(&a, None).expect_err("a veth, not a bridge");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("veth"), "{err}");

    let long = format!("{a}-too-long");
    let err = host.create_veth(&long, &c, None, None, None).expect_err("too long");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains(&long), "{err}");

    let nothing = fx.name("n");
    let err = host.set_master(&a, &nothing).expect_err("no bridge");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains(&nothing), "{err}");
    let err = host.add_address(&nothing, Ipv4Addr::new(10, 213, 4, 1), 24).expect_err("no link");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = host.set_up(&nothing).expect_err("no link");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains(&nothing), "{err}");
    let err = host.set_master(&a, &b).expect_err("b is a veth");
    assert!(err.to_string().contains(&a), "{err}");
}

#[test]
fn run_in_and_sysctls_act_on_the_named_namespace_only() {
    kiln_testing::require_privileged!();
    let fx = Fixture::new();
    let ns_inode = |path: &str| std::fs::metadata(path).map(|m| m.ino());
    let ours = ns_inode("/proc/thread-self/ns/net").expect("own netns");
    let inside = fx.container.run(|| ns_inode("/proc/thread-self/ns/net"));
    let mounted = std::fs::metadata(&fx.container.path).expect("netns file").ino();
    assert_eq!(inside, mounted, "run_in entered the namespace mounted at the path");
    assert_ne!(inside, ours);
    assert_ne!(inside, fx.host.run(|| ns_inode("/proc/thread-self/ns/net")));

    let forward = "/proc/sys/net/ipv4/ip_forward";
    let before = std::fs::read_to_string(forward).expect("host ip_forward");
    let value = if before.trim() == "1" { "0" } else { "1" };
    let seen = fx.container.run(|| {
        netns::set_sysctl("net.ipv4.ip_forward", value)?;
        netns::set_sysctl("net/ipv4/conf/lo/route_localnet", "1")?;
        Ok((
            std::fs::read_to_string(forward)?,
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/lo/route_localnet")?,
        ))
    });
    assert_eq!((seen.0.trim(), seen.1.trim()), (value, "1"));
    assert_eq!(std::fs::read_to_string(forward).expect("host ip_forward"), before);
    assert_eq!(ns_inode("/proc/thread-self/ns/net").expect("own netns"), ours, "we never moved");

    let err = fx
        .container
        .run(|| Ok(netns::set_sysctl("net.ipv4.no_such_key", "1")))
        .expect_err("unknown key");
    assert!(err.to_string().contains("no_such_key"), "{err}");
}
