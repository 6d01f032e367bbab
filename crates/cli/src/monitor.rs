//! `kiln stats`, `kiln diff` and `kiln events`: watching containers and
//! the daemon.
//!
//! `stats` reads one stats stream per container and prints Docker's table
//! with Docker's arithmetic (CPU % from the change since the previous
//! reading, memory without the inactive page cache); streaming, it redraws
//! every second. Named containers stay on the table (`--` once they stop
//! answering); without names it follows the running containers (`-a`: all).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use kiln_api_types::{BlkioStats, ContainerStats, EventMessage, MemoryStats};
use kiln_client::{Change, ChangeKind, Client, ContainerListOptions};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::container_list::{parse_filters, short_id};
use crate::container_logs::api_timestamp;
use crate::container_ops::fail_with;
use crate::format::cells;
use crate::output::{bytes_size, civil_from_days, human_size, table};
use crate::GlobalArgs;

const DEFAULT_STATS_TABLE: &str =
    "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// How long a streaming `stats` waits for every container's first sample
/// before it draws anyway (docker waits as long).
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(2);

/// Time between two tables of a streaming `stats`.
const REDRAW: Duration = Duration::from_secs(1);

/// Clear the terminal and go to its top left corner, as docker does
/// between two tables.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go-style
    /// template such as '{{.Name}} {{.CPUPerc}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided (type=, event=,
    /// container=, image=, volume=, label=, …)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format output: 'json', or a Go-style template such as
    /// '{{.Type}} {{.Action}} {{.Actor.ID}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Show all events created since timestamp (e.g. "2013-01-02T13:23:37Z")
    /// or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// One container's numbers, as docker's CLI computes them from a sample.
#[derive(Debug, Clone, Default, PartialEq)]
struct Usage {
    /// Without the leading `/`; empty before the first sample.
    name: String,
    id: String,
    cpu_percent: f64,
    memory: u64,
    memory_limit: u64,
    memory_percent: f64,
    net_rx: u64,
    net_tx: u64,
    block_read: u64,
    block_write: u64,
    pids: u64,
}

impl Usage {
    fn from_sample(sample: &ContainerStats) -> Usage {
        let memory = memory_used(&sample.memory_stats);
        let memory_limit = sample.memory_stats.limit;
        #[allow(clippy::cast_precision_loss)]
        let memory_percent =
            if memory_limit == 0 { 0.0 } else { memory as f64 / memory_limit as f64 * 100.0 };
        let (net_rx, net_tx) = sample
            .networks
            .iter()
            .flat_map(BTreeMap::values)
            .fold((0, 0), |(rx, tx), n| (rx + n.rx_bytes, tx + n.tx_bytes));
        let (block_read, block_write) = block_io(&sample.blkio_stats);
        Usage {
            name: sample.name.strip_prefix('/').unwrap_or(&sample.name).to_owned(),
            id: sample.id.clone(),
            cpu_percent: cpu_percent(sample),
            memory,
            memory_limit,
            memory_percent,
            net_rx,
            net_tx,
            block_read,
            block_write,
            pids: sample.pids_stats.current,
        }
    }
}

