use std::path::Path;

use anyhow::Context;

use crate::Outcome;
use crate::demo_project::{self, Summary};

pub fn init(dir: &Path, empty: bool, json: bool) -> anyhow::Result<Outcome> {
    if dir.join("weir.toml").exists() {
        return Ok(crate::output::user_error(
            "exists",
            format!(
                "{} already holds a weir project (weir.toml exists)",
                dir.display()
            ),
        ));
    }
    if empty {
        let files = write_empty(dir)
            .with_context(|| format!("cannot create the project in {}", dir.display()))?;
        if json {
            crate::output::print_json(serde_json::json!({ "project": dir, "files": files }));
        } else {
            eprintln!("created the empty project {}", dir.display());
            eprintln!(
                "next: put a sample file under {0}/data/NAME/, then `weir new source NAME --from FILE -p {0}`",
                dir.display()
            );
        }
        return Ok(Outcome::Ok);
    }
    let summary = write(dir)?;
    if json {
        crate::output::print_json(
            serde_json::json!({ "project": dir, "files": summary.files, "rows": summary.rows, "bad_rows": summary.bad_rows }),
        );
    } else {
        announce(dir, &summary);
    }
    Ok(Outcome::Ok)
}

/// `init` for `demo`: talks only on stderr, so that `demo --json` prints one JSON document
/// (the run's).
pub fn scaffold(dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let summary = write(dir)?;
    if !quiet {
        announce(dir, &summary);
    }
    Ok(())
}

/// A blank project: `weir.toml`, the folders, and an annotated example contract that weir does
/// not load (its name does not end in `.yaml`).
fn write_empty(dir: &Path) -> std::io::Result<Vec<String>> {
    let name = weir_model::asset_name_from(
        &dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let mut files = Vec::new();
    for sub in ["contracts", "sources", "models", "data"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let mut write = |path: &str, text: &str| -> std::io::Result<()> {
        std::fs::write(dir.join(path), text)?;
        files.push(path.to_string());
        Ok(())
    };
    write(
        "weir.toml",
        &format!(
            "# A weir project. Assets: contracts/ (one ODCS contract each), sources/ (files to\n# ingest) and models/ (SQL over other assets). Tables go to lake/, weir's state to .weir/.\n[project]\nname = \"{name}\"\n"
        ),
    )?;
    write("contracts/example.odcs.yaml.sample", EXAMPLE_CONTRACT)?;
    write(".gitignore", "lake/\n.weir/\n")?;
    Ok(files)
}

/// Every part of a contract weir uses, annotated. Valid ODCS v3.1.0 (a test checks it parses
/// and passes datacontract-cli's lint).
pub const EXAMPLE_CONTRACT: &str = include_str!("example.odcs.yaml");

fn write(dir: &Path) -> anyhow::Result<Summary> {
    demo_project::write(dir)
        .with_context(|| format!("cannot create the project in {}", dir.display()))
}

fn announce(dir: &Path, summary: &Summary) {
    eprintln!(
        "created {} with {} files: {} rows of shop data, {} of them deliberately bad",
        dir.display(),
        summary.files.len(),
        summary.rows,
        summary.bad_rows
    );
    eprintln!("next: weir check -p {0} && weir run -p {0}", dir.display());
}
