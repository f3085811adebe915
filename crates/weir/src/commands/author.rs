//! Writing a project's files: `weir contract infer`, `weir new source` and `weir new model`.
//!
//! A contract is drafted from evidence: a sample of the file (types as Arrow infers them, a
//! profile of each column) or a model's planned output schema. What the evidence proves
//! (types, no nulls seen, a unique id) is written as contract; what it only suggests (value
//! lists, ranges, formats) is written as comments to keep or drop, because a rule drawn from
//! a sample would quarantine the first legitimate new value.

use std::path::{Path, PathBuf};

use anyhow::Context;
use weir_ingest::Sample;
use weir_model::{ContractDraft, DraftColumn, FileFormat, logical_type_of, yaml_scalar};
use weir_quality::{ColumnProfile, LOW_CARDINALITY};

use crate::Outcome;

/// How many rows a contract is inferred from by default.
pub const SAMPLE_ROWS: usize = 10_000;

/// A value list is suggested only when the sample has at least this many rows.
const MIN_ROWS_FOR_VALUES: usize = 20;

/// The draft of a contract for `asset` from `sample` of `file`.
pub fn draft_from_sample(
    asset: &str,
    file: &Path,
    sample: &Sample,
    owner: Option<String>,
) -> ContractDraft {
    let profiles = weir_quality::profile(&sample.schema, &sample.batches);
    let key = profiles.iter().position(|p| {
        let name = p.name.to_ascii_lowercase();
        p.is_unique()
            && (name == "id" || name.ends_with("_id"))
            && matches!(logical_type_of(&p.data_type), "integer" | "string")
    });
    let columns = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| column_from_profile(p, key == Some(i)))
        .collect();
    ContractDraft {
        asset: asset.to_string(),
        description: Some(format!("Rows of {}.", file.display())),
        owner,
        header: vec![
            format!(
                "Drafted by weir from the first {} rows of {}.",
                sample.rows,
                file.display()
            ),
            "Types, `required` (no nulls in the sample) and the key are set; rules the sample only"
                .into(),
            "suggests are commented out: keep those that hold for all future data.".into(),
        ],
        columns,
    }
}

/// A text column most of whose sampled values read as a type is declared with that type (NDJSON
/// has no dates, and a few bad values make Arrow infer text); the rest are named in a note.
const TEXT_TYPE_SHARE: f64 = 0.9;

fn column_from_profile(p: &ColumnProfile, primary_key: bool) -> DraftColumn {
    let mut logical_type = logical_type_of(&p.data_type);
    let mut unparsed = None;
    if logical_type == "string"
        && let Some((read_as, misses)) = p.text_reads_as(TEXT_TYPE_SHARE)
    {
        logical_type = read_as;
        unparsed = Some((read_as, misses));
    }
    let mut note = format!(
        "sample: {} nulls, {}{} distinct",
        p.nulls,
        if p.distinct_capped { "over " } else { "" },
        p.distinct
    );
    if let (Some(min), Some(max)) = (p.min, p.max) {
        note.push_str(&format!(", {} to {}", number(min), number(max)));
    }
    let mut notes = vec![note];
    if let Some((read_as, misses)) = unparsed
        && misses > 0
    {
        notes.push(format!(
            "{misses} sampled values do not read as {read_as}: a run quarantines such rows as {}.type",
            p.name
        ));
    }
    if p.is_unique() && !primary_key {
        notes.push("unique in the sample: a key candidate (primaryKey: true)".into());
    }
    let mut suggestions = Vec::new();
    if let (Some(min), Some(max)) = (p.min, p.max) {
        suggestions.extend([
            "logicalTypeOptions:   # the sample's range".to_string(),
            format!("  minimum: {}", number(min)),
            format!("  maximum: {}", number(max)),
        ]);
    }
    if let Some(format) = p.format {
        suggestions.extend([
            format!("logicalTypeOptions:   # every sampled value has the {format} format"),
            format!("  format: {format}"),
        ]);
    }
    if let Some(values) = &p.values
        && p.rows >= MIN_ROWS_FOR_VALUES
        && values.len() <= LOW_CARDINALITY
        && values.len() * 2 < p.rows
    {
        let list: Vec<String> = values.iter().map(|v| yaml_scalar(v)).collect();
        suggestions.extend([
            format!(
                "quality:   # the sample holds only these {} values",
                values.len()
            ),
            "  - metric: invalidValues".to_string(),
            "    arguments:".to_string(),
            format!("      validValues: [{}]", list.join(", ")),
            "    mustBeLessThan: 5   # rows with another value are quarantined; 5 % of them fail the run".to_string(),
            "    unit: percent".to_string(),
        ]);
    }
    DraftColumn {
        name: p.name.clone(),
        logical_type,
        required: p.rows > 0 && p.nulls == 0,
        primary_key,
        notes,
        suggestions,
    }
}

