//! What the firewall tests share: a private network namespace per test,
//! commands run in it, and "containers" (namespaces with a veth into a
//! bridge) serving their callers' addresses back.
#![allow(dead_code)] // each test binary uses its own part

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kiln_network::nft::{BridgeNetwork, PublishedPort};
use kiln_network::{Proto, Subnet};
use nix::sched::{setns, unshare, CloneFlags};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").expect("stat own netns").ino()
}

/// Moves the calling thread into a new, empty network namespace, and
/// proves it moved before anything is changed.
pub fn enter_private_netns() {
    let before = netns_inode();
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    assert_ne!(netns_inode(), before, "still in the original network namespace");
    run(&["ip", "link", "set", "lo", "up"]);
}

/// Runs a command (in the calling thread's namespaces), feeding `stdin`,
/// and insists it succeeds; its stdout.
pub fn run_with(argv: &[&str], stdin: &str) -> String {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("feed");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(argv: &[&str]) -> String {
    run_with(argv, "")
}

pub fn subnet(s: &str) -> Subnet {
    s.parse().expect("subnet")
}

pub fn network(bridge: &str, s: &str, internal: bool) -> BridgeNetwork {
    BridgeNetwork::new(bridge, subnet(s), internal).expect("network")
}

pub fn published(
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    container: Ipv4Addr,
    port: u16,
    proto: Proto,
) -> PublishedPort {
    PublishedPort { host_ip, host_port, container_ip: container, container_port: port, proto }
}

/// The address the server saw the connection come from.
pub fn ask_tcp(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut seen = String::new();
    stream.read_to_string(&mut seen).unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    seen
}

/// Whether a TCP connection to `addr` gets through within [`BLOCKED`].
/// A container: its own network namespace with a veth into the bridge,
/// serving its callers' addresses back on tcp/80 and udp/53.
pub struct Container {
    /// Where the container's namespace can be opened while it runs.
    pub netns: String,
    done: mpsc::Sender<()>,
    server: thread::JoinHandle<()>,
}

impl Container {
    pub fn start(veth: &str, ip: &str, gateway: &str) -> Container {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (moved_tx, moved_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let veth_name = veth.to_owned();
        let (veth, ip, gateway) = (veth.to_owned(), ip.to_owned(), gateway.to_owned());
        let server = thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).expect("container netns");
            tid_tx.send(nix::unistd::gettid().as_raw()).expect("send tid");
            moved_rx.recv().expect("veth moved in");
            run(&["ip", "link", "set", "lo", "up"]);
            run(&["ip", "addr", "add", &ip, "dev", &veth]);
            run(&["ip", "link", "set", &veth, "up"]);
            run(&["ip", "route", "add", "default", "via", &gateway]);
            let tcp = TcpListener::bind("0.0.0.0:80").expect("bind tcp/80");
            tcp.set_nonblocking(true).expect("nonblocking");
            let udp = UdpSocket::bind("0.0.0.0:53").expect("bind udp/53");
            udp.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
            ready_tx.send(()).expect("ready");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && done_rx.try_recv().is_err() {
                if let Ok((mut conn, peer)) = tcp.accept() {
                    let _ = conn.write_all(peer.ip().to_string().as_bytes());
                }
                let mut buf = [0u8; 64];
                if let Ok((_, peer)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(peer.ip().to_string().as_bytes(), peer);
                }
            }
        });
        let tid: i32 = tid_rx.recv_timeout(TIMEOUT).expect("container thread started");
        run(&["ip", "link", "set", &veth_name, "netns", &tid.to_string()]);
        moved_tx.send(()).expect("signal");
        ready_rx.recv_timeout(TIMEOUT).expect("container serving");
        let netns = format!("/proc/self/task/{tid}/ns/net");
        Container { netns, done: done_tx, server }
    }

    /// Runs `f` on a thread inside the container's network namespace.
    pub fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(&self.netns).expect("open container netns");
        thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in container")
    }

    pub fn stop(self) {
        let _ = self.done.send(());
        self.server.join().expect("server thread");
    }
}
