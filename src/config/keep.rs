//! [`Keep`]: a span in calendar units (`"7y"`, `"18months"`, `"400d"`), the type of
//! `[archive] keep` and of `object_lock.retain`. humantime has no years or months, and a
//! retention rule is written in them. Parsed once, as the file is read.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepError {
    #[error(
        "invalid retention `{0}`: use a number and a unit (y, mo/months, w, d, h), e.g. \"7y\", \"18months\", \"400d\""
    )]
    Parse(String),
    #[error("invalid retention `{0}`: `m` is ambiguous; write `mo` for months")]
    AmbiguousMinutes(String),
}

/// A retention span in calendar units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub months: u32,
    pub days: u64,
    pub hours: u64,
}

impl Keep {
    /// Parses `"7y"`, `"18months"`, `"400d"`, `"1y 6mo"`, `"2w"`, `"36h"`.
    pub fn parse(s: &str) -> Result<Self, KeepError> {
        let bad = || KeepError::Parse(s.to_owned());
        let mut keep = Self::default();
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = rest[..unit_len].to_ascii_lowercase();
            rest = rest[unit_len..].trim_start();
            let months = |k: u64| u32::try_from(n.saturating_mul(k)).map_err(|_| bad());
            match unit.as_str() {
                "y" | "yr" | "yrs" | "year" | "years" => keep.months += months(12)?,
                "mo" | "mon" | "month" | "months" => keep.months += months(1)?,
                "w" | "week" | "weeks" => keep.days += n.saturating_mul(7),
                "d" | "day" | "days" => keep.days += n,
                "h" | "hour" | "hours" => keep.hours += n,
                "m" => return Err(KeepError::AmbiguousMinutes(s.to_owned())),
                _ => return Err(bad()),
            }
        }
        if keep == Self::default() {
            return Err(bad());
        }
        Ok(keep)
    }

    /// The end of the span begun at `from` (Object Lock's retain-until date).
    pub fn after(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        let (days, hours) = self.days_hours();
        from.checked_add_months(Months::new(self.months))
            .and_then(|t| t.checked_add_signed(chrono::TimeDelta::try_days(days)?))
            .and_then(|t| t.checked_add_signed(chrono::TimeDelta::try_hours(hours)?))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Items created before this time are older than the span.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let (days, hours) = self.days_hours();
        now.checked_sub_months(Months::new(self.months))
            .and_then(|t| t.checked_sub_signed(chrono::TimeDelta::try_days(days)?))
            .and_then(|t| t.checked_sub_signed(chrono::TimeDelta::try_hours(hours)?))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Beyond chrono's range they saturate, and so does the date they move.
    fn days_hours(&self) -> (i64, i64) {
        (
            i64::try_from(self.days).unwrap_or(i64::MAX / 2),
            i64::try_from(self.hours).unwrap_or(i64::MAX / 2),
        )
    }
}

impl FromStr for Keep {
    type Err = KeepError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The span in the largest whole units (`84 months` → `7y`), as `check-config` shows it.
impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let (years, months) = (self.months / 12, self.months % 12);
        if years > 0 {
            parts.push(format!("{years}y"));
        }
        if months > 0 {
            parts.push(format!("{months}mo"));
        }
        if self.days > 0 {
            parts.push(format!("{}d", self.days));
        }
        if self.hours > 0 {
            parts.push(format!("{}h", self.hours));
        }
        f.write_str(&parts.join(" "))
    }
}

impl Serialize for Keep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn spans_in_years_months_weeks_days_and_hours_parse() {
        assert_eq!(Keep::parse("7y").unwrap().months, 84);
        assert_eq!(Keep::parse("18months").unwrap().months, 18);
        assert_eq!(Keep::parse("400d").unwrap().days, 400);
        let k = Keep::parse("1y 6mo 2w 1d 3h").unwrap();
        assert_eq!((k.months, k.days, k.hours), (18, 15, 3));
        for bad in ["", "7", "y", "7 parsecs", "-1y", "0d", "1.5y"] {
            assert!(Keep::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Keep::parse("6m"),
            Err(KeepError::AmbiguousMinutes(_))
        ));
    }

    #[test]
    fn a_span_shows_in_its_largest_whole_units_and_reads_back_the_same() {
        for (written, shown) in [
            ("7y", "7y"),
            ("18months", "1y 6mo"),
            ("2w", "14d"),
            ("1y 6mo 2w 1d 3h", "1y 6mo 15d 3h"),
        ] {
            let keep = Keep::parse(written).unwrap();
            assert_eq!(keep.to_string(), shown);
            assert_eq!(Keep::parse(shown).unwrap(), keep);
        }
    }

    #[test]
    fn the_cutoff_counts_calendar_months() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();
        let cut = Keep::parse("1mo").unwrap().cutoff(now);
        assert_eq!(cut, Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap());
        let cut = Keep::parse("7y").unwrap().cutoff(now);
        assert_eq!(cut, Utc.with_ymd_and_hms(2019, 3, 31, 12, 0, 0).unwrap());
    }

    #[test]
    fn the_end_of_a_span_counts_forward_the_same_way() {
        let from = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        let end = Keep::parse("1mo 1d 1h").unwrap().after(from);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 1, 13, 0, 0).unwrap());
        let end = Keep::parse("7y").unwrap().after(from);
        assert_eq!(end, Utc.with_ymd_and_hms(2033, 1, 31, 12, 0, 0).unwrap());
    }
}
