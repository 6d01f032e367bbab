//! Docker's display of a pull's or push's JSON messages: on a terminal, one
//! line per layer, redrawn in place as its status and bar change; else one
//! plain line per step, byte counts left out.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use kiln_api_types::JsonMessage;

use crate::output::human_size_4;

/// Statuses that only count bytes: shown as a bar on a terminal, left out
/// of plain output as Docker leaves them out.
const BYTE_COUNTS: [&str; 4] = ["Downloading", "Extracting", "Waiting", "Pushing"];

/// Where the messages go, and the terminal lines each layer holds.
pub(crate) struct TransferDisplay<W: Write> {
    out: W,
    /// `Some(width)` on a terminal.
    width: Option<usize>,
    /// The line each layer id was first printed on, counted from the top.
    lines: BTreeMap<String, usize>,
    /// Lines printed so far.
    printed: usize,
    /// When each layer's bytes started to move, for its speed.
    started: BTreeMap<String, Instant>,
}

impl<W: Write> TransferDisplay<W> {
    /// A display on `out`; `width` is the terminal's when `out` is one.
    pub(crate) fn new(out: W, width: Option<usize>) -> TransferDisplay<W> {
        TransferDisplay { out, width, lines: BTreeMap::new(), printed: 0, started: BTreeMap::new() }
    }

    /// Show one message. A closed output does not stop the transfer, so
    /// write errors are the caller's to ignore.
    pub(crate) fn show(&mut self, message: &JsonMessage) -> io::Result<()> {
        let Some(status) = message.status.as_deref() else { return Ok(()) };
        let id = message.id.as_deref().filter(|id| !id.is_empty());
        let Some(width) = self.width else {
            if BYTE_COUNTS.contains(&status) {
                return Ok(());
            }
            return match id {
                Some(id) => writeln!(self.out, "{id}: {status}"),
                None => writeln!(self.out, "{status}"),
            }
            .and_then(|()| self.out.flush());
        };
        let mut text = match id {
            Some(id) => format!("{id}: {status}"),
            None => status.to_owned(),
        };
        let counts = message.progress_detail.and_then(|d| Some((d.current?, d.total?)));
        match (counts, id) {
            (Some((current, total)), Some(id)) if total > 0 => {
                let started = *self.started.entry(id.to_owned()).or_insert_with(Instant::now);
                text.push(' ');
                text.push_str(&bar(current, total, started.elapsed(), width));
            }
            _ => {
                if let Some(progress) = message.progress.as_deref().filter(|p| !p.is_empty()) {
                    text.push(' ');
                    text.push_str(progress);
                }
            }
        }
        // Only a layer's line is redrawn; a wrapped one would break the
        // cursor arithmetic, so it is cut. Others are printed whole.
        let text = if id.is_some() { fit(&text, width) } else { &text };
        match id.and_then(|id| self.lines.get(id).copied()) {
            Some(line) => {
                // Up to the layer's line, redraw it, and back down.
                let up = self.printed - line;
                write!(self.out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")?;
            }
            None => {
                if let Some(id) = id {
                    self.lines.insert(id.to_owned(), self.printed);
                }
                writeln!(self.out, "{text}")?;
                self.printed += 1;
            }
        }
        self.out.flush()
    }
}

/// A transfer's progress as the docker CLI draws it in `width` columns:
/// a bar when the terminal is wider than 110 columns, then the bytes done
/// and in all, and the speed so far.
fn bar(current: u64, total: u64, elapsed: Duration, width: usize) -> String {
    const BAR: u64 = 50;
    let mut out = String::new();
    if width > 110 {
        let filled = (current.min(total) * BAR).checked_div(total).unwrap_or(0);
        let filled = usize::try_from(filled).unwrap_or(0);
        let head = if filled < BAR as usize { ">" } else { "" };
        out = format!("[{:<50}] ", format!("{}{head}", "=".repeat(filled)));
    }
    out.push_str(&format!("{:>8}/{}", human_size_4(current), human_size_4(total)));
    let seconds = elapsed.as_secs_f64();
    if seconds >= 0.5 {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rate = (current as f64 / seconds) as u64;
        out.push_str(&format!("  {}/s", human_size_4(rate)));
    }
    out
}

/// `text` cut to fit in `width` columns, the last one left free (writing
/// in it makes some terminals wrap).
fn fit(text: &str, width: usize) -> &str {
    match text.char_indices().nth(width.max(1).saturating_sub(1)) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: &str, id: Option<&str>, progress: Option<&str>) -> JsonMessage {
        JsonMessage {
            status: Some(status.to_owned()),
            id: id.map(str::to_owned),
            progress: progress.map(str::to_owned),
            ..JsonMessage::default()
        }
    }

    #[test]
    fn plain_output_has_a_line_per_step_and_no_byte_counts() {
        let mut out = Vec::new();
        let mut display = TransferDisplay::new(&mut out, None);
        for m in [
            message("The push refers to repository [r/x]", None, None),
            message("Preparing", Some("ab"), None),
            message("Pushing", Some("ab"), Some("[==>  ] 1MB/2MB")),
            message("Pushed", Some("ab"), None),
            message("latest: digest: sha256:cd size: 527", None, None),
        ] {
            display.show(&m).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "The push refers to repository [r/x]\nab: Preparing\nab: Pushed\n\
             latest: digest: sha256:cd size: 527\n"
        );
    }

    #[test]
    fn a_terminal_redraws_each_layer_on_its_own_line() {
        let mut out = Vec::new();
        let mut display = TransferDisplay::new(&mut out, Some(80));
        display.show(&message("Preparing", Some("aa"), None)).unwrap();
        display.show(&message("Preparing", Some("bb"), None)).unwrap();
        display.show(&message("Pushing", Some("aa"), Some("[=> ] 1MB/2MB"))).unwrap();
        display.show(&message(&format!("1: digest: {}", "d".repeat(90)), None, None)).unwrap();
        display.show(&message("Pushed", Some("bb"), None)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "aa: Preparing\nbb: Preparing\n\x1b[2A\r\x1b[2Kaa: Pushing [=> ] 1MB/2MB\x1b[2B\r\
                 1: digest: {}\n\x1b[2A\r\x1b[2Kbb: Pushed\x1b[2B\r",
                "d".repeat(90)
            )
        );
    }

    #[test]
    fn bars_show_bytes_and_speed_and_the_bar_only_on_wide_terminals() {
        let narrow = bar(1_200_000, 5_000_000, Duration::from_secs(2), 80);
        assert_eq!(narrow, "   1.2MB/5MB  600kB/s");
        let wide = bar(2_500_000, 5_000_000, Duration::from_millis(100), 120);
        assert_eq!(wide, format!("[{:<50}]    2.5MB/5MB", format!("{}>", "=".repeat(25))));
        let done = bar(5_000_000, 5_000_000, Duration::ZERO, 120);
        assert!(done.starts_with(&format!("[{}]", "=".repeat(50))), "{done}");
    }

    #[test]
    fn lines_are_cut_to_the_terminal_width_on_a_character_boundary() {
        assert_eq!(fit("abcdef", 4), "abc");
        assert_eq!(fit("ééé", 3), "éé");
        assert_eq!(fit("ab", 80), "ab");
    }
}
