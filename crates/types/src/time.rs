//! UTC calendar times from Unix seconds and back, without a date library:
//! enough for RFC 3339 timestamps in configs and state, and Docker's
//! printed forms.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// Seconds since the Unix epoch (negative before 1970).
    pub fn from_unix(secs: i64) -> UtcTime {
        let (days, tod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's days-to-civil.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as u32,
            day: day as u32,
            hour: (tod / 3600) as u32,
            minute: (tod % 3600 / 60) as u32,
            second: (tod % 60) as u32,
        }
    }

    /// Seconds since the Unix epoch.
    pub fn to_unix(self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let y = if month <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `2024-05-06T07:08:09Z`.
    pub fn rfc3339(self) -> String {
        format!("{}Z", self.date_time('T'))
    }

    /// `2024-05-06T07:08:09.000000123Z`.
    pub fn rfc3339_nanos(self, nanos: u32) -> String {
        format!("{}.{nanos:09}Z", self.date_time('T'))
    }

    /// `2024-05-06<sep>07:08:09`.
    pub fn date_time(self, sep: char) -> String {
        format!(
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The current time: Unix seconds and nanoseconds.
pub fn now() -> (i64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos())
}

/// `2024-05-06T07:08:09.123Z` or `…+02:00` → seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if time.len() < 8 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let hour: u32 = time.get(0..2)?.parse().ok()?;
    let minute: u32 = time.get(3..5)?.parse().ok()?;
    let second: u32 = time.get(6..8)?.parse().ok()?;
    let zone = time[8..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.chars().next()? {
                '+' => 1,
                '-' => -1,
                _ => return None,
            };
            let h: i64 = zone.get(1..3)?.parse().ok()?;
            let m: i64 = zone.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let utc = UtcTime { year, month, day, hour, minute, second };
    Some(utc.to_unix() - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_and_parse_back() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_795_910_400 + 3661, "2026-11-29T01:01:01Z"),
            (-86_400, "1969-12-31T00:00:00Z"),
        ] {
            let t = UtcTime::from_unix(secs);
            assert_eq!(t.rfc3339(), text);
            assert_eq!(t.to_unix(), secs);
            assert_eq!(parse_rfc3339(text), Some(secs));
        }
        assert_eq!(UtcTime::from_unix(5).rfc3339_nanos(7), "1970-01-01T00:00:05.000000007Z");
        assert_eq!(parse_rfc3339("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
