//! Component telemetry: after each asset run, the figures its stages measured become one
//! report per component (the source or model, the contract check, the Delta sink) with the
//! same fields for every kind, in the manner of Vector's component specification. Each is
//! logged once (target `weir::component`, so `--log-format json` gives one object per
//! component with the run id and asset) and recorded in the state store (`component_metrics`),
//! from which `/metrics` exports them. This module is the only place a component's report is
//! made, so no kind can report a different set.

use sqlx::Row;
use weir_model::{Asset, ComponentKind, ComponentMetrics, ComponentReport};

use crate::error::Result;
use crate::report::{AssetRunReport, RunStatus};
use crate::shadows::count;
use crate::state::{StateStore, state_err};

/// The components of `asset`'s run and what each reported; none for a run that did not start
/// (skipped, held back).
pub(crate) fn components(asset: &Asset, report: &AssetRunReport) -> Vec<ComponentReport> {
    if matches!(report.status, RunStatus::Skipped) {
        return Vec::new();
    }
    let stages = &report.stages;
    let producer = match (&asset.source, &asset.model) {
        (Some(source), _) => {
            let mut m = ComponentMetrics {
                rows_in: report.rows_in,
                rows_out: report.rows_in,
                bytes_in: report.bytes_in,
                duration: stages.reading,
                ..Default::default()
            };
            // An unreadable or changed file is left out whole, and retried.
            m.record_errors("receiving", report.rejected_files.len() as u64);
            (ComponentKind::Source, source.format.as_str().to_string(), m)
        }
        (None, Some(model)) => (
            ComponentKind::Model,
            match model.materialization {
                weir_model::Materialization::Table => "table",
                weir_model::Materialization::IncrementalAppend => "incremental_append",
                weir_model::Materialization::IncrementalMerge => "incremental_merge",
            }
            .to_string(),
            ComponentMetrics {
                rows_in: stages.rows_scanned,
                rows_out: report.rows_in,
                bytes_in: stages.bytes_scanned,
                duration: stages.computing,
                ..Default::default()
            },
        ),
        (None, None) => return Vec::new(),
    };
    let mut check = ComponentMetrics {
        rows_in: report.rows_in,
        rows_out: report.rows_stored,
        rows_quarantined: report.rows_quarantined,
        duration: stages.validating,
        ..Default::default()
    };
    check.record_errors(
        "processing",
        report.checks.iter().filter(|c| c.blocks()).count() as u64,
    );
    let given = report.rows_stored + report.rows_quarantined;
    // A run stopped by a failed check still keeps its quarantined rows (for `weir
    // quarantine`); the good rows are discarded with the publication.
    let (kept, bytes_out) = match report.status {
        RunStatus::Success | RunStatus::Partial => (
            given,
            stages.bytes_written + stages.quarantine_bytes_written,
        ),
        RunStatus::Failed => (report.rows_quarantined, stages.quarantine_bytes_written),
        _ => (0, 0),
    };
    let sink = ComponentMetrics {
        rows_in: given,
        rows_out: kept,
        rows_discarded: given - kept,
        bytes_out,
        duration: stages.writing,
        ..Default::default()
    };
    let mut reports = vec![
        ComponentReport {
            kind: producer.0,
            name: producer.1,
            metrics: producer.2,
        },
        ComponentReport {
            kind: ComponentKind::Check,
            name: asset.contract.id.clone(),
            metrics: check,
        },
        ComponentReport {
            kind: ComponentKind::Sink,
            name: "delta".into(),
            metrics: sink,
        },
    ];
    // The error that ended the run, against the component at work when it happened.
    if report.status == RunStatus::Error {
        let at = stages.at.unwrap_or(producer.0);
        if let Some(c) = reports.iter_mut().find(|c| c.kind == at) {
            c.metrics.record_error(at.error_stage());
        }
    }
    reports
}

/// Logs each component's report: one event per component, every field always present.
pub(crate) fn emit(report: &AssetRunReport) {
    for c in &report.components {
        let m = &c.metrics;
        let errors = |stage: &str| m.errors_by_stage.get(stage).copied().unwrap_or(0);
        tracing::info!(
            target: "weir::component",
            run_id = %report.run_id,
            asset = %report.asset,
            component_kind = c.kind.as_str(),
            component = %c.name,
            rows_in = m.rows_in,
            rows_out = m.rows_out,
            rows_quarantined = m.rows_quarantined,
            rows_discarded = m.rows_discarded,
            bytes_in = m.bytes_in,
            bytes_out = m.bytes_out,
            errors_receiving = errors("receiving"),
            errors_processing = errors("processing"),
            errors_sending = errors("sending"),
            duration_ms = m.duration.as_secs_f64() * 1000.0,
            "component report"
        );
    }
}

