//! Text output in Docker's layout: aligned labels, tables, sizes, ages,
//! times and indented JSON.

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
    table_with_min_width(rows, 10)
}

/// [`table`] with cells at least `min_width` wide (`docker top` uses 20).
pub fn table_with_min_width(rows: &[Vec<String>], min_width: usize) -> String {
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
                let _ = write!(line, "{cell:<width$}", width = (widths[i] + 3).max(min_width));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// At most `max` characters, the last one `…` when cut (docker's
/// `formatter.Ellipsis`).
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `time.Time.String()` of a Unix time, in UTC:
/// `2023-11-14 22:13:20 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01; the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// JSON with four-space indentation, fields in the model's order, as
/// docker prints inspect output.
pub fn indented_json(value: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut serializer).is_err() {
        return "[]".to_owned();
    }
    String::from_utf8(out).unwrap_or_default()
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

/// Ask `[y/N]` on the terminal, as the docker CLI's prune commands do;
/// true for yes.
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, Write as _};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
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
    fn cut_texts_times_and_json_read_like_dockers() {
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(go_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        for days in [-800_000, -1, 0, 59, 60, 19_675, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            indented_json(&serde_json::json!([{"Id": "x"}])),
            "[\n    {\n        \"Id\": \"x\"\n    }\n]"
        );
        let rows =
            vec![vec!["UID".to_owned(), "PID".to_owned()], vec!["root".to_owned(), "1".to_owned()]];
        assert_eq!(
            table_with_min_width(&rows, 20),
            "UID                 PID\nroot                1\n"
        );
    }

    #[test]
    fn fields_align_at_one_column() {
        let mut s = Section::default();
        s.field(1, "Version", "0.1.0").field(2, "API version", "1.47");
        assert_eq!(s.text(), " Version:           0.1.0\n  API version:      1.47\n");
    }
}
