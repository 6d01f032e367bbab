//! Text output in Docker's layout: aligned labels, tables, sizes and ages.

use std::fmt::Write as _;

/// Lines of `label: value` with values aligned at one column, as `docker
/// version` prints them.
#[derive(Debug, Default)]
pub struct Section {
    text: String,
}

impl Section {
    pub fn heading(&mut self, line: &str) -> &mut Self {
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// `indent` spaces, `label:`, padding to column 20, `value`.
    pub fn field(
        &mut self,
        indent: usize,
        label: &str,
        value: impl std::fmt::Display,
    ) -> &mut Self {
        let label = format!("{:indent$}{label}:", "");
        let _ = writeln!(self.text, "{label:<19} {value}");
        self
    }

    /// `indent` spaces, `label: value`, unaligned (as `docker info`).
    pub fn line(&mut self, indent: usize, label: &str, value: impl std::fmt::Display) -> &mut Self {
        let _ = writeln!(self.text, "{:indent$}{label}: {value}", "");
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Bytes in binary units with four significant digits, as docker's
/// `units.BytesSize`: `7.755GiB`, `512B`.
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", four_significant(value), UNITS[unit])
}

/// Bytes in decimal units with three significant digits, as docker's
/// `units.HumanSizeWithPrecision(n, 3)` prints them in image tables:
/// `1.99MB`, `7.5MB`, `512B`.
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 3)
}

/// Bytes in decimal units with four significant digits, as docker's
/// `units.HumanSize` (`system df`, prune totals): `1.987MB`.
pub fn human_size_4(bytes: u64) -> String {
    human_size_with_precision(bytes, 4)
}

fn human_size_with_precision(bytes: u64, digits: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, digits), UNITS[unit])
}

/// How long ago, as docker's `units.HumanDuration`: "Less than a second",
/// "2 minutes", "About an hour", "3 days".
pub fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    let hours = (seconds + 1800) / 3600;
    match seconds {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// "2 minutes ago" for a Unix time, or "N/A" when it is unknown (0).
pub fn ago(created: i64) -> String {
    if created <= 0 {
        return "N/A".to_owned();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format!("{} ago", human_duration(now - created))
}

/// Rows of cells aligned as Go's tabwriter does for docker (cells at least
/// 10 wide, padding 3); the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(line, "{cell:<width$}", width = (widths[i] + 3).max(10));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Go's `%.4g` for 0 ≤ value < 1024: four significant digits, no trailing zeros.
fn four_significant(value: f64) -> String {
    significant(value, 4)
}

/// Go's `%.Ng` for small non-negative values: `digits` significant digits,
/// no trailing zeros.
fn significant(value: f64, digits: usize) -> String {
    let digits_before = if value < 1.0 { 1 } else { (value.log10().floor() as usize) + 1 };
    let decimals = digits.saturating_sub(digits_before);
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1024), "1KiB");
        assert_eq!(bytes_size(8_327_184_384), "7.755GiB");
        assert_eq!(bytes_size(1536 * 1024 * 1024), "1.5GiB");
    }

    #[test]
    fn table_sizes_and_ages_read_like_dockers() {
        assert_eq!(human_size(1_986_560), "1.99MB");
        assert_eq!(human_size(7_500_000), "7.5MB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size_4(1_986_560), "1.987MB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(150), "2 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        let rows = vec![
            vec!["REPOSITORY".to_owned(), "TAG".to_owned()],
            vec!["busybox".to_owned(), "latest".to_owned(), "x".to_owned()],
        ];
        assert_eq!(table(&rows), "REPOSITORY   TAG\nbusybox      latest    x\n");
    }

    #[test]
    fn fields_align_at_one_column() {
        let mut s = Section::default();
        s.field(1, "Version", "0.1.0").field(2, "API version", "1.47");
        assert_eq!(s.text(), " Version:           0.1.0\n  API version:      1.47\n");
    }
}
