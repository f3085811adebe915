//! What is measured about incidents: time to detect (start → detection), time to notify
//! (detection → first notification delivered) and time to resolve (start → resolution),
//! averaged per root asset and per team over a period.

use std::collections::BTreeMap;

use serde::Serialize;

use weir_orchestrate::Incident;

/// An RFC 3339 instant of the state store, read.
pub(crate) fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// Seconds from `from` to `to` (RFC 3339), when both are there and readable.
pub fn seconds_between(from: &str, to: Option<&str>) -> Option<f64> {
    let (from, to) = (instant(from)?, instant(to?)?);
    Some((to - from).num_microseconds()? as f64 / 1e6)
}

/// The figures of a group of incidents (one asset, one team, or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentStats {
    pub incidents: usize,
    pub unresolved: usize,
    /// Mean time to detect, seconds.
    pub mttd_seconds: Option<f64>,
    /// Mean time to notify (detection to first delivered notification), seconds.
    pub mttn_seconds: Option<f64>,
    /// Mean time to resolve, over the resolved incidents, seconds.
    pub mttr_seconds: Option<f64>,
}

#[derive(Default)]
struct Sums {
    incidents: usize,
    unresolved: usize,
    detect: Vec<f64>,
    notify: Vec<f64>,
    resolve: Vec<f64>,
}

impl Sums {
    fn add(&mut self, i: &Incident) {
        self.incidents += 1;
        if i.resolved_at.is_none() {
            self.unresolved += 1;
        }
        self.detect
            .extend(seconds_between(&i.started_at, Some(&i.detected_at)));
        self.notify
            .extend(seconds_between(&i.detected_at, i.notified_at.as_deref()));
        self.resolve
            .extend(seconds_between(&i.started_at, i.resolved_at.as_deref()));
    }

    fn stats(&self) -> IncidentStats {
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        IncidentStats {
            incidents: self.incidents,
            unresolved: self.unresolved,
            mttd_seconds: mean(&self.detect),
            mttn_seconds: mean(&self.notify),
            mttr_seconds: mean(&self.resolve),
        }
    }
}

/// The figures of `incidents` in total, per root asset and per team (`(no team)` for assets
/// without one).
pub fn incident_stats(
    incidents: &[Incident],
) -> (
    IncidentStats,
    BTreeMap<String, IncidentStats>,
    BTreeMap<String, IncidentStats>,
) {
    let mut all = Sums::default();
    let mut by_asset: BTreeMap<String, Sums> = BTreeMap::new();
    let mut by_team: BTreeMap<String, Sums> = BTreeMap::new();
    for i in incidents {
        all.add(i);
        by_asset.entry(i.root_asset.clone()).or_default().add(i);
        let team = i.team.clone().unwrap_or_else(|| "(no team)".into());
        by_team.entry(team).or_default().add(i);
    }
    let done = |m: BTreeMap<String, Sums>| m.into_iter().map(|(k, v)| (k, v.stats())).collect();
    (all.stats(), done(by_asset), done(by_team))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(asset: &str, team: &str, times: [&str; 4]) -> Incident {
        let opt = |t: &str| (!t.is_empty()).then(|| t.to_string());
        Incident {
            id: 1,
            root_asset: asset.into(),
            team: Some(team.into()),
            owners: vec![],
            status: if times[3].is_empty() {
                "open"
            } else {
                "resolved"
            }
            .into(),
            kind: "failed".into(),
            title: String::new(),
            started_at: times[0].into(),
            detected_at: times[1].into(),
            notified_at: opt(times[2]),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: opt(times[3]),
            resolved_by: None,
            affected: vec![],
            opened_by: "weir".into(),
        }
    }

    #[test]
    fn means_per_asset_and_team() {
        let t = |s: u32| format!("2026-11-26T10:{:02}:{:02}Z", s / 60, s % 60);
        let incidents = vec![
            incident("orders", "sales", [&t(0), &t(10), &t(12), &t(100)]),
            incident("orders", "sales", [&t(0), &t(30), &t(31), &t(300)]),
            incident("payments", "finance", [&t(0), &t(4), "", ""]),
        ];
        let (all, by_asset, by_team) = incident_stats(&incidents);
        assert_eq!(all.incidents, 3);
        assert_eq!(all.unresolved, 1);
        assert_eq!(by_asset["orders"].mttd_seconds, Some(20.0));
        assert_eq!(by_asset["orders"].mttn_seconds, Some(1.5));
        assert_eq!(by_asset["orders"].mttr_seconds, Some(200.0));
        assert_eq!(by_team["finance"].mttr_seconds, None);
        assert_eq!(all.mttd_seconds, Some(44.0 / 3.0));
    }
}
