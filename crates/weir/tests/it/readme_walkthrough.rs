//! The README's "Your first project" block, run as it stands: a newcomer who pastes it into a
//! shell gets a checked, running project.

use std::path::Path;
use std::process::Command;

use crate::support::weir_bin;

/// The shell block that follows the `<!-- walkthrough -->` marker in README.md.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let after = readme
        .split_once("<!-- walkthrough -->")
        .map(|(_, rest)| rest)
        .expect("the README has a <!-- walkthrough --> marker");
    let block = after
        .split_once("```sh\n")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("a ```sh block follows the marker");
    block.to_string()
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let script = walkthrough();
    assert!(script.contains("weir init shop --empty"), "{script}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin_dir = weir_bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .current_dir(tmp.path())
        .env("PATH", path)
        .env_remove("WEIR_LOG")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // What the README says happens, happens.
    assert!(
        stdout.contains("apiVersion: v3.1.0"),
        "contract infer printed: {stdout}"
    );
    assert!(
        stderr.contains("ok: 3 assets, 0 errors, 0 warnings"),
        "{stderr}"
    );
    assert!(
        stdout.contains("quarantined by rule: amount.type: 1"),
        "{stdout}"
    );
    for tier in ["gold", "silver"] {
        assert!(stdout.contains(tier), "{stdout}");
    }
    assert!(
        stdout.contains("amount.type") && stdout.contains("n/a"),
        "the quarantine shows the row: {stdout}"
    );
}
