//! BuildKit's progress output for `kiln build`, computed on the client from
//! the classic builder's stream.
//!
//! The daemon speaks Docker's classic protocol (the API stays Docker's):
//! text such as `Step 2/4 : RUN make`, the step's output, ` ---> Using
//! cache` and ` ---> 3f2a1b2c3d4e`, the image id as `aux`, then
//! `Successfully built` and `Successfully tagged`. [`Progress`] reads those
//! messages, each with the time it arrived, into steps that start, end and
//! print, and renders them as BuildKit does: the lines `--progress plain`
//! prints ([`Progress::take_lines`]) and the frame `--progress tty` redraws
//! ([`Progress::frame`], [`redraw`]). Nothing here reads a clock or writes
//! to a terminal, so every shape is tested with made-up times.
//!
//! The classic stream does not say which step a line belongs to. In one
//! stage, steps run one after another and each ends with its ` ---> id`
//! before the next starts, so with one step running every line is its.
//! When stages run at the same time, several steps are open: output goes
//! to the one that started last (it may be another stage's), a step ends
//! when the next step of its stage starts (the next number, unless that
//! one is a `FROM`), and ` ---> id` lines are counted until there are as
//! many as open steps, which then all ended. A step is thus never shown
//! done while it still runs, only sometimes running a little too long.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use kiln_client::BuildMessage;

/// Output lines kept per step, for the box a failure prints.
const TAIL: usize = 10;
/// Output lines of a running step that the tty display shows under it.
const WINDOW: usize = 6;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Its result came from the cache (` ---> Using cache`).
    Cached,
    Done,
    /// The build failed in this step.
    Error,
    /// Still running when another step failed.
    Canceled,
}

/// A line of a step's output, and when it came, from the step's start.
#[derive(Debug, Clone)]
struct LogLine {
    at: Duration,
    text: String,
}

/// What BuildKit calls a vertex: a step (`[2/4] RUN make`), or the export
/// of the image at the end.
#[derive(Debug)]
struct Vertex {
    /// BuildKit's `#N`: the order the vertices appeared in.
    number: usize,
    name: String,
    started: Duration,
    ended: Option<Duration>,
    state: State,
    /// The last [`TAIL`] lines of its output.
    tail: VecDeque<LogLine>,
    /// What the export did (`writing image sha256:… done`).
    details: Vec<String>,
}

/// One thing the display lists, in the order it came.
#[derive(Debug)]
enum Item {
    Vertex(usize),
    /// Text outside any step (`--check-reproducible`'s notes, another
    /// daemon's `Sending build context`).
    Note(String),
}

