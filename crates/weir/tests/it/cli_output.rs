//! What the CLI prints when a script, not a person, reads it: no colour codes, no log lines
//! from the libraries weir uses, and errors said once, in a sentence.

use std::process::Command;

use crate::support::{demo_project, weir, weir_bin};

fn has_log_line(text: &str) -> bool {
    text.lines().any(|l| {
        [" WARN ", " INFO ", " DEBUG ", " TRACE "]
            .iter()
            .any(|level| l.contains(level))
    })
}

#[test]
fn demo_piped_prints_no_log_lines_and_no_colour() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(weir_bin())
        .arg("demo")
        .current_dir(tmp.path())
        .env_remove("WEIR_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("demo runs");
    assert!(out.status.success());
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains('\u{1b}'), "an ANSI escape: {text}");
        assert!(!has_log_line(&text), "a log line: {text}");
    }
    // Asked for, log lines come, still without colour when piped.
    let out = Command::new(weir_bin())
        .args(["run", "-vv", "-p", "weir-demo"])
        .current_dir(tmp.path())
        .env_remove("WEIR_LOG")
        .output()
        .expect("run runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(has_log_line(&stderr), "-vv shows debug lines: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "an ANSI escape: {stderr}");
}

#[test]
fn query_errors_say_what_was_asked_once() {
    let (_tmp, dir) = demo_project();
    let out = weir(&dir, &["run"]);
    assert!(out.status.success());
    let out = weir(
        &dir,
        &["query", "SELECT COUNT(*) FROM orders", "--at", "99"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("`orders` has versions 0 to 1; there is no version 99"),
        "{stderr}"
    );
    let out = weir(&dir, &["query", "SELECT nope FROM orders"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: the query does not plan: ") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn piped_progress_is_a_plain_line_per_phase() {
    let (_tmp, dir) = demo_project();
    let out = Command::new(weir_bin())
        .args(["run", "--project"])
        .arg(&dir)
        .env("WEIR_PROGRESS_SECS", "0")
        .output()
        .expect("run runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("orders: reading ") && l.contains(" rows ("))
        .unwrap_or_else(|| panic!("no reading line: {stderr}"));
    assert!(
        line.contains(" MB of ") && line.contains("rows/s"),
        "{line}"
    );
    for phase in [
        "orders: auditing",
        "orders: publishing",
        "stg_orders: computing",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(phase)),
            "no `{phase}`: {stderr}"
        );
    }
    // By default (every 5 s) a quick run prints none of them.
    let (_tmp, dir) = demo_project();
    let out = weir(&dir, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(": reading"), "{stderr}");
}

#[test]
fn project_warnings_are_printed_where_they_concern_the_command() {
    let (_tmp, dir) = demo_project();
    // A team the project does not declare: a warning about alerts, which concerns `run` and
    // `check`, not a query.
    let path = dir.join("contracts/orders.odcs.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replacen("  name: sales\n", "  name: nobody\n", 1),
    )
    .expect("write");
    let warning = "team `nobody` is not declared";
    let out = weir(&dir, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    for args in [
        vec!["query", "SELECT COUNT(*) FROM orders"],
        vec!["show", "orders"],
        vec!["runs"],
    ] {
        let out = weir(&dir, &args);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(warning), "weir {args:?}: {stderr}");
    }
}

#[test]
fn summary_tables_fit_the_terminal_width() {
    let (_tmp, dir) = demo_project();
    for args in [
        &["run"][..],
        &["runs"][..],
        &["show", "orders"][..],
        &["quarantine", "orders"][..],
    ] {
        for width in [60usize, 100] {
            let out = Command::new(weir_bin())
                .args(args)
                .arg("--project")
                .arg(&dir)
                .env("COLUMNS", width.to_string())
                .output()
                .expect("weir runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            // A table, or one block per row (`  column  value`) where a table does not fit.
            let table_lines: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with(['┌', '│', '╞', '└']) || l.starts_with("  "))
                .collect();
            assert!(!table_lines.is_empty(), "{args:?}: no table\n{stdout}");
            for line in table_lines {
                assert!(
                    line.chars().count() <= width,
                    "{args:?} at {width} columns: {line:?}\n{stdout}"
                );
            }
        }
    }
}

/// `--log-format json`: every log line on stderr is one JSON object, and the lines written
/// while an asset runs name the run and the asset (for a log shipper to group them).
#[test]
fn json_logs_are_one_object_per_line_with_the_run_and_asset() {
    let (_tmp, dir) = crate::support::demo_project();
    let out = std::process::Command::new(crate::support::weir_bin())
        .args(["run", "-vv", "--log-format", "json", "--project"])
        .arg(&dir)
        .output()
        .expect("weir runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut in_runs = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let doc: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            doc["level"].is_string() && doc["timestamp"].is_string(),
            "{line}"
        );
        if doc["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("weir_orchestrate::run_model"))
        {
            let run = doc["spans"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "asset_run"))
                .unwrap_or_else(|| panic!("a model's log line outside its run: {line}"));
            assert!(
                run["run_id"].as_str().is_some_and(|id| id.len() == 36),
                "{line}"
            );
            assert!(run["asset"].is_string(), "{line}");
            in_runs += 1;
        }
    }
    assert!(in_runs > 0, "no log line of a model run: {stderr}");
}
