//! Text output in Docker's layout: aligned labels and binary sizes.

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

/// Go's `%.4g` for 0 ≤ value < 1024: four significant digits, no trailing zeros.
fn four_significant(value: f64) -> String {
    let digits_before = if value < 1.0 { 1 } else { (value.log10().floor() as usize) + 1 };
    let decimals = 4usize.saturating_sub(digits_before);
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
    fn fields_align_at_one_column() {
        let mut s = Section::default();
        s.field(1, "Version", "0.1.0").field(2, "API version", "1.47");
        assert_eq!(s.text(), " Version:           0.1.0\n  API version:      1.47\n");
    }
}
