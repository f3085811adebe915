//! What `weir check` verifies beyond the project's text, so that a project that checks clean
//! does not trip at run time: each source's files (does its glob match any, does the first one
//! have the contract's columns), the SQL quality rules (do they plan against the contract's
//! schema, and return one number), and the columns a model's settings name.

use weir_model::{Asset, Diagnostic, Diagnostics, FileFormat};
use weir_quality::{DatasetRuleKind, Validator};

/// How many rows of a source's first file are read to compare its columns with the contract.
const HEADER_SAMPLE_ROWS: usize = 100;

/// A source whose glob matches nothing is a warning (a run finds nothing to ingest); a column
/// the contract requires that the first matching file lacks is an error (a run would refuse
/// the file), an optional one a warning.
pub fn source_files(root: &std::path::Path, asset: &Asset, diagnostics: &mut Diagnostics) {
    let (Some(source), Some(source_path)) = (&asset.source, &asset.source_path) else {
        return;
    };
    let pattern = root.join(&source.path);
    let first = glob::glob(&pattern.to_string_lossy())
        .ok()
        .and_then(|paths| paths.filter_map(Result::ok).find(|p| p.is_file()));
    let Some(first) = first else {
        diagnostics.push(
            Diagnostic::warning(
                source_path,
                format!(
                    "`{}` matches no file yet: `weir run` will find nothing to ingest for `{}`",
                    source.path, asset.name
                ),
            )
            .field("path"),
        );
        return;
    };
    let Ok(sample) = weir_ingest::sample_file(&first, source.format, HEADER_SAMPLE_ROWS) else {
        // Unreadable files are the run's to report, file by file, with the rows it rejects.
        return;
    };
    if source.format == FileFormat::Csv && !sample.header {
        return;
    }
    let found: Vec<&str> = sample
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let Some(table) = asset.contract.table() else {
        return;
    };
    for property in &table.properties {
        if found.contains(&property.name.as_str()) {
            continue;
        }
        let required = property.required || property.primary_key;
        let message = format!(
            "{} has no column `{}`{}",
            first.display(),
            property.name,
            if required {
                ", which the contract requires: a run would refuse the file"
            } else {
                "; every row will hold null for it"
            }
        );
        let diagnostic = if required {
            Diagnostic::error(&asset.contract_path, message)
        } else {
            Diagnostic::warning(&asset.contract_path, message)
        };
        diagnostics.push(diagnostic.field(format!("schema[0].properties.{}", property.name)));
    }
}

/// Every SQL quality rule planned against the asset's contract schema, without data: a query
/// that does not plan, or does not return exactly one numeric column, is an error now rather
/// than a failed check after a whole run.
pub async fn sql_rules(asset: &Asset, validator: &Validator, diagnostics: &mut Diagnostics) {
    for rule in validator.dataset_rules() {
        let DatasetRuleKind::Sql(_) = &rule.kind else {
            continue;
        };
        let Some(sql) = rule.sql_for(&asset.name) else {
            continue;
        };
        let problem =
            match weir_process::output_schema(&sql, &[(asset.name.clone(), validator.schema())])
                .await
            {
                Err(e) => Some(format!("its query does not plan: {}", e.message)),
                Ok(schema) => match schema.fields().first() {
                    Some(field) if schema.fields().len() == 1 && field.data_type().is_numeric() => {
                        None
                    }
                    _ => Some(format!(
                        "its query must return one number, and returns {} column(s): {}",
                        schema.fields().len(),
                        schema
                            .fields()
                            .iter()
                            .map(|f| format!("{} {}", f.name(), f.data_type()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            };
        if let Some(problem) = problem {
            diagnostics.push(
                Diagnostic::error(
                    &asset.contract_path,
                    format!("quality rule `{}`: {problem}", rule.id),
                )
                .field("quality"),
            );
        }
    }
}

/// A `watermark` the model's query does not produce is an error (the setting names nothing).
pub fn watermark(
    model: &weir_model::ModelDef,
    output: &arrow::datatypes::Schema,
    diagnostics: &mut Diagnostics,
) {
    if let Some(watermark) = &model.watermark
        && output.field_with_name(watermark).is_err()
    {
        diagnostics.push(
            Diagnostic::error(
                &model.path,
                format!(
                    "the query does not produce the column `{watermark}` that `watermark` names{}",
                    weir_model::did_you_mean(watermark, output.fields().iter().map(|f| f.name()))
                ),
            )
            .field("watermark"),
        );
    }
}
