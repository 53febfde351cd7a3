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

/// A duration for messages, rounded to whole seconds: `1h 5m 3s`.
pub fn human(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn human_durations_drop_fractions() {
        assert_eq!(human(Duration::from_millis(65_400)), "1m 5s");
    }
}
