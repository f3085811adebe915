//! Which schedule tick is due. Ticks are instants (UTC), computed in the job's time zone by
//! croner, which runs a fixed-time job once across a DST change (the earlier instant of a
//! repeated hour; the first instant after a skipped one). A tick is queued at most once (the
//! state store keys it by its instant), so a restart or a clock stepped back never doubles it,
//! and a tick is never lost: the next one is always computed from the last one queued.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

use weir_model::CatchUp;

/// What to do about a job's schedule now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing until this instant.
    Wait(DateTime<Utc>),
    /// Queue a run for this tick.
    Run(DateTime<Utc>),
    /// Record this tick as passed without running (missed ticks under `catch_up = "skip"`).
    Skip(DateTime<Utc>),
    /// The expression has no future occurrence.
    Never,
}

/// How late a tick may be and still count as on time rather than missed (`catch_up` applies
/// to missed ticks only).
pub const ON_TIME: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The due tick of a schedule whose last queued tick is `last` (or, for a job never run,
/// which was first seen at `since`), at `now`.
pub fn due(
    cron: &Cron,
    zone: Tz,
    last: Option<DateTime<Utc>>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    catch_up: CatchUp,
) -> Due {
    let from = last.unwrap_or(since).with_timezone(&zone);
    let Ok(next) = cron.find_next_occurrence(&from, false) else {
        return Due::Never;
    };
    let next = next.with_timezone(&Utc);
    if next > now {
        return Due::Wait(next);
    }
    // The latest tick at or before now: the ones before it were missed (the service was down
    // or busy) and need no run of their own.
    let latest = cron
        .find_previous_occurrence(&now.with_timezone(&zone), true)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(next)
        .max(next);
    if now - latest <= ON_TIME {
        return Due::Run(latest);
    }
    match catch_up {
        CatchUp::Once => Due::Run(latest),
        CatchUp::Skip => Due::Skip(latest),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// Every tick from `start` to `end`, stepping the clock by `step` and queuing what is due,
    /// as the service loop does.
    fn simulate(cron: &str, zone: &str, start: &str, end: &str, step: i64) -> Vec<DateTime<Utc>> {
        let cron = Cron::from_str(cron).expect("cron");
        let zone = Tz::from_str(zone).expect("zone");
        let (start, end) = (at(start), at(end));
        let mut last = None;
        let mut ticks = Vec::new();
        let mut now = start;
        while now <= end {
            if let Due::Run(tick) | Due::Skip(tick) =
                due(&cron, zone, last, start, now, CatchUp::Once)
            {
                ticks.push(tick);
                last = Some(tick);
            }
            now += chrono::TimeDelta::seconds(step);
        }
        ticks
    }

    #[test]
    fn a_daily_job_runs_once_a_day_across_both_dst_changes() {
        // Paris: 2026-03-29 02:00 does not exist; 2026-10-25 02:00-03:00 happens twice.
        let ticks = simulate(
            "30 2 * * *",
            "Europe/Paris",
            "2026-03-27T00:00:00Z",
            "2026-03-31T00:00:00Z",
            60,
        );
        assert_eq!(ticks.len(), 4, "{ticks:?}");
        let ticks = simulate(
            "30 2 * * *",
            "Europe/Paris",
            "2026-10-23T00:00:00Z",
            "2026-10-27T00:00:00Z",
            60,
        );
        assert_eq!(ticks.len(), 4, "{ticks:?}");
        // The repeated 02:30 runs once, at its first instant (CEST, 00:30 UTC).
        assert!(ticks.contains(&at("2026-10-25T00:30:00Z")), "{ticks:?}");
        assert!(!ticks.contains(&at("2026-10-25T01:30:00Z")), "{ticks:?}");
    }

    #[test]
    fn an_hourly_job_in_a_dst_zone_runs_every_real_hour() {
        let ticks = simulate(
            "0 * * * *",
            "Europe/Paris",
            "2026-10-24T22:00:30Z",
            "2026-10-25T04:00:30Z",
            30,
        );
        // 23:00 .. 04:00 UTC: six real hours, whatever the wall clock says.
        assert_eq!(ticks.len(), 6, "{ticks:?}");
    }

    #[test]
    fn missed_ticks_run_once_or_are_skipped() {
        let cron = Cron::from_str("0 * * * *").expect("cron");
        let last = Some(at("2026-11-26T01:00:00Z"));
        let now = at("2026-11-26T05:10:00Z");
        let since = at("2026-11-01T00:00:00Z");
        assert_eq!(
            due(&cron, Tz::UTC, last, since, now, CatchUp::Once),
            Due::Run(at("2026-11-26T05:00:00Z"))
        );
        assert_eq!(
            due(&cron, Tz::UTC, last, since, now, CatchUp::Skip),
            Due::Skip(at("2026-11-26T05:00:00Z"))
        );
        // On time is not missed: skip still runs it.
        let now = at("2026-11-26T02:00:20Z");
        assert_eq!(
            due(&cron, Tz::UTC, last, since, now, CatchUp::Skip),
            Due::Run(at("2026-11-26T02:00:00Z"))
        );
    }

    #[test]
    fn a_clock_stepped_back_neither_doubles_nor_loses_a_tick() {
        let cron = Cron::from_str("0 * * * *").expect("cron");
        let since = at("2026-11-26T00:00:00Z");
        let last = Some(at("2026-11-26T05:00:00Z"));
        // The clock goes back an hour after the 05:00 tick: nothing is due until 06:00.
        let now = at("2026-11-26T04:20:00Z");
        assert_eq!(
            due(&cron, Tz::UTC, last, since, now, CatchUp::Once),
            Due::Wait(at("2026-11-26T06:00:00Z"))
        );
        let now = at("2026-11-26T06:00:01Z");
        assert_eq!(
            due(&cron, Tz::UTC, last, since, now, CatchUp::Once),
            Due::Run(at("2026-11-26T06:00:00Z"))
        );
    }

    #[test]
    fn a_new_job_does_not_run_ticks_from_before_it_was_seen() {
        let cron = Cron::from_str("0 * * * *").expect("cron");
        let since = at("2026-11-26T05:30:00Z");
        let now = at("2026-11-26T05:31:00Z");
        assert_eq!(
            due(&cron, Tz::UTC, None, since, now, CatchUp::Once),
            Due::Wait(at("2026-11-26T06:00:00Z"))
        );
    }
}
