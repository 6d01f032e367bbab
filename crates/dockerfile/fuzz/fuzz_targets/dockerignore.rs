//! Any ignore file and path: matching never panics or runs away.
#![no_main]

use kiln_dockerfile::ignore::Rules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The last line is the path to match, the rest the ignore file.
    let (rules, path) = text.rsplit_once('\n').unwrap_or((text, "a/b"));
    if let Ok(rules) = Rules::parse(rules) {
        let _ = rules.is_excluded(path);
        let _ = rules.can_skip_dir(path);
    }
});
