use std::path::Path;

use anyhow::Context;

use crate::Outcome;
use crate::cli::Common;
use crate::demo_project::{self, Summary};

pub fn init(dir: &Path, common: &Common) -> anyhow::Result<Outcome> {
    if dir.join("weir.toml").exists() {
        eprintln!(
            "error: {} already holds a weir project (weir.toml exists)",
            dir.display()
        );
        return Ok(Outcome::BadInput);
    }
    let summary = write(dir)?;
    if common.json {
        println!(
            "{}",
            serde_json::json!({ "project": dir, "files": summary.files, "rows": summary.rows, "bad_rows": summary.bad_rows })
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