/// What a line of the classic stream's text means.
#[derive(Debug, PartialEq, Eq)]
enum Marker<'a> {
    Step {
        number: usize,
        total: usize,
        text: &'a str,
    },
    UsingCache,
    /// ` ---> 3f2a1b2c3d4e`: the step before is done.
    StepDone,
    /// dockerd's bookkeeping (` ---> Running in …`, `Removing intermediate
    /// container …`), which BuildKit does not show.
    Ignored,
    Built(&'a str),
    Tagged(&'a str),
    Warning(&'a str),
}

impl<'a> Marker<'a> {
    /// The marker a line (without its newline) is; `None` for output.
    fn parse(line: &'a str) -> Option<Marker<'a>> {
        if let Some(rest) = line.strip_prefix("Step ") {
            let (count, text) = rest.split_once(" : ")?;
            let (number, total) = count.split_once('/')?;
            return Some(Marker::Step {
                number: number.parse().ok()?,
                total: total.parse().ok()?,
                text,
            });
        }
        if let Some(rest) = line.strip_prefix(" ---> ") {
            return if rest == "Using cache" {
                Some(Marker::UsingCache)
            } else if rest.starts_with("Running in ") {
                Some(Marker::Ignored)
            } else if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some(Marker::StepDone)
            } else {
                None
            };
        }
        if line.starts_with("Removing intermediate container ") {
            return Some(Marker::Ignored);
        }
        if let Some(id) = line.strip_prefix("Successfully built ") {
            return Some(Marker::Built(id.trim()));
        }
        if let Some(reference) = line.strip_prefix("Successfully tagged ") {
            return Some(Marker::Tagged(reference.trim()));
        }
        // docker-compat: the classic builder's Dockerfile warnings.
        line.strip_prefix("[WARNING]: ").map(Marker::Warning)
    }
}

/// A build's progress, read from its messages.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Whether to make the lines of `--progress plain`.
    plain: bool,
    vertices: Vec<Vertex>,
    items: Vec<Item>,
    /// Steps that started and are not known to have ended, in the order
    /// they started.
    open: Vec<usize>,
    /// ` ---> id` lines not yet matched to one of the open steps.
    unmatched_done: usize,
    /// The text after the last newline, and when its first byte came.
    partial: String,
    partial_at: Duration,
    /// `M` of the last `Step N/M`, and the vertex of each step number
    /// seen since the build began (`--check-reproducible` runs every step
    /// twice, as a second build in the same stream).
    announced: usize,
    steps: BTreeMap<usize, usize>,
    /// The "exporting to image" vertex, once the image is built.
    export: Option<usize>,
    warnings: Vec<String>,
    /// Plain lines not taken yet.
    lines: Vec<String>,
    /// What the last plain line was about: `None` before any, then a
    /// vertex or `Some(None)` for a note, so that a change of vertex gets
    /// BuildKit's blank line and the vertex's name again.
    last_printed: Option<Option<usize>>,
    finished: Option<Duration>,
}

impl Progress {
    /// `plain`: also make the lines `--progress plain` prints.
    pub(crate) fn new(plain: bool) -> Progress {
        Progress {
            plain,
            vertices: Vec::new(),
            items: Vec::new(),
            open: Vec::new(),
            unmatched_done: 0,
            partial: String::new(),
            partial_at: Duration::ZERO,
            announced: 0,
            steps: BTreeMap::new(),
            export: None,
            warnings: Vec::new(),
            lines: Vec::new(),
            last_printed: None,
            finished: None,
        }
    }

    /// Whether anything has come yet (the display has nothing to show
    /// before).
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// One message of the stream, which came `at` after the build began.
    pub(crate) fn message(&mut self, message: &BuildMessage, at: Duration) {
        if let Some(text) = &message.stream {
            self.text(text, at);
        }
        if let Some(line) = status_line(message) {
            // A base image pull's progress, as the FROM step's output.
            self.end_partial();
            self.output(line, at);
        }
        if let Some(id) = message.aux.as_ref().and_then(|aux| aux.get("ID")?.as_str()) {
            self.end_partial();
            let export = self.export_vertex(at);
            self.detail(export, format!("writing image {id} done"));
        }
    }

    /// The build succeeded: what is still open is done.
    pub(crate) fn finish(&mut self, at: Duration) {
        self.end_partial();
        self.close_open(at);
        if let Some(export) = self.export.take() {
            self.end(export, State::Done, at);
        }
        self.finished = Some(at);
        self.print_warnings();
    }

    /// The build failed with `message`: the open step the message names
    /// (`Dockerfile:3: RUN make: …`), else the one that started last,
    /// failed; the others still running were cancelled.
    pub(crate) fn fail(&mut self, message: &str, at: Duration) {
        self.end_partial();
        let named = self.open.iter().rposition(|&v| {
            let name = &self.vertices[v].name;
            let text = name.split_once("] ").map_or(name.as_str(), |(_, text)| text);
            message.contains(text)
        });
        let failed = match named {
            Some(position) => Some(self.open.remove(position)),
            None => self.open.pop(),
        };
        let failed = failed.or_else(|| self.export.take());
        if let Some(vertex) = failed {
            self.end(vertex, State::Error, at);
            self.print(Some(vertex), format!("ERROR: {message}"));
            if self.plain {
                // BuildKit's box: the failed step's last output again.
                let v = &self.vertices[vertex];
                let mut boxed = vec!["------".to_owned(), format!(" > {}:", v.name)];
                boxed.extend(v.tail.iter().map(plain_log));
                boxed.push("------".to_owned());
                self.lines.extend(boxed);
                self.last_printed = Some(None);
            }
        }
        while let Some(vertex) = self.open.pop() {
            if self.vertices[vertex].state == State::Running {
                self.end(vertex, State::Canceled, at);
            }
        }
        if let Some(export) = self.export.take() {
            self.end(export, State::Canceled, at);
        }
        self.finished = Some(at);
        self.print_warnings();
    }

    /// The plain lines made since the last call, without newlines.
    pub(crate) fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// BuildKit's summary of the warnings, printed after the display.
    pub(crate) fn warnings_summary(&self) -> Vec<String> {
        if self.warnings.is_empty() {
            return Vec::new();
        }
        let count = self.warnings.len();
        let mut lines =
            vec![format!(" {count} warning{} found:", if count == 1 { "" } else { "s" })];
        lines.extend(self.warnings.iter().map(|w| format!(" - {w}")));
        lines
    }

    /// The tty display `now` after the build began, in lines of at most
    /// `width` columns, without ANSI codes: the header, a line per step
    /// with its time, the last lines of the running (or failed) steps'
    /// output under them. With `height`, at most that many lines while the
    /// build runs: the header and the newest lines, since a redraw cannot
    /// reach lines that scrolled off the screen. The final frame is whole:
    /// it is not redrawn, and stays on screen with every step's time.
    pub(crate) fn frame(&self, now: Duration, width: usize, height: Option<usize>) -> Vec<String> {
        let now = self.finished.unwrap_or(now);
        let done = self.vertices.iter().filter(|v| v.ended.is_some()).count();
        let total = self.vertices.len() + self.announced.saturating_sub(self.steps.len());
        let mut header = format!("[+] Building {:.1}s ({done}/{total})", now.as_secs_f64());
        if self.finished.is_some() {
            header.push_str(" FINISHED");
        }
        let mut lines = vec![fit(&header, width)];
        let latest = self.open.last().copied();
        for item in &self.items {
            let index = match item {
                Item::Note(text) => {
                    lines.push(fit(&format!(" => {}", visible(text)), width));
                    continue;
                }
                Item::Vertex(index) => *index,
            };
            let vertex = &self.vertices[index];
            let label = match vertex.state {
                State::Running | State::Done => "",
                State::Cached => "CACHED ",
                State::Error => "ERROR ",
                State::Canceled => "CANCELED ",
            };
            let elapsed = vertex.ended.unwrap_or(now).saturating_sub(vertex.started);
            let time = format!("{:.1}s", elapsed.as_secs_f64());
            lines.push(row(&format!(" => {label}{}", visible(&vertex.name)), &time, width));
            for detail in &vertex.details {
                lines.push(fit(&format!(" => => {}", visible(detail)), width));
            }
            if matches!(vertex.state, State::Running | State::Error) {
                let mut window: Vec<&str> = vertex.tail.iter().map(|l| l.text.as_str()).collect();
                if latest == Some(index) && !self.partial.is_empty() {
                    window.push(&self.partial);
                }
                let skip = window.len().saturating_sub(WINDOW);
                for text in &window[skip..] {
                    lines.push(fit(&format!(" => => # {}", visible(text)), width));
                }
            }
        }
        if let Some(height) = height.filter(|_| self.finished.is_none()).map(|h| h.max(1)) {
            if lines.len() > height {
                let cut = lines.len() - (height - 1);
                lines.drain(1..cut);
            }
        }
        lines
    }

    /// Text of a `stream` message: whole lines are read as they complete.
    fn text(&mut self, text: &str, at: Duration) {
        // A step's output that did not end its last line is followed by
        // the next marker in a message of its own: the line ended there.
        let first = text.split('\n').next().unwrap_or_default();
        if !self.partial.is_empty() && Marker::parse(first.trim_end_matches('\r')).is_some() {
            self.end_partial();
        }
        let mut rest = text;
        while let Some(end) = rest.find('\n') {
            let (piece, after) = rest.split_at(end);
            rest = &after[1..];
            let (line, line_at) = if self.partial.is_empty() {
                (piece.to_owned(), at)
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.push_str(piece);
                (line, self.partial_at)
            };
            self.line(line.trim_end_matches('\r'), line_at, at);
        }
        if !rest.is_empty() {
            if self.partial.is_empty() {
                self.partial_at = at;
            }
            self.partial.push_str(rest);
        }
    }

    /// A whole line: a marker, or output that came at `line_at`.
    fn line(&mut self, line: &str, line_at: Duration, at: Duration) {
        match Marker::parse(line) {
            Some(Marker::Step { number, total, text }) => self.start_step(number, total, text, at),
            Some(Marker::UsingCache) => {
                if let Some(&vertex) = self.open.last() {
                    if self.vertices[vertex].state == State::Running {
                        // Still open: its ` ---> id` line closes it.
                        self.vertices[vertex].state = State::Cached;
                        self.vertices[vertex].ended = Some(at);
                        self.print(Some(vertex), "CACHED".to_owned());
                    }
                }
            }
            Some(Marker::StepDone) => {
                self.unmatched_done += 1;
                if self.unmatched_done >= self.open.len() {
                    // Every open step has had its line.
                    self.unmatched_done = 0;
                    self.close_open(at);
                }
            }
            Some(Marker::Ignored) => {}
            Some(Marker::Built(id)) => {
                let export = self.export_vertex(at);
                // The full id came as `aux` before, from dockerd and Kiln.
                if !self.vertices[export].details.iter().any(|d| d.starts_with("writing image ")) {
                    self.detail(export, format!("writing image {id} done"));
                }
            }
            Some(Marker::Tagged(reference)) => {
                let export = self.export_vertex(at);
                let name = crate::image_pull::full_reference(reference);
                self.detail(export, format!("naming to {name} done"));
            }
            Some(Marker::Warning(text)) => self.warnings.push(text.to_owned()),
            None => self.output(line.to_owned(), line_at),
        }
    }

    fn start_step(&mut self, number: usize, total: usize, text: &str, at: Duration) {
        if let Some(export) = self.export.take() {
            // A second build in the same stream (`--check-reproducible`).
            self.end(export, State::Done, at);
        }
        if self.steps.contains_key(&number) {
            self.steps.clear();
        }
        let is_from = text.get(..5).is_some_and(|word| word.eq_ignore_ascii_case("FROM "));
        let before = number.checked_sub(1).and_then(|n| self.steps.get(&n).copied());
        if let Some(before) = before.filter(|_| !is_from) {
            // The step before, in the same stage, is over; its ` ---> id`
            // line came before this step's.
            if let Some(position) = self.open.iter().position(|&v| v == before) {
                self.open.remove(position);
                self.unmatched_done = self.unmatched_done.saturating_sub(1);
                if self.vertices[before].state == State::Running {
                    self.end(before, State::Done, at);
                }
            }
        }
        self.announced = total;
        let vertex = self.start(format!("[{number}/{total}] {text}"), at);
        self.steps.insert(number, vertex);
        self.open.push(vertex);
    }

    /// The open steps are all over.
    fn close_open(&mut self, at: Duration) {
        for vertex in std::mem::take(&mut self.open) {
            if self.vertices[vertex].state == State::Running {
                self.end(vertex, State::Done, at);
            }
        }
        self.unmatched_done = 0;
    }

    /// The export vertex, started now if it is not yet: the steps are
    /// over once the image is built.
    fn export_vertex(&mut self, at: Duration) -> usize {
        if let Some(export) = self.export {
            return export;
        }
        self.close_open(at);
        let export = self.start("exporting to image".to_owned(), at);
        self.export = Some(export);
        export
    }

    fn start(&mut self, name: String, at: Duration) -> usize {
        let index = self.vertices.len();
        self.vertices.push(Vertex {
            number: index + 1,
            name,
            started: at,
            ended: None,
            state: State::Running,
            tail: VecDeque::new(),
            details: Vec::new(),
        });
        self.items.push(Item::Vertex(index));
        if self.plain {
            self.switch_to(Some(index));
        }
        index
    }

    fn end(&mut self, vertex: usize, state: State, at: Duration) {
        let v = &mut self.vertices[vertex];
        v.state = state;
        let elapsed = at.saturating_sub(v.started);
        v.ended = Some(at);
        match state {
            State::Done => self.print(Some(vertex), format!("DONE {:.1}s", elapsed.as_secs_f64())),
            State::Canceled => self.print(Some(vertex), "CANCELED".to_owned()),
            State::Running | State::Cached | State::Error => {}
        }
    }

    fn detail(&mut self, vertex: usize, detail: String) {
        self.print(Some(vertex), detail.clone());
        self.vertices[vertex].details.push(detail);
    }

    /// A line of output, which came at `at`: the running step's, else a
    /// note of its own.
    fn output(&mut self, text: String, at: Duration) {
        let Some(&vertex) = self.open.last() else {
            self.print(None, text.clone());
            self.items.push(Item::Note(text));
            return;
        };
        let v = &mut self.vertices[vertex];
        let line = LogLine { at: at.saturating_sub(v.started), text };
        if v.tail.len() == TAIL {
            v.tail.pop_front();
        }
        v.tail.push_back(line.clone());
        self.print(Some(vertex), plain_log(&line));
    }

    /// Output that never got its newline ends as a line.
    fn end_partial(&mut self) {
        if !self.partial.is_empty() {
            let text = std::mem::take(&mut self.partial);
            self.output(text.trim_end_matches('\r').to_owned(), self.partial_at);
        }
    }

    /// A plain line about `vertex` (`None`: a note), `#N` added.
    fn print(&mut self, vertex: Option<usize>, text: String) {
        if !self.plain {
            return;
        }
        self.switch_to(vertex);
        match vertex {
            Some(v) => self.lines.push(format!("#{} {text}", self.vertices[v].number)),
            None => self.lines.push(text),
        }
    }

    /// Plain lines go on about `vertex` now: after a blank line, and under
    /// the vertex's `#N name` (again, when its lines were interrupted).
    fn switch_to(&mut self, vertex: Option<usize>) {
        if self.last_printed == Some(vertex) {
            return;
        }
        if self.last_printed.is_some() {
            self.lines.push(String::new());
        }
        self.last_printed = Some(vertex);
        if let Some(v) = vertex {
            let v = &self.vertices[v];
            self.lines.push(format!("#{} {}", v.number, v.name));
        }
    }

    fn print_warnings(&mut self) {
        let summary = self.warnings_summary();
        if self.plain && !summary.is_empty() {
            if self.last_printed.is_some() {
                self.lines.push(String::new());
            }
            self.lines.extend(summary);
            self.last_printed = Some(None);
        }
    }
}

/// An output line as plain prints it: seconds since its step started.
fn plain_log(line: &LogLine) -> String {
    let text = format!("{:.3} {}", line.at.as_secs_f64(), line.text);
    text.trim_end().to_owned()
}

/// A base image pull's progress as a line, as `docker pull` prints it when
/// the output is not a terminal; `None` for byte counts.
fn status_line(message: &BuildMessage) -> Option<String> {
    let status = message.status.as_deref()?;
    if matches!(status, "Downloading" | "Extracting" | "Waiting") {
        return None;
    }
    Some(match message.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_owned(),
    })
}

