//! Parallel runs: a model declared `shadow_of` another asset is diffed with it after each of
//! its runs, when both were computed from the same upstream versions, and the agreement is
//! recorded in the state store (`weir shadow` shows it over time; `/metrics` exports the last).

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use weir_model::Project;
use weir_orchestrate::{
    AssetRunReport, INPUTS_KEY, RunStatus, ShadowComparison, StateStore, table_paths,
};
use weir_store::{LakeTable, register_delta};

use crate::data_diff::{DiffOptions, TABLE_A, TABLE_B, diff_tables};
use crate::error::ChangeError;

/// Compares every shadow that ran successfully in `reports` with its primary, records each
/// comparison and returns them. A comparison that cannot be made (a table missing, a key not
/// unique) is recorded as not compared, with the reason.
pub async fn compare_shadows(
    project: &Project,
    state: &StateStore,
    reports: &[AssetRunReport],
) -> Result<Vec<ShadowComparison>, ChangeError> {
    let mut out = Vec::new();
    for report in reports {
        if !matches!(report.status, RunStatus::Success | RunStatus::UpToDate) {
            continue;
        }
        let Some(asset) = project.asset(&report.asset) else {
            continue;
        };
        let Some(primary_name) = asset.model.as_ref().and_then(|m| m.shadow_of.as_ref()) else {
            continue;
        };
        let Some(primary) = project.asset(primary_name) else {
            continue;
        };
        let key = weir_model::shadow_key(asset, primary);
        let mut comparison = ShadowComparison {
            asset: asset.name.clone(),
            shadow_of: primary.name.clone(),
            run_id: Some(report.run_id.clone()),
            compared_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            compared: false,
            rows_primary: 0,
            rows_shadow: 0,
            identical: 0,
            changed: 0,
            only_in_primary: 0,
            only_in_shadow: 0,
            agreement: None,
            note: None,
        };
        match compare(project, &primary.name, &asset.name, key).await {
            Ok(Ok(r)) => {
                let compared = r.identical + r.changed + r.only_in_a + r.only_in_b;
                comparison.compared = true;
                comparison.rows_primary = r.rows_a;
                comparison.rows_shadow = r.rows_b;
                comparison.identical = r.identical;
                comparison.changed = r.changed;
                comparison.only_in_primary = r.only_in_a;
                comparison.only_in_shadow = r.only_in_b;
                comparison.agreement = Some(if compared == 0 {
                    1.0
                } else {
                    r.identical as f64 / compared as f64
                });
            }
            Ok(Err(why)) => comparison.note = Some(why),
            Err(e) => comparison.note = Some(format!("not compared: {e}")),
        }
        state.record_shadow_comparison(&comparison).await?;
        out.push(comparison);
    }
    Ok(out)
}

/// The upstream tables a model's table was computed from, as its last commit records them.
async fn inputs_of(
    table: &LakeTable,
) -> Result<Option<BTreeMap<String, serde_json::Value>>, ChangeError> {
    let inputs = table
        .last_commit_value(INPUTS_KEY)
        .await
        .map_err(|e| ChangeError::Diff(e.to_string()))?;
    Ok(inputs.and_then(|v| {
        v.get("tables")
            .and_then(|t| t.as_object())
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }))
}

/// The diff of `primary` (A) with `shadow` (B), or why they are not compared.
async fn compare(
    project: &Project,
    primary: &str,
    shadow: &str,
    key: Vec<String>,
) -> Result<Result<crate::DiffReport, String>, ChangeError> {
    let open = |name: &str| {
        let path = table_paths(project, name).0;
        async move { LakeTable::open(&path).await }
    };
    let (Some(a), Some(b)) = (
        open(primary)
            .await
            .map_err(|e| ChangeError::Diff(e.to_string()))?,
        open(shadow)
            .await
            .map_err(|e| ChangeError::Diff(e.to_string()))?,
    ) else {
        return Ok(Err(format!(
            "not compared: `{primary}` has no table yet (run it)"
        )));
    };
    // The same input snapshot: every upstream table both read, at the same version.
    if let (Some(x), Some(y)) = (inputs_of(&a).await?, inputs_of(&b).await?) {
        let differing: Vec<&String> = x
            .iter()
            .filter(|(name, v)| y.get(*name).is_some_and(|w| w != *v))
            .map(|(name, _)| name)
            .collect();
        if !differing.is_empty() {
            let names: Vec<&str> = differing.iter().map(|s| s.as_str()).collect();
            return Ok(Err(format!(
                "not compared: `{primary}` and `{shadow}` were computed from different versions of {} (run both: `weir run {primary} {shadow}`)",
                names.join(", ")
            )));
        }
    }
    let ctx = SessionContext::new();
    register_delta(&ctx, TABLE_A, &a)
        .await
        .map_err(|e| ChangeError::Diff(e.to_string()))?;
    register_delta(&ctx, TABLE_B, &b)
        .await
        .map_err(|e| ChangeError::Diff(e.to_string()))?;
    let options = DiffOptions {
        key,
        abs_tolerance: 0.0,
        rel_tolerance: 0.0,
        time_tolerance_secs: 0.0,
        samples: 0,
    };
    match diff_tables(&ctx, &options).await {
        Ok(report) => Ok(Ok(report)),
        Err(e) => Ok(Err(format!("not compared: {e}"))),
    }
}