/// docker-compat: `calculateCPUPercentUnix`: the container's share of the
/// CPU time the whole system spent since the previous reading, times the
/// CPUs; 0 when either did not move.
fn cpu_percent(sample: &ContainerStats) -> f64 {
    let (now, before) = (&sample.cpu_stats, &sample.precpu_stats);
    #[allow(clippy::cast_precision_loss)]
    let delta = |now: u64, before: u64| now as f64 - before as f64;
    let cpu_delta = delta(now.cpu_usage.total_usage, before.cpu_usage.total_usage);
    let system_delta =
        delta(now.system_cpu_usage.unwrap_or(0), before.system_cpu_usage.unwrap_or(0));
    let online = match now.online_cpus.filter(|n| *n > 0) {
        Some(n) => f64::from(n),
        #[allow(clippy::cast_precision_loss)]
        None => now.cpu_usage.percpu_usage.as_ref().map_or(0, Vec::len) as f64,
    };
    if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker-compat: `calculateMemUsageUnixNoCache`: usage less the inactive
/// page cache (cgroup v1 `total_inactive_file`, v2 `inactive_file`) when
/// that is smaller.
fn memory_used(memory: &MemoryStats) -> u64 {
    if let Some(&cache) = memory.stats.get("total_inactive_file") {
        if cache < memory.usage {
            return memory.usage - cache;
        }
    }
    match memory.stats.get("inactive_file") {
        Some(&cache) if cache < memory.usage => memory.usage - cache,
        _ => memory.usage,
    }
}

/// Bytes read and written, summed over the devices (`op` is `read`/`Read`
/// or `write`/`Write`).
fn block_io(blkio: &BlkioStats) -> (u64, u64) {
    let mut totals = (0, 0);
    for entry in blkio.io_service_bytes_recursive.iter().flatten() {
        let op = entry.get("op").and_then(Value::as_str).unwrap_or_default();
        let value = entry.get("value").and_then(Value::as_u64).unwrap_or(0);
        match op.as_bytes().first() {
            Some(b'r' | b'R') => totals.0 += value,
            Some(b'w' | b'W') => totals.1 += value,
            _ => {}
        }
    }
    totals
}

/// Where a container's readings stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// No sample yet.
    Waiting,
    /// The latest sample is in `usage`.
    Valid,
    /// The stream failed or ended; the table shows `--`.
    Invalid,
}

/// A row of the table: the container as the user named it (or its short
/// id), and its latest numbers.
#[derive(Debug, Clone)]
struct Entry {
    container: String,
    usage: Usage,
    reading: Reading,
}

impl Entry {
    fn new(container: String) -> Entry {
        Entry { container, usage: Usage::default(), reading: Reading::Waiting }
    }
}

/// The rows, and why the streams that failed did.
#[derive(Debug, Default)]
struct Sheet {
    rows: Vec<Entry>,
    errors: BTreeMap<String, anyhow::Error>,
}

/// The sheet, shared with the tasks that read the stats streams.
type Board = Arc<Mutex<Sheet>>;

fn lock(board: &Board) -> std::sync::MutexGuard<'_, Sheet> {
    board.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stats stream per container, each feeding its row of the board.
struct Watch {
    client: Client,
    stream: bool,
    board: Board,
    tasks: BTreeMap<String, JoinHandle<()>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("containers", &self.tasks.keys()).finish_non_exhaustive()
    }
}

impl Watch {
    fn new(client: Client, stream: bool) -> Watch {
        Watch { client, stream, board: Arc::default(), tasks: BTreeMap::new() }
    }

    /// Start reading `container`'s stats, unless they are read already.
    fn add(&mut self, container: &str) {
        if self.tasks.contains_key(container) {
            return;
        }
        lock(&self.board).rows.push(Entry::new(container.to_owned()));
        let task = tokio::spawn(collect(
            self.client.clone(),
            container.to_owned(),
            self.stream,
            Arc::clone(&self.board),
        ));
        self.tasks.insert(container.to_owned(), task);
    }

    /// Stop reading and drop the rows of containers not in `keep`.
    fn retain(&mut self, keep: &BTreeSet<String>) {
        self.tasks.retain(|container, task| {
            let kept = keep.contains(container);
            if !kept {
                task.abort();
            }
            kept
        });
        let mut sheet = lock(&self.board);
        sheet.rows.retain(|entry| keep.contains(&entry.container));
        sheet.errors.retain(|container, _| keep.contains(container));
    }

    fn rows(&self) -> Vec<Entry> {
        lock(&self.board).rows.clone()
    }

