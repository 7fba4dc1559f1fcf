//! UTC calendar formatting for headers and log file names, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    pub micros: u32,
}

impl Utc {
    pub fn from_system(t: SystemTime) -> Utc {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Utc::from_unix(d.as_secs() as i64, d.subsec_micros())
    }

    pub fn now() -> Utc {
        Utc::from_system(SystemTime::now())
    }

    /// Howard Hinnant's days-to-civil algorithm.
    pub fn from_unix(secs: i64, micros: u32) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            min: rem / 60 % 60,
            sec: rem % 60,
            micros,
        }
    }

    /// `2026-11-25T15:06:00.123456Z`
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.year, self.month, self.day, self.hour, self.min, self.sec, self.micros
        )
    }

    /// `20261125T150600.123456Z`: sorts as time does, safe in a file name.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z",
            self.year, self.month, self.day, self.hour, self.min, self.sec, self.micros
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Utc::from_unix(0, 0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Utc::from_unix(1_700_000_000, 5).rfc3339(),
            "2023-11-14T22:13:20.000005Z"
        );
        assert_eq!(
            Utc::from_unix(951_782_400, 0).compact(),
            "20000229T000000.000000Z"
        );
        assert_eq!(Utc::from_unix(-1, 0).rfc3339(), "1969-12-31T23:59:59.000000Z");
    }
}
