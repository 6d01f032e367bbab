//! Container names: checked as Docker checks them, and made up when the
//! user gives none (`adjective_surname`, like Docker's).

use std::fmt::Write as _;

/// Whether `name` (without a leading `/`) is a valid container name:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const ADJECTIVES: [&str; 32] = [
    "admiring", "agitated", "amazing", "blissful", "bold", "brave", "busy", "clever", "cool",
    "dazzling", "eager", "ecstatic", "elegant", "epic", "festive", "focused", "gallant", "happy",
    "hopeful", "jolly", "keen", "loving", "modest", "nifty", "peaceful", "quirky", "relaxed",
    "serene", "sharp", "stoic", "vibrant", "zealous",
];

const SURNAMES: [&str; 32] = [
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "faraday", "fermi",
    "gauss", "hamilton", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport", "lovelace",
    "maxwell", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson",
    "torvalds", "turing", "volta", "wozniak", "yalow",
];

/// A made-up name from `seed`; `attempt` > 0 appends a number, as Docker
/// does when the plain name is taken.
pub fn generate(seed: u64, attempt: u32) -> String {
    let adjective = ADJECTIVES[(seed % ADJECTIVES.len() as u64) as usize];
    let surname = SURNAMES[((seed >> 8) % SURNAMES.len() as u64) as usize];
    let mut name = format!("{adjective}_{surname}");
    if attempt > 0 {
        let _ = write!(name, "{attempt}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_pattern() {
        assert!(is_valid("web"));
        assert!(is_valid("a.b-c_1"));
        assert!(!is_valid("a"));
        assert!(!is_valid("-a"));
        assert!(!is_valid("a/b"));
        assert!(!is_valid(""));
    }

    #[test]
    fn generated_names_are_valid() {
        for seed in [0, 1, 255, 65_535, u64::MAX] {
            assert!(is_valid(&generate(seed, 0)));
            assert!(is_valid(&generate(seed, 3)));
        }
    }
}