    /// Wait until every row has a first reading (or failed), for at most
    /// `limit` when given.
    async fn first_readings(&self, limit: Option<Duration>) {
        let started = tokio::time::Instant::now();
        while lock(&self.board).rows.iter().any(|e| e.reading == Reading::Waiting) {
            if limit.is_some_and(|limit| started.elapsed() >= limit) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The errors of the streams that failed, in the rows' order; they are
    /// taken off the sheet.
    fn take_errors(&self) -> Vec<anyhow::Error> {
        let mut sheet = lock(&self.board);
        let order: Vec<String> = sheet.rows.iter().map(|e| e.container.clone()).collect();
        order.iter().filter_map(|container| sheet.errors.remove(container)).collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// Read `container`'s stats into its row until the stream ends (after one
/// sample unless `stream`).
async fn collect(client: Client, container: String, stream: bool, board: Board) {
    let update = |reading: Reading, usage: Option<Usage>, error: Option<anyhow::Error>| {
        let mut sheet = lock(&board);
        if let Some(entry) = sheet.rows.iter_mut().find(|e| e.container == container) {
            entry.reading = reading;
            if let Some(usage) = usage {
                entry.usage = usage;
            }
        }
        if let Some(error) = error {
            sheet.errors.insert(container.clone(), error);
        }
    };
    let mut samples = match client.container_stats(&container, stream, false).await {
        Ok(samples) => samples,
        Err(err) => return update(Reading::Invalid, None, Some(err.into())),
    };
    loop {
        match samples.next().await {
            Ok(Some(sample)) => {
                update(Reading::Valid, Some(Usage::from_sample(&sample)), None);
                if !stream {
                    return;
                }
            }
            // A stopped container's stream ends; its row shows `--`.
            Ok(None) => return update(Reading::Invalid, None, None),
            Err(err) => return update(Reading::Invalid, None, Some(err.into())),
        }
    }
}

pub async fn stats(global: &GlobalArgs, args: &StatsArgs) -> anyhow::Result<()> {
    let trunc = !args.no_trunc;
    // A template that cannot be rendered fails before any waiting.
    render_stats(args.format.as_deref(), &[Entry::new(String::new())], trunc)?;
    let client = crate::connect(global).await?;
    let named = !args.containers.is_empty();
    let mut watch = Watch::new(client.clone(), !args.no_stream);
    let listed = if named { args.containers.clone() } else { list(&client, args.all).await? };
    for container in &listed {
        watch.add(container);
    }
    let limit = (!args.no_stream).then_some(FIRST_SAMPLE_WAIT);
    watch.first_readings(limit).await;
    if named {
        // docker-compat: a named container that cannot be read fails the
        // command before anything is drawn.
        fail_with(watch.take_errors())?;
    }
    if args.no_stream {
        print!("{}", render_stats(args.format.as_deref(), &watch.rows(), trunc)?);
        return Ok(());
    }
    let clear = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout();
    loop {
        let text = render_stats(args.format.as_deref(), &watch.rows(), trunc)?;
        let frame = if clear { format!("{CLEAR_SCREEN}{text}") } else { text };
        if !write_or_stop(&mut stdout, &frame)? {
            return Ok(());
        }
        tokio::time::sleep(REDRAW).await;
        if !named {
            let now = list(&client, args.all).await?;
            watch.retain(&now.iter().cloned().collect());
            for container in &now {
                watch.add(container);
            }
        }
    }
}

/// The short ids of the running containers (`all`: of every container).
async fn list(client: &Client, all: bool) -> anyhow::Result<Vec<String>> {
    let options = ContainerListOptions { all, ..ContainerListOptions::default() };
    let containers = client.containers(&options).await?;
    Ok(containers.iter().map(|c| short_id(&c.id, true)).collect())
}

/// Write and flush; false when the reader went away (`| head`), which ends
/// a stream quietly.
fn write_or_stop(out: &mut impl std::io::Write, text: &str) -> anyhow::Result<bool> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The rows as text: JSON lines, a template per row, or an aligned table.
fn render_stats(format: Option<&str>, rows: &[Entry], trunc: bool) -> anyhow::Result<String> {
    let format = format.unwrap_or("table").replace("\\t", "\t").replace("\\n", "\n");
    if format.trim() == "json" {
        return Ok(rows.iter().map(|row| format!("{}\n", stats_value(row, trunc))).collect());
    }
    let Some(table_format) = format.strip_prefix("table") else {
        let mut out = String::new();
        for row in rows {
            out.push_str(&crate::format::render(&format, &stats_value(row, trunc))?);
        }
        return Ok(out);
    };
    let template = match table_format.trim() {
        "" => DEFAULT_STATS_TABLE,
        custom => custom,
    };
    let mut lines = vec![cells(template, &stats_headers())?];
    for row in rows {
        lines.push(cells(template, &stats_value(row, trunc))?);
    }
    Ok(table(&lines))
}

/// Column titles, by field, as docker names them.
fn stats_headers() -> Value {
    json!({
        "BlockIO": "BLOCK I/O", "CPUPerc": "CPU %", "Container": "CONTAINER",
        "ID": "CONTAINER ID", "MemPerc": "MEM %", "MemUsage": "MEM USAGE / LIMIT",
        "Name": "NAME", "NetIO": "NET I/O", "PIDs": "PIDS",
    })
}

/// A row's fields as docker's stats context shows them: `--` for what
/// cannot be read.
fn stats_value(row: &Entry, trunc: bool) -> Value {
    let u = &row.usage;
    let name = if u.name.is_empty() { "--".to_owned() } else { u.name.clone() };
    let id = short_id(&u.id, trunc);
    if row.reading == Reading::Invalid {
        return json!({
            "BlockIO": "--", "CPUPerc": "--", "Container": row.container, "ID": id,
            "MemPerc": "--", "MemUsage": "-- / --", "Name": name, "NetIO": "--", "PIDs": "--",
        });
    }
    json!({
        "BlockIO": format!("{} / {}", human_size(u.block_read), human_size(u.block_write)),
        "CPUPerc": format!("{:.2}%", u.cpu_percent),
        "Container": row.container,
        "ID": id,
        "MemPerc": format!("{:.2}%", u.memory_percent),
        "MemUsage": format!("{} / {}", bytes_size(u.memory), bytes_size(u.memory_limit)),
        "Name": name,
        "NetIO": format!("{} / {}", human_size(u.net_rx), human_size(u.net_tx)),
        "PIDs": u.pids.to_string(),
    })
}

pub async fn diff(global: &GlobalArgs, args: &DiffArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let changes = client.container_changes(&args.container).await?;
    print!("{}", render_diff(&changes));
    Ok(())
}

/// `C /etc`, `A /new`, `D /gone`, one a line in the daemon's order.
fn render_diff(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|change| {
            let kind = match change.kind {
                ChangeKind::Modified => 'C',
                ChangeKind::Added => 'A',
                ChangeKind::Deleted => 'D',
            };
            format!("{kind} {}\n", change.path)
        })
        .collect()
}

pub async fn events(global: &GlobalArgs, args: &EventsArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    let now = now();
    let since = args.since.as_deref().map(|v| api_timestamp(v, now)).transpose()?;
    let until = args.until.as_deref().map(|v| api_timestamp(v, now)).transpose()?;
    let client = crate::connect(global).await?;
    let mut events = client.events(since.as_deref(), until.as_deref(), &filters).await?;
    let mut stdout = std::io::stdout();
    while let Some(event) = events.next().await? {
        if !write_or_stop(&mut stdout, &render_event(args.format.as_deref(), &event)?)? {
            return Ok(());
        }
    }
    Ok(())
}

/// An event as docker prints it: its line, its JSON, or a template over it.
fn render_event(format: Option<&str>, event: &EventMessage) -> anyhow::Result<String> {
    let Some(format) = format.filter(|f| !f.trim().is_empty()) else {
        return Ok(event_line(event));
    };
    let compact: String = format.split_whitespace().collect();
    if compact == "json" || compact == "{{json.}}" {
        return Ok(format!("{}\n", serde_json::to_string(event)?));
    }
    Ok(crate::format::render(format, &event_value(event))?)
}

/// docker-compat: `prettyPrintEvent`: the time (RFC 3339 with nanoseconds,
/// here in UTC), type, action and actor, then the attributes sorted.
fn event_line(event: &EventMessage) -> String {
    let mut line = String::new();
    if event.time_nano != 0 {
        line = format!("{} ", rfc3339_nano(event.time_nano));
    } else if event.time != 0 {
        line = format!("{} ", rfc3339_nano(event.time.saturating_mul(1_000_000_000)));
    }
    line.push_str(&format!("{} {} {}", event.kind, event.action, event.actor.id));
    if !event.actor.attributes.is_empty() {
        let attributes: Vec<String> =
            event.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", attributes.join(", ")));
    }
    line.push('\n');
    line
}

/// The event for a template: its JSON, plus the Go field names docker's
/// templates use for the lower-case keys (`.ID`, `.Status`, `.Time`, …).
fn event_value(event: &EventMessage) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        let text = |field: &Option<String>| Value::from(field.clone().unwrap_or_default());
        map.insert("Status".to_owned(), text(&event.status));
        map.insert("ID".to_owned(), text(&event.id));
        map.insert("From".to_owned(), text(&event.from));
        map.insert("Scope".to_owned(), Value::from(event.scope.clone()));
        map.insert("Time".to_owned(), Value::from(event.time));
        map.insert("TimeNano".to_owned(), Value::from(event.time_nano));
    }
    value
}

/// Go's `2006-01-02T15:04:05.000000000Z07:00` of Unix nanoseconds, in UTC.
fn rfc3339_nano(unix_nanos: i64) -> String {
    let seconds = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rem = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, as (seconds, nanoseconds) since the Unix epoch.
fn now() -> (i64, u32) {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or((0, 0), |d| (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use kiln_api_types::{CpuStats, CpuUsage, EventActor, NetworkStats, PidsStats};

    use super::*;

    const ID: &str = "4f1c0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

    /// Two CPUs; the container used 0.5 s of the 4 s the system spent.
    fn sample() -> ContainerStats {
        let cpu = |total: u64, system: u64| CpuStats {
            cpu_usage: CpuUsage { total_usage: total, ..CpuUsage::default() },
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..CpuStats::default()
        };
        let mut memory =
            MemoryStats { usage: 2 * 1024 * 1024, limit: 8_327_184_384, ..MemoryStats::default() };
        memory.stats.insert("inactive_file".to_owned(), 512 * 1024);
        let mut networks = BTreeMap::new();
        networks.insert(
            "eth0".to_owned(),
            NetworkStats { rx_bytes: 1_500, tx_bytes: 700, ..NetworkStats::default() },
        );
        networks.insert(
            "eth1".to_owned(),
            NetworkStats { rx_bytes: 500, tx_bytes: 300, ..NetworkStats::default() },
        );
        ContainerStats {
            name: "/web".to_owned(),
            id: ID.to_owned(),
            pids_stats: PidsStats { current: 3, limit: None },
            cpu_stats: cpu(1_500_000_000, 10_000_000_000),
            precpu_stats: cpu(1_000_000_000, 6_000_000_000),
            memory_stats: memory,
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: Some(vec![
                    json!({"major": 8, "minor": 0, "op": "read", "value": 4096}),
                    json!({"major": 8, "minor": 0, "op": "Write", "value": 1_000_000}),
                    json!({"major": 8, "minor": 0, "op": "total", "value": 1_004_096}),
                ]),
                io_serviced_recursive: None,
            },
            networks: Some(networks),
            ..ContainerStats::default()
        }
    }

    fn entry(container: &str, reading: Reading) -> Entry {
        Entry { container: container.to_owned(), usage: Usage::from_sample(&sample()), reading }
    }

    #[test]
    fn cpu_share_follows_dockers_formula() {
        let s = sample();
        // 0.5 / 4 × 2 CPUs × 100
        assert!((cpu_percent(&s) - 25.0).abs() < 1e-9);
        let mut idle = s.clone();
        idle.precpu_stats.cpu_usage.total_usage = idle.cpu_stats.cpu_usage.total_usage;
        assert!(cpu_percent(&idle).abs() < f64::EPSILON);
        let mut no_system = s.clone();
        no_system.precpu_stats.system_cpu_usage = no_system.cpu_stats.system_cpu_usage;
        assert!(cpu_percent(&no_system).abs() < f64::EPSILON);
        let mut per_cpu = s;
        per_cpu.cpu_stats.online_cpus = None;
        per_cpu.cpu_stats.cpu_usage.percpu_usage = Some(vec![1, 2, 3, 4]);
        assert!((cpu_percent(&per_cpu) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn memory_leaves_out_the_inactive_page_cache() {
        let mut memory = MemoryStats { usage: 1000, ..MemoryStats::default() };
        assert_eq!(memory_used(&memory), 1000);
        memory.stats.insert("inactive_file".to_owned(), 300);
        assert_eq!(memory_used(&memory), 700);
        memory.stats.insert("total_inactive_file".to_owned(), 100);
        assert_eq!(memory_used(&memory), 900, "cgroup v1's key comes first");
        memory.stats.insert("total_inactive_file".to_owned(), 5000);
        assert_eq!(memory_used(&memory), 700, "a v1 cache above usage is ignored");
        memory.stats.insert("inactive_file".to_owned(), 5000);
        assert_eq!(memory_used(&memory), 1000);
        let usage = Usage::from_sample(&sample());
        assert_eq!(usage.memory, 1536 * 1024);
        assert!((usage.memory_percent - 1536.0 * 1024.0 / 8_327_184_384.0 * 100.0).abs() < 1e-9);
        assert_eq!((usage.net_rx, usage.net_tx), (2_000, 1_000));
        assert_eq!((usage.block_read, usage.block_write), (4096, 1_000_000));
        assert_eq!((usage.name.as_str(), usage.pids), ("web", 3));
    }

    #[test]
    fn the_default_table_reads_like_dockers() {
        let rows = [entry("web", Reading::Valid), entry("db", Reading::Invalid)];
        let text = render_stats(None, &rows, true).expect("render");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O     PIDS",
                "4f1c01234567   web       25.00%    1.5MiB / 7.755GiB   0.02%     2kB / 1kB   4.1kB / 1MB   3",
                "4f1c01234567   web       --        -- / --             --        --          --            --",
            ]
        );
        let waiting = Entry::new("new".to_owned());
        let text = render_stats(Some("table"), &[waiting], true).expect("render");
        assert_eq!(
            text.lines().nth(1),
            Some("               --        0.00%     0B / 0B             0.00%     0B / 0B   0B / 0B     0")
        );
    }

    #[test]
    fn stats_templates_and_json() {
        let rows = [entry("web", Reading::Valid)];
        assert_eq!(
            render_stats(Some("{{.Container}}: {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}"), &rows, true)
                .expect("template"),
            "web: 25.00% 1.5MiB / 7.755GiB 3\n"
        );
        assert_eq!(
            render_stats(Some("table {{.Name}}\\t{{.MemPerc}}"), &rows, true).expect("table"),
            "NAME      MEM %\nweb       0.02%\n"
        );
        assert_eq!(
            render_stats(Some("{{.ID}}"), &rows, false).expect("no-trunc"),
            format!("{ID}\n")
        );
        let line = render_stats(Some("json"), &rows, true).expect("json");
        let v: Value = serde_json::from_str(line.trim()).expect("one json line");
        assert_eq!(v["Name"], "web");
        assert_eq!(v["BlockIO"], "4.1kB / 1MB");
        assert_eq!(v["NetIO"], "2kB / 1kB");
        assert!(render_stats(Some("{{range .X}}"), &rows, true).is_err());
    }

    #[test]
    fn diff_lines_keep_the_daemons_order() {
        let change = |path: &str, kind| Change { path: path.to_owned(), kind };
        let changes = [
            change("/etc", ChangeKind::Modified),
            change("/new", ChangeKind::Added),
            change("/gone", ChangeKind::Deleted),
            change("/etc/hosts", ChangeKind::Modified),
        ];
        assert_eq!(render_diff(&changes), "C /etc\nA /new\nD /gone\nC /etc/hosts\n");
        assert_eq!(render_diff(&[]), "");
    }

    fn event() -> EventMessage {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), "web".to_owned());
        attributes.insert("image".to_owned(), "bb".to_owned());
        EventMessage {
            status: Some("start".to_owned()),
            id: Some("4f1c".to_owned()),
            from: Some("bb".to_owned()),
            kind: "container".to_owned(),
            action: "start".to_owned(),
            actor: EventActor { id: "4f1c".to_owned(), attributes },
            scope: "local".to_owned(),
            time: 1_795_942_862,
            time_nano: 1_795_942_862_123_456_789,
        }
    }

    #[test]
    fn event_lines_read_like_dockers() {
        assert_eq!(
            event_line(&event()),
            "2026-11-29T09:01:02.123456789Z container start 4f1c (image=bb, name=web)\n"
        );
        let bare = EventMessage {
            kind: "volume".to_owned(),
            action: "create".to_owned(),
            actor: EventActor { id: "v1".to_owned(), attributes: BTreeMap::new() },
            time: 1_795_942_862,
            ..EventMessage::default()
        };
        assert_eq!(event_line(&bare), "2026-11-29T09:01:02.000000000Z volume create v1\n");
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn event_formats_use_json_and_go_field_names() {
        let e = event();
        let json_line = render_event(Some("{{json .}}"), &e).expect("json");
        assert!(json_line
            .starts_with(r#"{"status":"start","id":"4f1c","from":"bb","Type":"container""#));
        assert_eq!(render_event(Some("json"), &e).expect("json"), json_line);
        assert_eq!(
            render_event(
                Some("{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"),
                &e
            )
            .expect("template"),
            "container start 4f1c web\n"
        );
        assert_eq!(
            render_event(Some("{{.ID}} {{.Status}} {{.TimeNano}} {{json .Actor.Attributes}}"), &e)
                .expect("go names"),
            "4f1c start 1795942862123456789 {\"image\":\"bb\",\"name\":\"web\"}\n"
        );
        assert_eq!(render_event(None, &e).expect("line"), event_line(&e));
    }

    #[test]
    fn a_closed_reader_ends_a_stream_quietly() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(!write_or_stop(&mut Closed, "x").expect("no error"));
        let mut buf = Vec::new();
        assert!(write_or_stop(&mut buf, "x").expect("written"));
        assert_eq!(buf, b"x");
    }

    #[test]
    fn flags_parse_like_dockers() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Stats {
            #[command(flatten)]
            args: StatsArgs,
        }
        #[derive(Debug, Parser)]
        struct Events {
            #[command(flatten)]
            args: EventsArgs,
        }
        let stats = Stats::try_parse_from(["stats", "--no-stream", "-a", "--no-trunc", "a", "b"])
            .expect("stats")
            .args;
        assert!(stats.no_stream && stats.all && stats.no_trunc);
        assert_eq!(stats.containers, ["a", "b"]);
        let events = Events::try_parse_from([
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "-f",
            "type=container",
            "--filter",
            "event=start",
            "--format",
            "{{json .}}",
        ])
        .expect("events")
        .args;
        assert_eq!(events.filters, ["type=container", "event=start"]);
        assert_eq!((events.since.as_deref(), events.until.as_deref()), (Some("10m"), Some("0s")));
        assert_eq!(events.format.as_deref(), Some("{{json .}}"));
    }
}
