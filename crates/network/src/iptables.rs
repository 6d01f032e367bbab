//! Kiln's firewall as iptables chains of its own, for hosts without
//! nftables: the same [`Ruleset`] as [`crate::nft`], the same behaviour.
//!
//! [`render`] turns the plan into four chains, `KILN-PREROUTING`,
//! `KILN-OUTPUT` and `KILN-POSTROUTING` in the `nat` table and
//! `KILN-FORWARD` in `filter`, each reached by one jump from the built-in
//! chain of that name. [`apply`] replaces the chains' contents with one
//! `iptables-restore --noflush` (a chain it declares is emptied and
//! refilled in the same commit, so the kernel never holds half a plan) and
//! adds a jump only where it is missing, so applying again never duplicates
//! one. [`remove`] deletes the jumps and the chains. Nothing else changes:
//! the host's, Docker's and Podman's rules and the built-in chains'
//! policies stay as they are (a built-in chain is never declared to
//! `iptables-restore`, which would reset its policy).
//!
//! # What the chains hold
//! The rules of [`crate::nft`], one for one, but for what iptables imposes:
//! an `ACCEPT` in `KILN-FORWARD` ends the whole `FORWARD` chain of the
//! `filter` table, not just Kiln's, so every accept here names a Kiln
//! bridge (`ct state established,related accept` becomes one rule per
//! bridge, `-o BRIDGE`); and since that accept is final, traffic along an
//! internal network's bridge is accepted too, where the nft table leaves
//! it to the other chains. Traffic that is not Kiln's returns to the
//! built-in chain untouched.
//! - nat `PREROUTING` and `OUTPUT` jump to Kiln's chains for local
//!   destinations (`-m addrtype --dst-type LOCAL`, as Docker does), which
//!   DNAT each published port (only on its host address when it has one).
//! - nat `POSTROUTING`: masquerade of each non-internal subnet out of other
//!   interfaces; for bridges with published ports, of `127.0.0.0/8` sources
//!   and hairpin traffic (`--ctstate DNAT` from the bridge's own subnet).
//! - filter `FORWARD`: internal networks may not forward in or out (only
//!   along their bridge); replies and published ports are accepted into a
//!   bridge; traffic between two Kiln bridges is dropped; a bridge may send
//!   anywhere else; nothing else enters it.
//!
//! Every jump is inserted first in its built-in chain, so Kiln decides
//! about its bridges' traffic before Docker's chains and a `DROP` policy of
//! the same iptables (`iptables -P FORWARD DROP`, as Docker sets it). A
//! program that later inserts its own jump first can still drop Kiln's
//! traffic before it reaches Kiln's chain.
//!
//! # Which iptables
//! Whatever `iptables-save` and `iptables-restore` are on `PATH` (or in
//! `/usr/sbin`, `/sbin`): on Debian that is iptables-nft, whose rules live
//! in the nf_tables tables `ip nat` and `ip filter`; with iptables-legacy
//! they live in the kernel's x_tables. The chains are wherever that
//! iptables puts them, and only that iptables shows them.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::{Command, ExitStatus, Stdio};

use kiln_types::{ErrorKind, HasKind};

use crate::nft::{BridgeNetwork, Ruleset};

/// The tables Kiln's chains live in, in the order they are written.
const TABLES: [&str; 2] = ["nat", "filter"];

/// One of Kiln's chains and the jump to it from a built-in chain.
struct Chain {
    table: &'static str,
    name: &'static str,
    builtin: &'static str,
    /// The jump's matches, as iptables-save prints them (with a trailing
    /// space), before `-j NAME`.
    jump_matches: &'static str,
}

