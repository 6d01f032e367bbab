//! Names that no other test (or test run) uses.

use std::fmt::Write as _;
use std::io::Read as _;

/// The prefix of every name a test creates, so leftovers are easy to find.
pub const PREFIX: &str = "kiln-t-";

/// A fresh name `kiln-t-<10 random hex digits>` for containers, dirs, cgroups,
/// links. Valid as a container id, a hostname and a file name.
pub fn unique_name() -> String {
    let mut bytes = [0u8; 5];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap_or_else(|err| panic!("cannot read /dev/urandom: {err}"));
    bytes.iter().fold(PREFIX.to_owned(), |mut name, b| {
        let _ = write!(name, "{b:02x}");
        name
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_name_is_prefix_and_ten_lowercase_hex_digits() {
        let name = unique_name();
        let suffix = name.strip_prefix("kiln-t-").expect("prefix");
        assert_eq!(suffix.len(), 10, "{name}");
        assert!(suffix.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{name}");
    }

    #[test]
    fn unique_names_differ() {
        let names: std::collections::HashSet<String> = (0..100).map(|_| unique_name()).collect();
        assert_eq!(names.len(), 100);
    }
}