/// Summed over every run of one component of one asset, for `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentTotals {
    pub asset: String,
    pub kind: String,
    pub name: String,
    pub metrics: ComponentMetrics,
}

impl StateStore {
    /// Records the components of one run, in one transaction, on the connection whose
    /// commits are not flushed one by one (as lease renewals are): a killed process loses
    /// none of them, and the next durable commit of any connection (the next run's start)
    /// flushes them; only a power cut in between can lose the last run's figures, never its
    /// record, its rows or its files. A flush of its own was one of the five a model's run
    /// waited for.
    pub async fn record_components(&self, report: &AssetRunReport) -> Result<()> {
        if report.components.is_empty() {
            return Ok(());
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let now = crate::state::now();
        let mut tx = self.lease_pool.begin().await.map_err(state_err)?;
        for c in &report.components {
            let m = &c.metrics;
            let errors = |stage: &str| n(m.errors_by_stage.get(stage).copied().unwrap_or(0));
            sqlx::query(
                "INSERT INTO component_metrics (run_id, asset, kind, name, recorded_at, rows_in,
                    rows_out, rows_quarantined, rows_discarded, bytes_in, bytes_out,
                    errors_receiving, errors_processing, errors_sending, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (run_id, kind) DO NOTHING",
            )
            .bind(&report.run_id)
            .bind(&report.asset)
            .bind(c.kind.as_str())
            .bind(&c.name)
            .bind(&now)
            .bind(n(m.rows_in))
            .bind(n(m.rows_out))
            .bind(n(m.rows_quarantined))
            .bind(n(m.rows_discarded))
            .bind(n(m.bytes_in))
            .bind(n(m.bytes_out))
            .bind(errors("receiving"))
            .bind(errors("processing"))
            .bind(errors("sending"))
            .bind(m.duration.as_secs_f64() * 1000.0)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        }
        tx.commit().await.map_err(state_err)?;
        Ok(())
    }

    /// Every component's figures summed over its runs, by asset, kind and name.
    pub async fn component_totals(&self) -> Result<Vec<ComponentTotals>> {
        let rows = sqlx::query(
            // PostgreSQL's SUM of a BIGINT is a NUMERIC: cast back, as both stores decode it.
            "SELECT asset, kind, name, CAST(SUM(rows_in) AS BIGINT) AS rows_in, CAST(SUM(rows_out) AS BIGINT) AS rows_out, CAST(SUM(rows_quarantined) AS BIGINT) AS rows_quarantined, CAST(SUM(rows_discarded) AS BIGINT) AS rows_discarded, CAST(SUM(bytes_in) AS BIGINT) AS bytes_in, CAST(SUM(bytes_out) AS BIGINT) AS bytes_out, CAST(SUM(errors_receiving) AS BIGINT) AS errors_receiving, CAST(SUM(errors_processing) AS BIGINT) AS errors_processing, CAST(SUM(errors_sending) AS BIGINT) AS errors_sending,
                CAST(SUM(duration_ms) AS DOUBLE PRECISION) AS duration_ms
             FROM component_metrics GROUP BY asset, kind, name ORDER BY asset, kind, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut m = ComponentMetrics {
                rows_in: count(row, "rows_in")?,
                rows_out: count(row, "rows_out")?,
                rows_quarantined: count(row, "rows_quarantined")?,
                rows_discarded: count(row, "rows_discarded")?,
                bytes_in: count(row, "bytes_in")?,
                bytes_out: count(row, "bytes_out")?,
                duration: std::time::Duration::from_secs_f64(
                    (row.try_get::<f64, _>("duration_ms").map_err(state_err)? / 1000.0).max(0.0),
                ),
                ..Default::default()
            };
            for stage in weir_model::ERROR_STAGES {
                m.record_errors(stage, count(row, &format!("errors_{stage}"))?);
            }
            out.push(ComponentTotals {
                asset: row.try_get("asset").map_err(state_err)?,
                kind: row.try_get("kind").map_err(state_err)?,
                name: row.try_get("name").map_err(state_err)?,
                metrics: m,
            });
        }
        Ok(out)
    }
}
