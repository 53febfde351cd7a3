//! How old a file is by its modification time. A time in the future (a
//! skewed clock, a file copied from another machine) is its own case, so
//! that it is reported instead of looking "fresh forever".

use std::time::{Duration, SystemTime};

/// The age of a modification time relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Modified this long ago.
    Past(Duration),
    /// Modified this far in the future.
    Future(Duration),
}

/// Futures closer than this are taken as now: file systems with coarse
/// timestamps and a little clock drift are normal.
pub const SKEW_TOLERANCE: Duration = Duration::from_secs(2);

impl Age {
    /// `mtime` seen from `now`.
    pub fn of(mtime: SystemTime, now: SystemTime) -> Age {
        match now.duration_since(mtime) {
            Ok(age) => Age::Past(age),
            Err(e) if e.duration() <= SKEW_TOLERANCE => Age::Past(Duration::ZERO),
            Err(e) => Age::Future(e.duration()),
        }
    }

    /// Whether the file is older than `limit` (never for a future time).
    pub fn older_than(self, limit: Duration) -> bool {
        matches!(self, Age::Past(age) if age > limit)
    }
}

/// The longest duration accepted anywhere (manifest or command line): 100
/// years, beyond any real age or wait, and small enough that adding it to
/// the current time never overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 86_400);

/// Parses a duration (`30s`, `10m`, `14d`), refusing one longer than
/// `MAX_DURATION`. The error says why, without the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > MAX_DURATION {
        return Err("longer than the limit of 100 years".into());
    }
    Ok(duration)
}

/// A duration for messages: its two largest units, `30d 2h`, `1h 5m`,
/// `42s` (a whole number of days shows alone: `14d`).
pub fn human(duration: Duration) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut left = duration.as_secs();
    let mut parts = Vec::new();
    for (size, name) in UNITS {
        let count = left / size;
        left %= size;
        if count > 0 || !parts.is_empty() {
            parts.push((count, name));
        }
        if parts.len() == 2 {
            break;
        }
    }
    let shown: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, u)| format!("{n}{u}")).collect();
    if shown.is_empty() {
        return "0s".into();
    }
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_the_limit_are_refused() {
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("100years").is_ok());
        assert!(parse_duration("101years").unwrap_err().contains("100 years"));
        assert!(parse_duration("18446744073709551615s").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn past_and_future_times_are_told_apart() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(Age::of(now - hour, now), Age::Past(hour));
        assert_eq!(Age::of(now + hour, now), Age::Future(hour));
        assert_eq!(Age::of(now + Duration::from_secs(1), now), Age::Past(Duration::ZERO));
    }

    #[test]
    fn a_future_time_is_never_older_than_a_limit() {
        let now = SystemTime::now();
        assert!(Age::of(now - Duration::from_secs(600), now).older_than(Duration::from_secs(60)));
        assert!(!Age::of(now + Duration::from_secs(600), now).older_than(Duration::ZERO));
    }

    #[test]
    fn human_durations_keep_their_two_largest_units() {
        assert_eq!(human(Duration::from_millis(65_400)), "1m 5s");
        assert_eq!(human(Duration::from_secs(14 * 86_400)), "14d");
        assert_eq!(human(Duration::from_secs(30 * 86_400 + 3)), "30d");
        assert_eq!(human(Duration::from_secs(3603)), "1h");
        assert_eq!(human(Duration::from_secs(3723)), "1h 2m");
        assert_eq!(human(Duration::from_millis(300)), "0s");
    }
}