/// `text` and `time` on one line of `width` columns, the time at the
/// right edge as BuildKit puts it; the text is cut to make room.
fn row(text: &str, time: &str, width: usize) -> String {
    let time_columns = time.len();
    if width < time_columns + 2 {
        return fit(text, width);
    }
    let text = fit(text, width - time_columns - 1);
    let pad = width - time_columns - columns(&text);
    format!("{text}{:pad$}{time}", "")
}

/// `text` cut to at most `width` columns, on a character boundary.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += char_columns(c);
        if used > width {
            break;
        }
        out.push(c);
    }
    out
}

fn columns(text: &str) -> usize {
    text.chars().map(char_columns).sum()
}

/// The columns a terminal gives `c`: two for East Asian wide characters
/// and emoji, none for combining marks. An approximation of Unicode's
/// tables that is right for the text builds print.
fn char_columns(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// What a terminal would show of a line of a step's output, safe to draw
/// inside the display: what follows its last carriage return (a progress
/// bar's latest state), tabs as spaces, and no escape sequences or other
/// control characters, which would move the cursor under the display.
fn visible(text: &str) -> String {
    let text = text.trim_end_matches('\r');
    let text = text.rsplit('\r').next().unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => {
                let to = 8 - columns(&out) % 8;
                out.push_str(&" ".repeat(to));
            }
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The bytes that replace a frame of `previous` lines, drawn last, with
/// `frame`: up to its first line, then each line cleared and written.
/// The line is cleared before it is written: clearing after a line that
/// fills the width would erase its last character on most terminals.
pub(crate) fn redraw(previous: usize, frame: &[String]) -> String {
    let mut out = String::new();
    if previous > 0 {
        let _ = write!(out, "\x1b[{previous}A");
    }
    for line in frame {
        let _ = write!(out, "\r\x1b[K{line}\n");
    }
    // What a longer previous frame left below.
    out.push_str("\x1b[J");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stream(text: &str) -> BuildMessage {
        BuildMessage { stream: Some(text.to_owned()), ..BuildMessage::default() }
    }

    fn aux(id: &str) -> BuildMessage {
        BuildMessage { aux: Some(serde_json::json!({ "ID": id })), ..BuildMessage::default() }
    }

    const ID: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// `messages` fed at their times (ms from the start).
    fn fed(plain: bool, messages: &[(u64, BuildMessage)]) -> Progress {
        let mut progress = Progress::new(plain);
        for (at, message) in messages {
            progress.message(message, ms(*at));
        }
        progress
    }

    /// A build of a cached COPY and a RUN that prints two lines.
    fn two_steps() -> Vec<(u64, BuildMessage)> {
        vec![
            (0, stream("Step 1/3 : FROM busybox\n")),
            (10, stream(" ---> 3f57d9401f8d\n")),
            (10, stream("Step 2/3 : COPY file.txt /\n")),
            (15, stream(" ---> Using cache\n")),
            (15, stream(" ---> 9a1f0d8be7c3\n")),
            (20, stream("Step 3/3 : RUN echo hello && echo world\n")),
            (143, stream("hello\n")),
            (300, stream("world\n")),
            (420, stream(" ---> 7c2b4ea1e0a9\n")),
            (430, aux(ID)),
            (430, stream("Successfully built e3b0c44298fc\n")),
            (431, stream("Successfully tagged app:1\n")),
        ]
    }

    #[test]
    fn plain_numbers_the_steps_marks_the_cached_and_times_the_rest() {
        let mut progress = fed(true, &two_steps());
        progress.finish(ms(450));
        assert_eq!(
            progress.take_lines(),
            [
                "#1 [1/3] FROM busybox",
                "#1 DONE 0.0s",
                "",
                "#2 [2/3] COPY file.txt /",
                "#2 CACHED",
                "",
                "#3 [3/3] RUN echo hello && echo world",
                "#3 0.123 hello",
                "#3 0.280 world",
                "#3 DONE 0.4s",
                "",
                "#4 exporting to image",
                &format!("#4 writing image {ID} done"),
                "#4 naming to docker.io/library/app:1 done",
                "#4 DONE 0.0s",
            ]
        );
        assert!(progress.take_lines().is_empty(), "taken once");
    }

    #[test]
    fn plain_ends_a_failed_step_with_its_error_and_last_lines() {
        let mut progress = fed(
            true,
            &[
                (0, stream("Step 1/2 : FROM busybox\n")),
                (0, stream(" ---> 3f57d9401f8d\n")),
                (100, stream("Step 2/2 : RUN echo working; echo last words; exit 3\n")),
                (200, stream("working\nlast ")),
                (250, stream("words")),
                (300, stream("[WARNING]: empty continuation line in: RUN a\n")),
            ],
        );
        progress.fail("Dockerfile:2: RUN echo …: exit code 3", ms(400));
        let lines = progress.take_lines();
        assert_eq!(
            lines[3..],
            [
                "#2 [2/2] RUN echo working; echo last words; exit 3",
                "#2 0.100 working",
                "#2 0.100 last words",
                "#2 ERROR: Dockerfile:2: RUN echo …: exit code 3",
                "------",
                " > [2/2] RUN echo working; echo last words; exit 3:",
                "0.100 working",
                "0.100 last words",
                "------",
                "",
                " 1 warning found:",
                " - empty continuation line in: RUN a",
            ],
            "{lines:#?}"
        );
    }

    #[test]
    fn output_without_a_final_newline_ends_at_the_next_marker() {
        // Kiln sends the marker in a message of its own; dockerd sends a
        // step's line and its newline in two.
        let mut progress = fed(
            true,
            &[
                (0, stream("Step 1/2 : RUN printf partial")),
                (0, stream("\n")),
                (50, stream("partial")),
                (60, stream(" ---> 0123456789ab\n")),
                (70, stream("Step 2/2 : RUN true\n")),
                (70, stream(" ---> Running in 5e5e5e5e5e5e\n")),
                (80, stream("Removing intermediate container 5e5e5e5e5e5e\n")),
                (90, stream(" ---> ba9876543210\n")),
            ],
        );
        progress.finish(ms(100));
        assert_eq!(
            progress.take_lines(),
            [
                "#1 [1/2] RUN printf partial",
                "#1 0.050 partial",
                "#1 DONE 0.1s",
                "",
                "#2 [2/2] RUN true",
                "#2 DONE 0.0s",
            ]
        );
    }

    /// Two stages at the same time: `a` is steps 1-2, `b` steps 3-4.
    fn parallel_stages() -> Vec<(u64, BuildMessage)> {
        vec![
            (0, stream("Step 1/5 : FROM busybox AS a\n")),
            (0, stream("Step 3/5 : FROM busybox AS b\n")),
            (10, stream(" ---> 3f57d9401f8d\n")),
            (10, stream("Step 4/5 : RUN make b\n")),
            (20, stream(" ---> 3f57d9401f8d\n")),
            (20, stream("Step 2/5 : RUN make a\n")),
            (30, stream("making a\n")),
            (40, stream(" ---> 0123456789ab\n")),
        ]
    }

    /// A frame's lines with their runs of spaces as one: what they say,
    /// not where (the columns are checked by the other tests).
    fn squeezed(frame: &[String]) -> Vec<String> {
        frame.iter().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    }

    #[test]
    fn parallel_stages_end_their_steps_only_when_they_are_sure() {
        let mut progress = fed(true, &parallel_stages());
        assert_eq!(
            squeezed(&progress.frame(ms(45), 40, None)),
            [
                "[+] Building 0.0s (2/5)",
                "=> [1/5] FROM busybox AS a 0.0s",
                "=> [3/5] FROM busybox AS b 0.0s",
                "=> [4/5] RUN make b 0.0s",
                "=> [2/5] RUN make a 0.0s",
                "=> => # making a",
            ],
            "one of the RUNs is done, but which is not known yet"
        );
        progress.message(&stream(" ---> ba9876543210\n"), ms(80));
        progress.message(&stream("Building again without the cache, to compare\n"), ms(90));
        assert_eq!(
            progress.take_lines(),
            [
                "#1 [1/5] FROM busybox AS a",
                "",
                "#2 [3/5] FROM busybox AS b",
                "#2 DONE 0.0s",
                "",
                "#3 [4/5] RUN make b",
                "",
                "#1 [1/5] FROM busybox AS a",
                "#1 DONE 0.0s",
                "",
                "#4 [2/5] RUN make a",
                "#4 0.010 making a",
                "",
                "#3 [4/5] RUN make b",
                "#3 DONE 0.1s",
                "",
                "#4 [2/5] RUN make a",
                "#4 DONE 0.1s",
                "",
                "Building again without the cache, to compare",
            ]
        );
        let frame = progress.frame(ms(100), 80, None);
        assert_eq!(frame[0], "[+] Building 0.1s (4/5)", "step 5 is not seen yet");
        assert_eq!(frame[5], " => Building again without the cache, to compare");
    }

    #[test]
    fn a_failure_goes_to_the_step_its_message_names() {
        let mut progress = fed(false, &parallel_stages()[..6]);
        progress.fail("Dockerfile:4: RUN make b: exit code 2", ms(50));
        let frame = squeezed(&progress.frame(ms(50), 40, None));
        assert_eq!(frame[3], "=> ERROR [4/5] RUN make b 0.0s");
        assert_eq!(frame[4], "=> CANCELED [2/5] RUN make a 0.0s");
    }

    #[test]
    fn pull_progress_shows_as_lines_and_byte_counts_do_not() {
        let message = |status: &str, id: Option<&str>| BuildMessage {
            status: Some(status.to_owned()),
            id: id.map(str::to_owned),
            ..BuildMessage::default()
        };
        assert_eq!(
            status_line(&message("Pull complete", Some("ab"))).as_deref(),
            Some("ab: Pull complete")
        );
        assert_eq!(status_line(&message("Downloading", Some("ab"))), None);
        let mut progress = fed(
            true,
            &[
                (0, stream("Step 1/1 : FROM busybox\n")),
                (100, message("Downloading", Some("ab"))),
                (200, message("Pull complete", Some("ab"))),
            ],
        );
        assert_eq!(progress.take_lines()[1..], ["#1 0.200 ab: Pull complete"]);
    }

    #[test]
    fn the_tty_frame_shows_the_last_lines_of_the_running_step() {
        let mut messages = two_steps();
        messages.truncate(6);
        let mut progress = fed(false, &messages);
        for n in 1..=9 {
            progress.message(&stream(&format!("line {n}\n")), ms(100 + n * 10));
        }
        progress.message(&stream("\x1b[32mDownloading 50%\r\x1b[32mDownloading 75%"), ms(300));
        assert!(progress.take_lines().is_empty(), "no plain lines for tty");
        let frame = progress.frame(ms(1234), 60, None);
        assert_eq!(
            frame,
            [
                "[+] Building 1.2s (2/3)",
                " => [1/3] FROM busybox                                  0.0s",
                " => CACHED [2/3] COPY file.txt /                        0.0s",
                " => [3/3] RUN echo hello && echo world                  1.2s",
                " => => # line 5",
                " => => # line 6",
                " => => # line 7",
                " => => # line 8",
                " => => # line 9",
                " => => # Downloading 75%",
            ]
        );
        assert!(frame.iter().all(|line| line.chars().count() <= 60));

        // A short terminal: the header and the newest lines.
        let short = progress.frame(ms(1234), 60, Some(4));
        assert_eq!(short.len(), 4);
        assert_eq!(short[0], frame[0]);
        assert_eq!(short[1..], frame[7..]);
    }

    #[test]
    fn the_final_tty_frame_keeps_every_step_with_its_time() {
        let mut progress = fed(false, &two_steps());
        progress.finish(ms(460));
        let frame = progress.frame(ms(9999), 70, Some(3));
        assert_eq!(
            frame,
            [
                "[+] Building 0.5s (4/4) FINISHED",
                " => [1/3] FROM busybox                                            0.0s",
                " => CACHED [2/3] COPY file.txt /                                  0.0s",
                " => [3/3] RUN echo hello && echo world                            0.4s",
                " => exporting to image                                            0.0s",
                " => => writing image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e464",
                " => => naming to docker.io/library/app:1 done",
            ],
            "the final frame is not cut to the terminal's height"
        );
    }

    #[test]
    fn a_failed_step_keeps_its_last_lines_in_the_final_frame() {
        let mut progress = fed(
            false,
            &[(0, stream("Step 1/1 : RUN make\n")), (100, stream("compiling\nerror: missing ;\n"))],
        );
        progress.fail("Dockerfile:1: RUN make: exit code 2", ms(500));
        assert_eq!(
            progress.frame(ms(600), 40, None),
            [
                "[+] Building 0.5s (1/1) FINISHED",
                " => ERROR [1/1] RUN make            0.5s",
                " => => # compiling",
                " => => # error: missing ;",
            ]
        );
    }

    #[test]
    fn lines_are_cut_to_the_width_on_character_boundaries() {
        assert_eq!(fit("héllo wörld", 7), "héllo w");
        assert_eq!(fit("日本語のテキスト", 5), "日本", "wide characters take two columns");
        assert_eq!(fit("ab", 10), "ab");
        assert_eq!(fit("anything", 0), "");
        assert_eq!(row(" => [1/2] RUN ÿÿÿÿÿÿÿÿÿÿ", "12.3s", 21), " => [1/2] RUN ÿ 12.3s");
        assert_eq!(row(" => [1/2] RUN x", "12.3s", 25), " => [1/2] RUN x     12.3s");
        assert_eq!(row(" => x", "0.1s", 5), " => x", "too narrow for the time");

        let mut progress = Progress::new(false);
        progress.message(&stream("Step 1/1 : RUN echo 🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀\n"), ms(0));
        progress.message(&stream("ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé\n"), ms(5));
        for width in 0..60 {
            for line in progress.frame(ms(10), width, None) {
                assert!(columns(&line) <= width, "{line:?} is wider than {width}");
            }
        }
        let frame = progress.frame(ms(10), 30, None);
        assert_eq!(frame[1], " => [1/1] RUN echo 🦀🦀🦀 0.0s");
        assert_eq!(frame[2], " => => # ünïcödé ünïcödé ünïcö");
    }

    #[test]
    fn output_is_drawn_without_its_control_characters() {
        assert_eq!(visible("\x1b[1;31mred\x1b[0m\tx"), "red     x");
        assert_eq!(visible("50%\r75%\r"), "75%");
        assert_eq!(visible("\x1b]0;title\x07text\x1b]8;;u\x1b\\link"), "textlink");
        assert_eq!(visible("bell\x07 and back\x08"), "bell and back");
    }

    #[test]
    fn a_redraw_goes_up_over_the_last_frame_and_clears_what_is_left() {
        let frame = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(redraw(0, &frame), "\r\x1b[Ka\n\r\x1b[Kb\n\x1b[J");
        assert_eq!(redraw(3, &frame), "\x1b[3A\r\x1b[Ka\n\r\x1b[Kb\n\x1b[J");
    }
}
