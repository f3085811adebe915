//! `weir incident postmortem`: a Markdown draft with what weir knows (summary, impact,
//! timeline, the runs and notifications, the figures) and headings for what people must add.

use std::fmt::Write as _;

use weir_orchestrate::{Alert, Incident, IncidentEvent};

use crate::stats::seconds_between;

/// The draft of a post-mortem for `incident`; `alerts` with their channels as
/// `channel_label` shows them.
pub fn postmortem(incident: &Incident, events: &[IncidentEvent], alerts: &[Alert]) -> String {
    let mut out = String::new();
    let duration = |from: &str, to: Option<&str>| match seconds_between(from, to) {
        Some(s) => human(s),
        None => "—".into(),
    };
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let _ = writeln!(
        out,
        "# Post-mortem: incident #{} on `{}`\n",
        incident.id, incident.root_asset
    );
    let _ = writeln!(
        out,
        "*Draft written by weir; complete the sections marked TODO.*\n"
    );
    let _ = writeln!(out, "## Summary\n\n{}\n", incident.title);
    let _ = writeln!(out, "| | |\n|---|---|");
    let rows = [
        ("Status", incident.status.clone()),
        ("Root asset", format!("`{}`", incident.root_asset)),
        ("Team", or_dash(&incident.team)),
        ("Owners", list(&incident.owners)),
        ("Kind", incident.kind.clone()),
        ("Started (first bad run)", incident.started_at.clone()),
        ("Detected", incident.detected_at.clone()),
        (
            "First notification delivered",
            or_dash(&incident.notified_at),
        ),
        (
            "Acknowledged",
            match (&incident.acknowledged_at, &incident.acknowledged_by) {
                (Some(at), Some(by)) => format!("{at} by {by}"),
                (Some(at), None) => at.clone(),
                _ => "—".into(),
            },
        ),
        (
            "Resolved",
            match (&incident.resolved_at, &incident.resolved_by) {
                (Some(at), Some(by)) => format!("{at} by {by}"),
                (Some(at), None) => at.clone(),
                _ => "not yet".into(),
            },
        ),
        (
            "Time to detect",
            duration(&incident.started_at, Some(&incident.detected_at)),
        ),
        (
            "Time to notify",
            duration(&incident.detected_at, incident.notified_at.as_deref()),
        ),
        (
            "Time to resolve",
            duration(&incident.started_at, incident.resolved_at.as_deref()),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    let _ = writeln!(out, "\n## Impact\n");
    if incident.affected.is_empty() {
        let _ = writeln!(out, "No asset is downstream of `{}`.", incident.root_asset);
    } else {
        let _ = writeln!(
            out,
            "{} downstream asset(s), found through lineage:\n\n| Asset | Team | Owners |\n|---|---|---|",
            incident.affected.len()
        );
        for a in &incident.affected {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                a.asset,
                or_dash(&a.team),
                list(&a.owners)
            );
        }
    }
    let _ = writeln!(out, "\n## Timeline (UTC)\n");
    for e in events {
        let asset = e
            .asset
            .as_deref()
            .map(|a| format!(" `{a}`"))
            .unwrap_or_default();
        let run = e
            .run_id
            .as_deref()
            .map(|r| format!(" (run {r})"))
            .unwrap_or_default();
        let _ = writeln!(out, "- {} **{}**{asset}{run}: {}", e.at, e.kind, e.detail);
    }
    let _ = writeln!(out, "\n## Notifications\n");
    if alerts.is_empty() {
        let _ = writeln!(out, "None: the team has no channel weir delivers to.");
    } else {
        let _ = writeln!(
            out,
            "| Event | Channel | Status | Attempts | Delivered | Last error |\n|---|---|---|---|---|---|"
        );
        for a in alerts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                a.event,
                a.channel,
                a.status,
                a.attempts,
                or_dash(&a.delivered_at),
                or_dash(&a.last_error)
            );
        }
    }
    for heading in [
        "Root cause",
        "What went well",
        "What went wrong",
        "Action items",
    ] {
        let _ = writeln!(out, "\n## {heading}\n\nTODO");
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

/// `3 h 05 min`, `4 min 10 s`, `12.3 s`.
fn human(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}