/// Kiln's chains, in the order they are written.
const CHAINS: [Chain; 4] = [
    Chain {
        table: "nat",
        name: "KILN-PREROUTING",
        builtin: "PREROUTING",
        jump_matches: "-m addrtype --dst-type LOCAL ",
    },
    Chain {
        table: "nat",
        name: "KILN-OUTPUT",
        builtin: "OUTPUT",
        jump_matches: "-m addrtype --dst-type LOCAL ",
    },
    Chain { table: "nat", name: "KILN-POSTROUTING", builtin: "POSTROUTING", jump_matches: "" },
    Chain { table: "filter", name: "KILN-FORWARD", builtin: "FORWARD", jump_matches: "" },
];

impl Chain {
    /// The jump rule's spec (what follows `-A BUILTIN `).
    fn jump(&self) -> String {
        format!("{}-j {}", self.jump_matches, self.name)
    }

    fn rules(&self, ruleset: &Ruleset) -> Vec<String> {
        match self.builtin {
            "PREROUTING" | "OUTPUT" => dnat_rules(ruleset),
            "POSTROUTING" => snat_rules(ruleset),
            _ => forward_rules(ruleset),
        }
    }
}

fn is_kiln_chain(name: &str) -> bool {
    CHAINS.iter().any(|c| c.name == name)
}

/// The programs run, and where to look for each when `PATH` lacks it (a
/// daemon started with a minimal environment may not have the sbin
/// directories on `PATH`).
#[derive(Debug, Clone, Copy)]
struct Program {
    name: &'static str,
    candidates: &'static [&'static str],
}

const SAVE: Program = Program {
    name: "iptables-save",
    candidates: &["iptables-save", "/usr/sbin/iptables-save", "/sbin/iptables-save"],
};
const RESTORE: Program = Program {
    name: "iptables-restore",
    candidates: &["iptables-restore", "/usr/sbin/iptables-restore", "/sbin/iptables-restore"],
};

/// Seconds `iptables-restore` waits for the xtables lock another program
/// holds (iptables-legacy; iptables-nft takes no lock and ignores it).
const LOCK_WAIT_SECONDS: &str = "10";

/// Why Kiln's chains could not be applied, listed or removed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// `iptables-save` or `iptables-restore` is not installed.
    #[error("{program} not found: install iptables (apt-get install iptables)")]
    NotInstalled { program: &'static str },
    /// The program is there but could not be run or fed.
    #[error("cannot run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    /// The program failed; `stderr` is the first line of what it said.
    #[error("{program} failed ({status}) on Kiln's chains: {stderr}")]
    Rejected { program: &'static str, status: ExitStatus, stderr: String },
}

impl HasKind for IptablesError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotInstalled { .. } => ErrorKind::Unsupported,
            Self::Spawn { .. } | Self::Rejected { .. } => ErrorKind::Internal,
        }
    }
}