/// `12` rather than `12.0`, and a float as Rust prints it otherwise.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The format of `file`: the one given, or the one its extension names.
fn file_format(file: &Path, given: Option<FileFormat>) -> anyhow::Result<FileFormat> {
    given
        .or_else(|| weir_ingest::format_of(file))
        .with_context(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format csv|ndjson|parquet",
                file.display()
            )
        })
}

/// Samples `file`, with a sentence naming the file when it cannot be read.
fn sample(file: &Path, format: FileFormat, rows: usize) -> anyhow::Result<Sample> {
    if !file.is_file() {
        anyhow::bail!("{} is not a file", file.display());
    }
    let sample = weir_ingest::sample_file(file, format, rows)
        .with_context(|| format!("cannot read a sample of {}", file.display()))?;
    if sample.schema.fields().is_empty() {
        anyhow::bail!("{} has no columns to describe", file.display());
    }
    Ok(sample)
}

/// An error naming the first of `paths` that exists: weir never overwrites a user's file, and
/// checks every file of a command before writing any.
fn refuse_existing(paths: &[&Path]) -> anyhow::Result<()> {
    if let Some(path) = paths.iter().find(|p| p.exists()) {
        anyhow::bail!(
            "{} already exists; weir does not overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// Writes `text` to `path`, refusing to replace a file that exists.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    refuse_existing(&[path])?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub struct InferArgs {
    pub file: PathBuf,
    pub name: Option<String>,
    pub format: Option<FileFormat>,
    pub rows: usize,
    pub out: Option<PathBuf>,
    pub owner: Option<String>,
}

/// The asset a file is likely about: its name, or its folder's when the name is a date or a
/// number (`data/orders/2024-01.csv` is about `orders`).
fn asset_name_for(file: &Path) -> String {
    let name = |p: Option<&std::ffi::OsStr>| p.map(|s| s.to_string_lossy().into_owned());
    let stem = name(file.file_stem()).unwrap_or_default();
    if stem.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return weir_model::asset_name_from(&stem);
    }
    let folder = file
        .canonicalize()
        .ok()
        .and_then(|f| name(f.parent().and_then(Path::file_name)));
    weir_model::asset_name_from(folder.as_deref().unwrap_or(&stem))
}

/// `weir contract infer`: the drafted contract on stdout, or in `--out`.
pub fn contract_infer(args: &InferArgs, json: bool) -> anyhow::Result<Outcome> {
    let format = file_format(&args.file, args.format)?;
    let sample = sample(&args.file, format, args.rows)?;
    let asset = match &args.name {
        Some(name) => name.clone(),
        None => asset_name_for(&args.file),
    };
    let text = draft_from_sample(&asset, &args.file, &sample, args.owner.clone()).render();
    for note in &sample.notes {
        eprintln!("note: {note}");
    }
    if let Some(out) = &args.out {
        write_new(out, &text)?;
    }
    if json {
        crate::output::print_json(serde_json::json!({
            "asset": asset,
            "format": format.as_str(),
            "rows_sampled": sample.rows,
            "written_to": args.out,
            "contract": text,
        }));
    } else if let Some(out) = &args.out {
        eprintln!(
            "wrote {} ({} columns, from {} sampled rows)",
            out.display(),
            sample.schema.fields().len(),
            sample.rows
        );
    } else {
        print!("{text}");
    }
    Ok(Outcome::Ok)
}

/// The project root holding `weir.toml`, or an error saying there is none.
fn project_root(root: &Path) -> anyhow::Result<PathBuf> {
    if !root.join("weir.toml").is_file() {
        anyhow::bail!(
            "{} holds no weir.toml; create a project with `weir init DIR --empty` or pass --project",
            root.display()
        );
    }
    Ok(root.to_path_buf())
}

fn check_asset_name(name: &str) -> anyhow::Result<()> {
    if !weir_model::is_valid_asset_name(name) {
        anyhow::bail!(
            "`{name}` is not an asset name: use lowercase letters, digits and `_`, starting with a letter (e.g. `{}`)",
            weir_model::asset_name_from(name)
        );
    }
    Ok(())
}

/// `weir new source NAME --from FILE`: `sources/NAME.toml` reading FILE's folder, and the
/// contract drafted from FILE.
pub fn new_source(
    root: &Path,
    name: &str,
    from: &Path,
    format: Option<FileFormat>,
    owner: Option<String>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let root = project_root(root)?;
    check_asset_name(name)?;
    let format = file_format(from, format)?;
    let absolute_root = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let absolute_file = from
        .canonicalize()
        .with_context(|| format!("cannot read {}", from.display()))?;
    let relative = absolute_file.strip_prefix(&absolute_root).map_err(|_| {
        anyhow::anyhow!(
            "{} is outside the project: weir reads sources relative to {}; copy it under data/{name}/ first",
            from.display(),
            root.display()
        )
    })?;
    // The file's folder, for every file like it that arrives later.
    let pattern = match (relative.parent(), relative.extension()) {
        (Some(dir), Some(ext)) if !dir.as_os_str().is_empty() => {
            format!(
                "{}/*.{}",
                weir_model::slash_path(dir),
                ext.to_string_lossy()
            )
        }
        _ => weir_model::slash_path(relative),
    };
    let sample = sample(&absolute_file, format, SAMPLE_ROWS)?;
    let contract = draft_from_sample(name, relative, &sample, owner).render();
    let mut source = format!(
        "# Feeds asset `{name}`; its contract is contracts/{name}.odcs.yaml.\nformat = \"{}\"\npath = \"{pattern}\"\n",
        format.as_str()
    );
    if let Some(delimiter) = sample.delimiter {
        source.push_str(&format!(
            "\n[options]\ndelimiter = {}\n",
            toml_string(&(delimiter as char).to_string())
        ));
    }
    let source_path = root.join("sources").join(format!("{name}.toml"));
    let contract_path = root.join("contracts").join(format!("{name}.odcs.yaml"));
    refuse_existing(&[&source_path, &contract_path])?;
    write_new(&contract_path, &contract)?;
    write_new(&source_path, &source)?;
    if json {
        crate::output::print_json(serde_json::json!({
            "asset": name,
            "files": [source_path, contract_path],
            "path": pattern,
            "rows_sampled": sample.rows,
        }));
    } else {
        eprintln!(
            "wrote {} (reads {pattern}) and {} ({} columns, from {} sampled rows)",
            source_path.display(),
            contract_path.display(),
            sample.schema.fields().len(),
            sample.rows
        );
        eprintln!(
            "next: weir check -p {0} && weir run {name} -p {0}",
            root.display()
        );
    }
    Ok(Outcome::Ok)
}

/// `weir new model NAME --sql SQL`: `models/NAME.sql` and a contract for its planned output.
pub async fn new_model(
    root: &Path,
    name: &str,
    sql: &str,
    owner: Option<String>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let root = project_root(root)?;
    check_asset_name(name)?;
    let Some(project) = super::load(&root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let tables = weir_process::table_references(sql)
        .map_err(|e| anyhow::anyhow!("the SQL does not parse: {}", e.message))?;
    let mut upstream = Vec::new();
    for table in &tables {
        let asset = project.asset(table).with_context(|| {
            format!(
                "the SQL reads `{table}`, which is not an asset of the project{}",
                weir_model::did_you_mean(table, project.assets.iter().map(|a| &a.name))
            )
        })?;
        let validator = weir_quality::Validator::new(
            table,
            &asset.contract,
            weir_quality::ParseOptions::default(),
        )?;
        upstream.push((table.clone(), validator.schema()));
    }
    let output = weir_process::output_schema(sql, &upstream)
        .await
        .map_err(|e| anyhow::anyhow!("the SQL does not plan: {}", e.message))?;
    let columns = output
        .fields()
        .iter()
        .map(|f| DraftColumn {
            name: f.name().clone(),
            logical_type: logical_type_of(f.data_type()),
            required: !f.is_nullable(),
            notes: vec![format!("planned as {}", f.data_type())],
            ..Default::default()
        })
        .collect();
    let contract = ContractDraft {
        asset: name.to_string(),
        description: Some(format!("Model over {}.", tables.join(", "))),
        owner,
        header: vec![
            "Drafted by weir from the model's planned output schema.".into(),
            "`required` is set where the query cannot produce a null.".into(),
        ],
        columns,
    }
    .render();
    let model_path = root.join("models").join(format!("{name}.sql"));
    let contract_path = root.join("contracts").join(format!("{name}.odcs.yaml"));
    refuse_existing(&[&model_path, &contract_path])?;
    write_new(&contract_path, &contract)?;
    let mut model = sql.trim_end().to_string();
    model.push('\n');
    write_new(&model_path, &model)?;
    if json {
        crate::output::print_json(
            serde_json::json!({ "asset": name, "files": [model_path, contract_path], "reads": tables }),
        );
    } else {
        eprintln!(
            "wrote {} and {} ({} columns)",
            model_path.display(),
            contract_path.display(),
            output.fields().len()
        );
    }
    Ok(Outcome::Ok)
}

fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
