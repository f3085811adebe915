//! Time partitions of a model's table: `partition_by = <column>` (a date or timestamp column
//! of the query's output) with `partition_grain = day | hour`. A partition is named by its
//! start in UTC (`2026-11-25`, `2026-11-25T05`); a partition run recomputes the rows whose
//! column falls in `[start, end)` and replaces that partition's files in one commit.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// The most partitions one backfill may name: a typo in a year (`--from 2206-...`) must not
/// queue a million runs.
pub const MAX_PARTITIONS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    Hour,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Hour => "hour",
        }
    }

    pub fn parse(text: &str) -> Option<Grain> {
        match text {
            "day" | "daily" => Some(Grain::Day),
            "hour" | "hourly" => Some(Grain::Hour),
            _ => None,
        }
    }

    /// A partition's length in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Grain::Day => 86_400_000_000,
            Grain::Hour => 3_600_000_000,
        }
    }
}

/// How a model's table is partitioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    pub column: String,
    pub grain: Grain,
}

/// One partition: the `grain`-long interval that starts at `start` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionKey {
    start: NaiveDateTime,
    grain_hours: u8,
}

impl PartitionKey {
    fn grain(&self) -> Grain {
        if self.grain_hours == 1 {
            Grain::Hour
        } else {
            Grain::Day
        }
    }

    fn new(start: NaiveDateTime, grain: Grain) -> PartitionKey {
        PartitionKey {
            start,
            grain_hours: match grain {
                Grain::Day => 24,
                Grain::Hour => 1,
            },
        }
    }

    /// Reads a partition name: `2026-11-25` for a day; `2026-11-25T05` (or with `:00`, or a
    /// space for the `T`) for an hour.
    pub fn parse(grain: Grain, text: &str) -> Result<PartitionKey, String> {
        let text = text.trim();
        let start = match grain {
            Grain::Day => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(NaiveTime::MIN))
                .map_err(|_| {
                    format!("`{text}` is not a day partition; expected a date like 2026-11-25")
                })?,
            Grain::Hour => {
                let normalized = text.replacen(' ', "T", 1);
                let hour = normalized.split(':').next().unwrap_or_default();
                NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| {
                        format!(
                            "`{text}` is not an hour partition; expected a date and hour like 2026-11-25T05"
                        )
                    })?
            }
        };
        Ok(PartitionKey::new(start, grain))
    }

    /// The partition holding the instant `micros` (microseconds since the epoch, UTC).
    pub fn of_micros(grain: Grain, micros: i64) -> Option<PartitionKey> {
        let bucket = micros.div_euclid(grain.micros());
        let start = DateTime::<Utc>::from_timestamp_micros(bucket.checked_mul(grain.micros())?)?;
        Some(PartitionKey::new(start.naive_utc(), grain))
    }

    /// The partition's start, in microseconds since the epoch (UTC).
    pub fn start_micros(&self) -> i64 {
        self.start.and_utc().timestamp_micros()
    }

    /// Where the next partition starts, in microseconds since the epoch (UTC).
    pub fn end_micros(&self) -> i64 {
        self.start_micros() + self.grain().micros()
    }

    /// The partition's start day, in days since the epoch (for a `date` column).
    pub fn start_days(&self) -> i64 {
        self.start_micros().div_euclid(Grain::Day.micros())
    }

    fn next(&self) -> Option<PartitionKey> {
        let step = match self.grain() {
            Grain::Day => Duration::days(1),
            Grain::Hour => Duration::hours(1),
        };
        Some(PartitionKey::new(
            self.start.checked_add_signed(step)?,
            self.grain(),
        ))
    }
}

impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.grain() {
            Grain::Day => write!(f, "{}", self.start.format("%Y-%m-%d")),
            Grain::Hour => write!(f, "{}", self.start.format("%Y-%m-%dT%H")),
        }
    }
}

/// Every partition from `from` to `to`, both included, in order.
pub fn partition_range(grain: Grain, from: &str, to: &str) -> Result<Vec<PartitionKey>, String> {
    let first = PartitionKey::parse(grain, from)?;
    let last = PartitionKey::parse(grain, to)?;
    if last < first {
        return Err(format!("--to {to} is before --from {from}"));
    }
    let mut keys = vec![first];
    let mut at = first;
    while at < last {
        at = at
            .next()
            .ok_or_else(|| format!("{to} is out of the range of dates"))?;
        keys.push(at);
        if keys.len() > MAX_PARTITIONS {
            return Err(format!(
                "{from} to {to} is more than {MAX_PARTITIONS} {} partitions",
                grain.as_str()
            ));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_hours_parse_and_print_back() {
        let day = PartitionKey::parse(Grain::Day, "2026-11-25").expect("day");
        assert_eq!(day.to_string(), "2026-11-25");
        assert_eq!(day.end_micros() - day.start_micros(), 86_400_000_000);
        for text in [
            "2026-11-25T05",
            "2026-11-25 05",
            "2026-11-25T05:00",
            "2026-11-25T05:00:00",
        ] {
            let hour = PartitionKey::parse(Grain::Hour, text).expect(text);
            assert_eq!(hour.to_string(), "2026-11-25T05");
        }
        assert!(PartitionKey::parse(Grain::Day, "2026-13-01").is_err());
        assert!(PartitionKey::parse(Grain::Day, "25/11/2026").is_err());
        assert!(PartitionKey::parse(Grain::Hour, "2026-11-25T25").is_err());
    }

    #[test]
    fn an_instant_falls_in_the_partition_that_starts_at_or_before_it() {
        let day = PartitionKey::parse(Grain::Day, "2026-11-25").expect("day");
        assert_eq!(
            PartitionKey::of_micros(Grain::Day, day.start_micros()),
            Some(day)
        );
        assert_eq!(
            PartitionKey::of_micros(Grain::Day, day.end_micros() - 1),
            Some(day)
        );
        // Before 1970 too: the bucket rounds down, not towards zero.
        let old = PartitionKey::parse(Grain::Day, "1969-12-31").expect("day");
        assert_eq!(PartitionKey::of_micros(Grain::Day, -1), Some(old));
        assert_eq!(old.start_days(), -1);
    }

    #[test]
    fn ranges_include_both_ends_and_cross_months() {
        let keys = partition_range(Grain::Day, "2026-02-27", "2026-03-02").expect("range");
        let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
        );
        let hours = partition_range(Grain::Hour, "2026-11-25T22", "2026-11-26T01").expect("range");
        assert_eq!(hours.len(), 4);
        assert!(partition_range(Grain::Day, "2026-03-02", "2026-03-01").is_err());
        assert!(partition_range(Grain::Hour, "2026-01-01T00", "2040-01-01T00").is_err());
    }
}
