//! Any text: parsing, then what a builder does with the result, never panics.
#![no_main]

use std::collections::HashMap;

use kiln_dockerfile::{expand_word, expand_words, parse, referenced_variables, InstructionKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = HashMap::from([("A".to_owned(), "a b".to_owned())]);
    let _ = expand_word(text, &env, '\\');
    let _ = expand_words(text, &env, '`');
    let _ = referenced_variables(text, '\\');
    let Ok(file) = parse(text) else { return };
    let escape = file.directives.escape;
    for instruction in file.stages.iter().flat_map(|s| &s.instructions) {
        match &instruction.kind {
            InstructionKind::Run(run) => {
                let _ = run.shell_script();
                for mount in &run.mounts {
                    let _ = mount.expand(&env, escape);
                }
            }
            InstructionKind::Env(pairs) | InstructionKind::Label(pairs) => {
                for pair in pairs {
                    let _ = expand_word(&pair.value, &env, escape);
                }
            }
            _ => {}
        }
    }
});