/// Kiln's chains for `ruleset`, in the form [`list`] prints them: per table
/// (`nat`, then `filter`) the chains, the jumps to them, their rules.
pub fn render(ruleset: &Ruleset) -> String {
    let mut out = String::new();
    for table in TABLES {
        let chains: Vec<&Chain> = CHAINS.iter().filter(|c| c.table == table).collect();
        let _ = writeln!(out, "*{table}");
        for chain in &chains {
            let _ = writeln!(out, ":{} - [0:0]", chain.name);
        }
        for chain in &chains {
            let _ = writeln!(out, "-A {} {}", chain.builtin, chain.jump());
        }
        for chain in &chains {
            for rule in chain.rules(ruleset) {
                let _ = writeln!(out, "-A {} {rule}", chain.name);
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// The input of `iptables-restore --noflush` that makes Kiln's chains hold
/// `ruleset`, given what `iptables-save` shows now (`current`): each chain
/// declared (created, or emptied) and filled; the jump inserted first in its
/// built-in chain when it is missing, and other jumps to Kiln's chains (a
/// duplicate, an older form) deleted. One commit per table.
pub fn restore_script(ruleset: &Ruleset, current: &str) -> String {
    let saved = Saved::parse(current);
    let mut out = String::new();
    for table in TABLES {
        let chains: Vec<&Chain> = CHAINS.iter().filter(|c| c.table == table).collect();
        let _ = writeln!(out, "*{table}");
        for chain in &chains {
            let _ = writeln!(out, ":{} - [0:0]", chain.name);
        }
        for chain in &chains {
            for rule in chain.rules(ruleset) {
                let _ = writeln!(out, "-A {} {rule}", chain.name);
            }
        }
        for chain in &chains {
            let wanted = chain.jump();
            let mut kept = false;
            for (from, spec) in saved.jumps(table, chain.name) {
                if !kept && from == chain.builtin && spec == wanted {
                    kept = true;
                } else {
                    let _ = writeln!(out, "-D {from} {spec}");
                }
            }
            if !kept {
                let _ = writeln!(out, "-I {} 1 {wanted}", chain.builtin);
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// The input of `iptables-restore --noflush` that deletes every jump to
/// Kiln's chains and the chains, given what `iptables-save` shows now;
/// `None` when there is nothing of Kiln's.
pub fn removal_script(current: &str) -> Option<String> {
    let saved = Saved::parse(current);
    let mut out = String::new();
    for table in TABLES {
        let mut lines = Vec::new();
        for chain in CHAINS.iter().filter(|c| c.table == table) {
            for (from, spec) in saved.jumps(table, chain.name) {
                lines.push(format!("-D {from} {spec}"));
            }
        }
        for chain in CHAINS.iter().filter(|c| c.table == table) {
            if saved.has_chain(table, chain.name) {
                lines.push(format!("-F {}", chain.name));
                lines.push(format!("-X {}", chain.name));
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(out, "*{table}\n{}\nCOMMIT", lines.join("\n"));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Kiln's chains and the jumps to them as `iptables-save` shows them now, in
/// the form of [`render`], or `None` when there are none: for tests, and
/// for checks after a daemon restart.
pub fn list() -> Result<Option<String>, IptablesError> {
    Ok(kiln_chains(&run(SAVE, &[], None)?))
}

/// Kiln's part of the output of `iptables-save`, as [`list`] returns it.
pub fn kiln_chains(saved: &str) -> Option<String> {
    Saved::parse(saved).render_kiln()
}

/// Makes Kiln's chains hold `ruleset`, each table in one commit, and adds
/// the jumps to them that are missing.
pub fn apply(ruleset: &Ruleset) -> Result<(), IptablesError> {
    tracing::debug!(
        networks = ruleset.networks.len(),
        ports = ruleset.ports.len(),
        "applying iptables ruleset"
    );
    let current = run(SAVE, &[], None)?;
    let script = restore_script(ruleset, &current);
    run(RESTORE, &["-w", LOCK_WAIT_SECONDS, "--noflush"], Some(&script)).map(drop)
}

/// Deletes the jumps to Kiln's chains and the chains; none there is fine.
pub fn remove() -> Result<(), IptablesError> {
    let current = run(SAVE, &[], None)?;
    match removal_script(&current) {
        Some(script) => {
            run(RESTORE, &["-w", LOCK_WAIT_SECONDS, "--noflush"], Some(&script)).map(drop)
        }
        None => Ok(()),
    }
}

/// What `iptables-save` printed, reduced to what concerns Kiln: per table,
/// the chains declared and every rule.
#[derive(Debug, Default)]
struct Saved {
    /// (table, chain) for every chain declared.
    chains: Vec<(String, String)>,
    /// (table, chain, spec) for every rule, in order.
    rules: Vec<(String, String, String)>,
}

impl Saved {
    fn parse(text: &str) -> Saved {
        let mut saved = Saved::default();
        let mut table = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                table = name.to_owned();
            } else if let Some(decl) = line.strip_prefix(':') {
                if let Some(chain) = decl.split_whitespace().next() {
                    saved.chains.push((table.clone(), chain.to_owned()));
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                if let Some((chain, spec)) = rule.split_once(' ') {
                    saved.rules.push((table.clone(), chain.to_owned(), spec.trim().to_owned()));
                }
            }
        }
        saved
    }

    fn has_chain(&self, table: &str, chain: &str) -> bool {
        self.chains.iter().any(|(t, c)| t == table && c == chain)
    }

    /// Rules of other chains in `table` that jump to `chain`: (their chain,
    /// their spec).
    fn jumps<'a>(
        &'a self,
        table: &'a str,
        chain: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.rules
            .iter()
            .filter(move |(t, from, spec)| {
                t == table && !is_kiln_chain(from) && target(spec) == Some(chain)
            })
            .map(|(_, from, spec)| (from.as_str(), spec.as_str()))
    }

    /// Kiln's part in the form of [`render`].
    fn render_kiln(&self) -> Option<String> {
        let mut out = String::new();
        for table in TABLES {
            let chains: Vec<&Chain> = CHAINS.iter().filter(|c| c.table == table).collect();
            let mut lines = Vec::new();
            for chain in chains.iter().filter(|c| self.has_chain(table, c.name)) {
                lines.push(format!(":{} - [0:0]", chain.name));
            }
            for chain in &chains {
                for (from, spec) in self.jumps(table, chain.name) {
                    lines.push(format!("-A {from} {spec}"));
                }
            }
            for chain in &chains {
                for (_, _, spec) in
                    self.rules.iter().filter(|(t, c, _)| t == table && c == chain.name)
                {
                    lines.push(format!("-A {} {spec}", chain.name));
                }
            }
            if !lines.is_empty() {
                let _ = writeln!(out, "*{table}\n{}\nCOMMIT", lines.join("\n"));
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// A rule's target: the word after its last `-j` (matches, comments
/// included, come before the target in iptables-save's output).
fn target(spec: &str) -> Option<&str> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let at = words.iter().rposition(|w| *w == "-j")?;
    words.get(at + 1).copied()
}

fn has_ports_into(ruleset: &Ruleset, network: &BridgeNetwork) -> bool {
    ruleset.ports.iter().any(|p| network.subnet().contains(p.container_ip))
}

fn dnat_rules(ruleset: &Ruleset) -> Vec<String> {
    ruleset
        .ports
        .iter()
        .map(|p| {
            // Without a host address the jump's `--dst-type LOCAL` is the
            // nft rule's `fib daddr type local`.
            let daddr = match p.host_ip.filter(|ip| !ip.is_unspecified()) {
                Some(ip) => format!("-d {ip}/32 "),
                None => String::new(),
            };
            format!(
                "{daddr}-p {proto} -m {proto} --dport {} -j DNAT --to-destination {}:{}",
                p.host_port,
                p.container_ip,
                p.container_port,
                proto = p.proto
            )
        })
        .collect()
}

fn snat_rules(ruleset: &Ruleset) -> Vec<String> {
    let mut rules = Vec::new();
    for n in ruleset.networks.iter().filter(|n| !n.is_internal()) {
        let (bridge, subnet) = (n.bridge(), n.subnet());
        rules.push(format!("-s {subnet} ! -o {bridge} -j MASQUERADE"));
        if has_ports_into(ruleset, n) {
            rules.push(format!("-s 127.0.0.0/8 -o {bridge} -j MASQUERADE"));
            rules
                .push(format!("-s {subnet} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE"));
        }
    }
    rules
}

fn forward_rules(ruleset: &Ruleset) -> Vec<String> {
    let mut rules = Vec::new();
    // Internal networks before any accept, so that no later rule (a
    // published port of another network) lets their traffic out; along
    // their own bridge (with br_netfilter) they talk freely.
    for n in ruleset.networks.iter().filter(|n| n.is_internal()) {
        let bridge = n.bridge();
        rules.push(format!("-i {bridge} ! -o {bridge} -j DROP"));
        rules.push(format!("! -i {bridge} -o {bridge} -j DROP"));
        rules.push(format!("-i {bridge} -o {bridge} -j ACCEPT"));
    }
    let open: Vec<&BridgeNetwork> = ruleset.networks.iter().filter(|n| !n.is_internal()).collect();
    // Replies, and published ports from anywhere (other Kiln networks
    // included, as from another host); before the isolation drops, which
    // would otherwise stop the answers of a published port to a container
    // of another network.
    for n in &open {
        rules.push(format!(
            "-o {} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            n.bridge()
        ));
    }
    for n in &open {
        rules.push(format!("-o {} -m conntrack --ctstate DNAT -j ACCEPT", n.bridge()));
    }
    for n in &open {
        for other in ruleset.networks.iter().filter(|o| o.bridge() != n.bridge()) {
            rules.push(format!("-i {} -o {} -j DROP", n.bridge(), other.bridge()));
        }
    }
    for n in &open {
        rules.push(format!("-i {} -j ACCEPT", n.bridge()));
        rules.push(format!("-o {} -j DROP", n.bridge()));
    }
    rules
}

/// Runs `program ARGS`, feeding `stdin` if given; returns stdout.
fn run(program: Program, args: &[&str], stdin: Option<&str>) -> Result<String, IptablesError> {
    let mut child = spawn(program, args, stdin.is_some())?;
    if let (Some(script), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // iptables-restore reads its whole input before it writes anything,
        // so writing all of it first cannot deadlock on a full stderr pipe.
        pipe.write_all(script.as_bytes())
            .map_err(|source| IptablesError::Spawn { program: program.name, source })?;
    }
    let output = child
        .wait_with_output()
        .map_err(|source| IptablesError::Spawn { program: program.name, source })?;
    if !output.status.success() {
        let stderr = first_line(&String::from_utf8_lossy(&output.stderr));
        return Err(IptablesError::Rejected {
            program: program.name,
            status: output.status,
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The line of a failing program's stderr that says why: the first one that
/// is not a warning, else the first.
fn first_line(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.clone().next().unwrap_or("(no message)");
    lines
        .find(|l| !l.to_ascii_lowercase().trim_start_matches('#').trim().starts_with("warning"))
        .unwrap_or(first)
        .to_owned()
}

fn spawn(
    program: Program,
    args: &[&str],
    with_stdin: bool,
) -> Result<std::process::Child, IptablesError> {
    for candidate in program.candidates {
        let spawned = Command::new(candidate)
            .args(args)
            .stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(child) => return Ok(child),
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(IptablesError::Spawn { program: program.name, source }),
        }
    }
    Err(IptablesError::NotInstalled { program: program.name })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::nft::PublishedPort;
    use crate::ports::Proto;

    fn net(bridge: &str, subnet: &str, internal: bool) -> BridgeNetwork {
        BridgeNetwork::new(bridge, subnet.parse().expect("subnet"), internal).expect("network")
    }

    fn port(
        host_ip: Option<Ipv4Addr>,
        host_port: u16,
        container: &str,
        proto: Proto,
    ) -> PublishedPort {
        PublishedPort {
            host_ip,
            host_port,
            container_ip: container.parse().expect("ip"),
            container_port: 80,
            proto,
        }
    }

    /// The rules of one of Kiln's chains, in order.
    fn chain(text: &str, name: &str) -> Vec<String> {
        let prefix = format!("-A {name} ");
        text.lines().filter_map(|l| l.strip_prefix(&prefix)).map(str::to_owned).collect()
    }

    /// A host's rules: Docker's jumps and chains, a rule of the admin's.
    const HOST: &str = "\
# Generated by iptables-nft-save v1.8.9 (nf_tables) on Sun Nov 29 10:00:00 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [12:720]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -s 192.0.2.0/24 -m comment --comment \"keep -j KILN-FORWARD out\" -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
";

    #[test]
    fn one_network_without_ports_masquerades_its_subnet_and_isolates_nothing() {
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        assert_eq!(
            render(&rules),
            "*nat
:KILN-PREROUTING - [0:0]
:KILN-OUTPUT - [0:0]
:KILN-POSTROUTING - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j KILN-PREROUTING
-A OUTPUT -m addrtype --dst-type LOCAL -j KILN-OUTPUT
-A POSTROUTING -j KILN-POSTROUTING
-A KILN-POSTROUTING -s 172.17.0.0/16 ! -o kiln0 -j MASQUERADE
COMMIT
*filter
:KILN-FORWARD - [0:0]
-A FORWARD -j KILN-FORWARD
-A KILN-FORWARD -o kiln0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KILN-FORWARD -o kiln0 -m conntrack --ctstate DNAT -j ACCEPT
-A KILN-FORWARD -i kiln0 -j ACCEPT
-A KILN-FORWARD -o kiln0 -j DROP
COMMIT
"
        );
    }

    #[test]
    fn every_accept_names_a_kiln_bridge() {
        // An ACCEPT in KILN-FORWARD ends the host's whole FORWARD chain, so
        // none may match traffic that is not Kiln's.
        let rules = Ruleset {
            networks: vec![
                net("kiln0", "172.17.0.0/16", false),
                net("br-int", "172.19.0.0/16", true),
            ],
            ports: vec![port(None, 8080, "172.17.0.2", Proto::Tcp)],
        };
        let forward = chain(&render(&rules), "KILN-FORWARD");
        for rule in forward.iter().filter(|r| r.ends_with("-j ACCEPT")) {
            assert!(
                rule.starts_with("-o kiln0 ")
                    || rule.starts_with("-i kiln0 ")
                    || rule == "-i br-int -o br-int -j ACCEPT",
                "{rule}"
            );
        }
    }

    #[test]
    fn internal_network_is_not_masqueraded_and_cannot_forward_in_or_out() {
        let rules =
            Ruleset { networks: vec![net("kiln-int", "10.50.0.0/24", true)], ports: vec![] };
        let text = render(&rules);
        assert!(chain(&text, "KILN-POSTROUTING").is_empty(), "{text}");
        assert_eq!(
            chain(&text, "KILN-FORWARD"),
            [
                "-i kiln-int ! -o kiln-int -j DROP",
                "! -i kiln-int -o kiln-int -j DROP",
                "-i kiln-int -o kiln-int -j ACCEPT",
            ]
        );
    }

    #[test]
    fn two_networks_are_isolated_from_each_other_but_answer_published_ports() {
        let rules = Ruleset {
            networks: vec![
                net("kiln0", "172.17.0.0/16", false),
                net("br-a1", "172.18.0.0/16", false),
                net("br-int", "172.19.0.0/16", true),
            ],
            ports: vec![],
        };
        let forward = chain(&render(&rules), "KILN-FORWARD");
        let at = |rule: &str| {
            forward.iter().position(|r| r == rule).unwrap_or_else(|| panic!("{rule}: {forward:#?}"))
        };
        let isolation = [
            at("-i kiln0 -o br-a1 -j DROP"),
            at("-i kiln0 -o br-int -j DROP"),
            at("-i br-a1 -o kiln0 -j DROP"),
            at("-i br-a1 -o br-int -j DROP"),
        ];
        let internal = at("-i br-int ! -o br-int -j DROP").max(at("! -i br-int -o br-int -j DROP"));
        let replies = at("-o br-a1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        let published = at("-o kiln0 -m conntrack --ctstate DNAT -j ACCEPT");
        let first_accept_out = at("-i kiln0 -j ACCEPT");
        for drop in isolation {
            assert!(replies < drop && published < drop && drop < first_accept_out, "{forward:#?}");
        }
        assert!(internal < replies, "internal drops first: {forward:#?}");
        assert_eq!(
            chain(&render(&rules), "KILN-POSTROUTING"),
            [
                "-s 172.17.0.0/16 ! -o kiln0 -j MASQUERADE",
                "-s 172.18.0.0/16 ! -o br-a1 -j MASQUERADE"
            ]
        );
    }

    #[test]
    fn published_ports_are_dnated_on_all_or_one_host_address_from_outside_and_the_host() {
        let rules = Ruleset {
            networks: vec![
                net("kiln0", "172.17.0.0/16", false),
                net("br-b", "172.18.0.0/16", false),
            ],
            ports: vec![
                port(None, 8080, "172.18.0.5", Proto::Tcp),
                port(Some(Ipv4Addr::LOCALHOST), 5353, "172.18.0.6", Proto::Udp),
                port(Some(Ipv4Addr::UNSPECIFIED), 9000, "172.18.0.6", Proto::Sctp),
            ],
        };
        let text = render(&rules);
        let want = [
            "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.5:80",
            "-d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.6:80",
            "-p sctp -m sctp --dport 9000 -j DNAT --to-destination 172.18.0.6:80",
        ];
        assert_eq!(chain(&text, "KILN-PREROUTING"), want);
        assert_eq!(chain(&text, "KILN-OUTPUT"), want);
        // Localhost and hairpin masquerade only towards the bridge with ports.
        assert_eq!(
            chain(&text, "KILN-POSTROUTING"),
            [
                "-s 172.17.0.0/16 ! -o kiln0 -j MASQUERADE",
                "-s 172.18.0.0/16 ! -o br-b -j MASQUERADE",
                "-s 127.0.0.0/8 -o br-b -j MASQUERADE",
                "-s 172.18.0.0/16 -o br-b -m conntrack --ctstate DNAT -j MASQUERADE",
            ]
        );
    }

    #[test]
    fn first_apply_declares_the_chains_and_inserts_each_jump_first() {
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        let script = restore_script(&rules, HOST);
        assert_eq!(
            script,
            "*nat
:KILN-PREROUTING - [0:0]
:KILN-OUTPUT - [0:0]
:KILN-POSTROUTING - [0:0]
-A KILN-POSTROUTING -s 172.17.0.0/16 ! -o kiln0 -j MASQUERADE
-I PREROUTING 1 -m addrtype --dst-type LOCAL -j KILN-PREROUTING
-I OUTPUT 1 -m addrtype --dst-type LOCAL -j KILN-OUTPUT
-I POSTROUTING 1 -j KILN-POSTROUTING
COMMIT
*filter
:KILN-FORWARD - [0:0]
-A KILN-FORWARD -o kiln0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KILN-FORWARD -o kiln0 -m conntrack --ctstate DNAT -j ACCEPT
-A KILN-FORWARD -i kiln0 -j ACCEPT
-A KILN-FORWARD -o kiln0 -j DROP
-I FORWARD 1 -j KILN-FORWARD
COMMIT
"
        );
        // Only Kiln's chains are declared: a built-in chain declared with
        // --noflush would have its policy reset, another chain emptied.
        for line in script.lines().filter(|l| l.starts_with(':')) {
            assert!(line.starts_with(":KILN-"), "{line}");
        }
        assert!(!script.contains("DOCKER"), "{script}");
    }

    #[test]
    fn applying_again_keeps_the_jumps_and_drops_duplicates_and_old_forms() {
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        let mut host = HOST.to_owned();
        // What the first apply left, plus a duplicate and an older form.
        host.push_str(
            "*nat
:KILN-PREROUTING - [0:0]
:KILN-OUTPUT - [0:0]
:KILN-POSTROUTING - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j KILN-PREROUTING
-A OUTPUT -m addrtype --dst-type LOCAL -j KILN-OUTPUT
-A OUTPUT -j KILN-OUTPUT
-A POSTROUTING -j KILN-POSTROUTING
-A KILN-PREROUTING -p tcp -m tcp --dport 1 -j DNAT --to-destination 172.17.0.9:1
COMMIT
*filter
:KILN-FORWARD - [0:0]
-A FORWARD -j KILN-FORWARD
-A FORWARD -j KILN-FORWARD
COMMIT
",
        );
        let script = restore_script(&rules, &host);
        let changes: Vec<&str> =
            script.lines().filter(|l| l.starts_with("-I") || l.starts_with("-D")).collect();
        assert_eq!(changes, ["-D OUTPUT -j KILN-OUTPUT", "-D FORWARD -j KILN-FORWARD"]);
        // The chains are declared again, which empties them first.
        assert_eq!(script.matches(":KILN-").count(), 4);
        assert!(!script.contains("--dport 1 "), "{script}");
    }

    #[test]
    fn removal_deletes_only_kilns_jumps_and_chains() {
        assert_eq!(removal_script(HOST), None, "nothing of Kiln's: nothing to run");
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        let mut host = HOST.to_owned();
        host.push_str(&render(&rules));
        let script = removal_script(&host).expect("a script");
        assert_eq!(
            script,
            "*nat
-D PREROUTING -m addrtype --dst-type LOCAL -j KILN-PREROUTING
-D OUTPUT -m addrtype --dst-type LOCAL -j KILN-OUTPUT
-D POSTROUTING -j KILN-POSTROUTING
-F KILN-PREROUTING
-X KILN-PREROUTING
-F KILN-OUTPUT
-X KILN-OUTPUT
-F KILN-POSTROUTING
-X KILN-POSTROUTING
COMMIT
*filter
-D FORWARD -j KILN-FORWARD
-F KILN-FORWARD
-X KILN-FORWARD
COMMIT
"
        );
    }

    #[test]
    fn listing_picks_kilns_part_out_of_iptables_save_in_render_order() {
        assert_eq!(Saved::parse(HOST).render_kiln(), None);
        let rules = Ruleset {
            networks: vec![net("kiln0", "172.17.0.0/16", false)],
            ports: vec![port(None, 8080, "172.17.0.2", Proto::Tcp)],
        };
        // iptables-save sorts chains by name and may print filter first.
        let mut saved = HOST.to_owned();
        let rendered = render(&rules);
        let (nat, filter) = rendered.split_once("COMMIT\n").expect("two tables");
        saved.push_str(filter);
        // Declarations first, then each chain's rules, chains by name, a
        // chain's rules in their order.
        let mut nat_lines: Vec<&str> = nat.lines().collect();
        nat_lines[1..].sort_by_key(|l| match l.strip_prefix(':') {
            Some(declared) => (false, declared),
            None => (true, l.split(' ').nth(1).unwrap_or(l)),
        });
        saved.push_str(&nat_lines.join("\n"));
        saved.push_str("\nCOMMIT\n# Completed on Sun Nov 29 10:00:00 2026\n");
        assert_eq!(Saved::parse(&saved).render_kiln().as_deref(), Some(rendered.as_str()));
    }

    #[test]
    fn a_rule_target_is_the_word_after_the_last_jump() {
        assert_eq!(target("-s 10.0.0.0/8 -j KILN-FORWARD"), Some("KILN-FORWARD"));
        assert_eq!(target("-m comment --comment \"x -j KILN-FORWARD\" -j RETURN"), Some("RETURN"));
        assert_eq!(target("-s 10.0.0.0/8"), None);
    }

    #[test]
    fn errors_name_the_program_and_say_why_in_one_line() {
        let missing = IptablesError::NotInstalled { program: "iptables-restore" };
        assert_eq!(
            missing.to_string(),
            "iptables-restore not found: install iptables (apt-get install iptables)"
        );
        assert_eq!(missing.kind(), ErrorKind::Unsupported);
        assert_eq!(
            first_line(
                "Warning: Extension addrtype revision 0 not supported\n\
                 iptables-restore v1.8.9 (nf_tables): line 4: CHAIN_USER_DEL failed (Device or resource busy)\n\
                 Error occurred at line: 4\n"
            ),
            "iptables-restore v1.8.9 (nf_tables): line 4: CHAIN_USER_DEL failed (Device or resource busy)"
        );
        assert_eq!(first_line(""), "(no message)");
    }
}
