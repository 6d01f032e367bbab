//! `kiln logs`: a container's output so far (and with `-f` as it comes),
//! its stdout to our stdout and its stderr to our stderr.
//!
//! `--since` and `--until` take what the docker CLI takes (RFC 3339 times,
//! Unix timestamps, and Go durations such as `10m` or `1h30m` back from
//! now) and send the API's Unix seconds, as docker's `GetTimestamp` does.

use std::io::Write as _;

use clap::Args;
use kiln_client::{LogsOptions, StreamKind};

use crate::output::days_from_civil;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs (accepted; Kiln adds none)
    #[arg(long)]
    details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative
    /// (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "LINES")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or
    /// relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

/// A `--since`/`--until` value the docker CLI would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("failed to parse value as time or duration: {value:?}")]
    Unparsable { value: String },
    #[error("cannot parse {value:?} as a time: expected RFC 3339 such as 2013-01-02T13:23:37Z")]
    BadTime { value: String },
}

pub async fn run(global: &GlobalArgs, args: &LogsArgs) -> anyhow::Result<()> {
    let now = now();
    let since = args.since.as_deref().map(|v| api_timestamp(v, now)).transpose()?;
    let until = args.until.as_deref().map(|v| api_timestamp(v, now)).transpose()?;
    let client = crate::connect(global).await?;
    let container = client.container_inspect(&args.container).await?;
    let options = LogsOptions {
        follow: args.follow,
        stdout: true,
        stderr: true,
        timestamps: args.timestamps,
        since,
        until,
        tail: Some(args.tail.clone()),
    };
    let mut logs = client.container_logs(&args.container, &options, container.config.tty).await?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    while let Some((kind, bytes)) = logs.next().await? {
        match kind {
            StreamKind::Stdout | StreamKind::Stdin => {
                stdout.write_all(&bytes)?;
                stdout.flush()?;
            }
            StreamKind::Stderr | StreamKind::SystemErr => stderr.write_all(&bytes)?,
        }
    }
    Ok(())
}

/// Now, as (seconds, nanoseconds) since the Unix epoch.
fn now() -> (i64, u32) {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or((0, 0), |d| (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()))
}

/// docker-compat: a `--since`/`--until` value as the API's Unix seconds,
/// as docker's `timetypes.GetTimestamp`: a duration counts back from `now`
/// (`"1700000000"`); a time becomes `"1700000000.000000000"`; a Unix
/// timestamp passes as it is. A time without a zone is taken as UTC (the
/// docker CLI takes it in its local zone).
pub(crate) fn api_timestamp(value: &str, now: (i64, u32)) -> Result<String, TimestampError> {
    if value != "0" {
        if let Some(nanos) = go_duration(value) {
            let now_nanos = i128::from(now.0) * 1_000_000_000 + i128::from(now.1);
            let then = (now_nanos - nanos).div_euclid(1_000_000_000);
            return Ok(then.to_string());
        }
    }
    if let Some((seconds, nanos)) = rfc3339(value) {
        return Ok(format!("{seconds}.{nanos:09}"));
    }
    if value.contains('-') {
        return Err(TimestampError::BadTime { value: value.to_owned() });
    }
    let (seconds, fraction) = match value.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (value, None),
    };
    let valid = seconds.parse::<i64>().is_ok() && fraction.is_none_or(|f| f.parse::<i64>().is_ok());
    if !valid {
        return Err(TimestampError::Unparsable { value: value.to_owned() });
    }
    Ok(value.to_owned())
}

/// Go's `time.ParseDuration`: `300ms`, `-1.5h`, `1h30m`; nanoseconds.
fn go_duration(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole: i128 = if whole_len > 0 { rest[..whole_len].parse().ok()? } else { 0 };
        rest = &rest[whole_len..];
        let (mut fraction, mut scale, mut fraction_len) = (0_i128, 1_i128, 0);
        if let Some(after) = rest.strip_prefix('.') {
            fraction_len = after.bytes().take_while(u8::is_ascii_digit).count();
            for digit in after[..fraction_len].bytes().take(18) {
                fraction = fraction * 10 + i128::from(digit - b'0');
                scale *= 10;
            }
            rest = &after[fraction_len..];
        }
        if whole_len == 0 && fraction_len == 0 {
            return None;
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(whole.checked_mul(unit)? + fraction * unit / scale)?;
    }
    Some(if negative { -total } else { total })
}

