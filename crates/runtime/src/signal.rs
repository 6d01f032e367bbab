//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`,
//! `SIGRTMIN+3`.

use std::str::FromStr;

use crate::error::RuntimeError;

pub fn parse_signal(text: &str) -> Result<i32, RuntimeError> {
    let invalid = || RuntimeError::InvalidSignal { name: text.to_owned() };
    let (rtmin, rtmax) = kiln_sys::process::realtime_signals();
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=rtmax).contains(&n) { Ok(n) } else { Err(invalid()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, RuntimeError> {
        let offset: i32 = if rest.is_empty() { 0 } else { rest.parse().map_err(|_| invalid())? };
        let n = base + sign * offset;
        if (rtmin..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rtmin, rest.trim_start_matches('+'), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rtmax, rest.trim_start_matches('-'), -1);
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime_signals_parse() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        let (rtmin, rtmax) = kiln_sys::process::realtime_signals();
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), rtmin + 3);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), rtmax - 1);
        for bad in ["", "FOO", "0", "65", "-1", "RTMIN+99"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