/// An RFC 3339 time, or the shorter forms docker takes (`2006-01-02`,
/// `2006-01-02T15`, `2006-01-02T15:04`, with or without fraction and zone):
/// Unix (seconds, nanoseconds).
fn rfc3339(text: &str) -> Option<(i64, u32)> {
    let digits = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let date = text.get(..10)?;
    let (year, month, day) =
        (digits(date.get(..4)?)?, digits(date.get(5..7)?)?, digits(date.get(8..10)?)?);
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut rest = &text[10..];
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0_u32);
    if let Some(time) = rest.strip_prefix('T') {
        hour = digits(time.get(..2)?)?;
        rest = &time[2..];
        if let Some(after) = rest.strip_prefix(':') {
            minute = digits(after.get(..2)?)?;
            rest = &after[2..];
            if let Some(after) = rest.strip_prefix(':') {
                second = digits(after.get(..2)?)?;
                rest = &after[2..];
                if let Some(after) = rest.strip_prefix(['.', ',']) {
                    let len = after.bytes().take_while(u8::is_ascii_digit).count();
                    if len == 0 || len > 9 {
                        return None;
                    }
                    let padded = format!("{:0<9}", &after[..len]);
                    nanos = padded.parse().ok()?;
                    rest = &after[len..];
                }
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = zone[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (digits(h)? * 3600 + digits(m)? * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((seconds, nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: (i64, u32) = (1_700_000_000, 500_000_000);

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(api_timestamp("10m", NOW).expect("10m"), "1699999400");
        assert_eq!(api_timestamp("1h30m", NOW).expect("1h30m"), "1699994600");
        assert_eq!(api_timestamp("1.5h", NOW).expect("1.5h"), "1699994600");
        assert_eq!(api_timestamp("300ms", NOW).expect("ms"), "1700000000");
        assert_eq!(api_timestamp("2s", NOW).expect("2s"), "1699999998");
        assert_eq!(go_duration("-1m"), Some(-60_000_000_000));
        assert_eq!(go_duration("1"), None);
        assert_eq!(go_duration("m"), None);
        assert_eq!(go_duration("1x"), None);
    }

    #[test]
    fn rfc3339_times_become_seconds_and_nanoseconds() {
        assert_eq!(api_timestamp("2023-11-14T22:13:20Z", NOW).expect("z"), "1700000000.000000000");
        assert_eq!(
            api_timestamp("2023-11-14T23:13:20.25+01:00", NOW).expect("offset"),
            "1700000000.250000000"
        );
        assert_eq!(
            api_timestamp("2023-11-14T17:13:20-05:00", NOW).expect("negative offset"),
            "1700000000.000000000"
        );
        assert_eq!(api_timestamp("2023-11-14", NOW).expect("date"), "1699920000.000000000");
        assert_eq!(api_timestamp("2023-11-14T22", NOW).expect("hour"), "1699999200.000000000");
        assert_eq!(api_timestamp("2023-11-14T22:13", NOW).expect("min"), "1699999980.000000000");
    }

    #[test]
    fn unix_timestamps_pass_and_nonsense_fails() {
        assert_eq!(api_timestamp("1700000000", NOW).expect("unix"), "1700000000");
        assert_eq!(api_timestamp("1700000000.5", NOW).expect("unix"), "1700000000.5");
        assert_eq!(api_timestamp("0", NOW).expect("zero"), "0");
        assert!(matches!(api_timestamp("2023-13-01", NOW), Err(TimestampError::BadTime { .. })));
        assert!(matches!(api_timestamp("yesterday", NOW), Err(TimestampError::Unparsable { .. })));
        assert!(matches!(api_timestamp("", NOW), Err(TimestampError::Unparsable { .. })));
    }
}
