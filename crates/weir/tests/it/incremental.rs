//! Incremental models against their oracle: after every batch of messy upstream data (late
//! rows, ties, NULL timestamps, repeated rows), each incremental model's table equals a
//! `--full-refresh` of a copy of the project, row for row, read back with the Python
//! `deltalake` package. Also when each run is SIGKILLed at a random instant and re-run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{run_json, run_of, weir_bin};

fn contract(name: &str, columns: &[Column]) -> String {
    let mut text = format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: {name}\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: {name}\n    properties:\n"
    );
    for (column, logical, required) in columns {
        text.push_str(&format!(
            "      - name: {column}\n        logicalType: {logical}\n        required: {required}\n"
        ));
    }
    text
}

/// A contract column: name, ODCS logical type, required.
type Column = (&'static str, &'static str, bool);

/// The models under test, each with its contract columns.
const MODELS: &[(&str, &str, &[Column])] = &[
    (
        "events_clean",
        "-- weir: materialized = incremental, strategy = append\nSELECT id, user_id, ts, day, amount FROM events WHERE amount >= 0\n",
        &[
            ("id", "integer", true),
            ("user_id", "integer", false),
            ("ts", "timestamp", false),
            ("day", "date", true),
            ("amount", "number", false),
        ],
    ),
    (
        "events_enriched",
        "-- weir: materialized = incremental, strategy = append\nSELECT e.id, e.amount, u.country FROM events e JOIN users u ON e.user_id = u.user_id\n",
        &[
            ("id", "integer", true),
            ("amount", "number", false),
            ("country", "string", false),
        ],
    ),
    (
        "daily",
        "-- weir: materialized = incremental, strategy = merge, unique_key = day\nSELECT day, COUNT(*) AS n, SUM(amount) AS total FROM events GROUP BY day\n",
        &[
            ("day", "date", true),
            ("n", "integer", true),
            ("total", "number", false),
        ],
    ),
    (
        // A key computed from an upstream timestamp: the days new rows touch are recomputed
        // with a filter rewritten into timestamp ranges (weir_process::DateRangePruning).
        "daily_by_ts",
        "-- weir: materialized = incremental, strategy = merge, unique_key = ts_day\nSELECT CAST(ts AS DATE) AS ts_day, COUNT(*) AS n, SUM(amount) AS total FROM events WHERE ts IS NOT NULL GROUP BY CAST(ts AS DATE)\n",
        &[
            ("ts_day", "date", true),
            ("n", "integer", true),
            ("total", "number", false),
        ],
    ),
    (
        "latest_per_user",
        "-- weir: materialized = incremental, strategy = merge, unique_key = user_id\nSELECT DISTINCT ON (user_id) user_id, id, amount FROM events WHERE user_id IS NOT NULL ORDER BY user_id, id DESC, amount DESC\n",
        &[
            ("user_id", "integer", true),
            ("id", "integer", true),
            ("amount", "number", false),
        ],
    ),
    (
        "user_countries",
        "-- weir: materialized = incremental, strategy = merge, unique_key = user_id\nSELECT e.user_id, MAX(u.country) AS country, COUNT(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id GROUP BY e.user_id\n",
        &[
            ("user_id", "integer", true),
            ("country", "string", false),
            ("n", "integer", true),
        ],
    ),
];

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in [
        "contracts",
        "sources",
        "models",
        "data/events",
        "data/users",
    ] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"inc\"\n").expect("write");
    std::fs::write(
        dir.join("contracts/events.odcs.yaml"),
        contract(
            "events",
            &[
                ("id", "integer", true),
                ("user_id", "integer", false),
                ("ts", "timestamp", false),
                ("day", "date", true),
                ("amount", "number", false),
            ],
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("contracts/users.odcs.yaml"),
        contract(
            "users",
            &[("user_id", "integer", true), ("country", "string", false)],
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/events.toml"),
        "format = \"ndjson\"\npath = \"data/events/*.ndjson\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/users.toml"),
        "format = \"csv\"\npath = \"data/users/*.csv\"\n",
    )
    .expect("write");
    for (name, sql, columns) in MODELS {
        std::fs::write(dir.join(format!("models/{name}.sql")), sql).expect("write");
        std::fs::write(
            dir.join(format!("contracts/{name}.odcs.yaml")),
            contract(name, columns),
        )
        .expect("write");
    }
    (tmp, dir)
}

/// A deterministic pseudo-random sequence, so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Batch `b` of messy events: late days, ties on the same timestamp, NULL timestamps and
/// users, negative amounts, and rows repeated verbatim. From batch 5 on, a batch holds only
/// the last three days (ties, NULLs and repeats still), as a daily load does: a merge model
/// keyed by the date then lists its days from the new file's statistics instead of querying
/// the new rows (`DateKey` in `run_model.rs`), and that path meets the oracle too.
fn write_batch(dir: &Path, b: u64, rng: &mut Lcg) {
    let recent_only = b >= 5;
    let mut lines = Vec::new();
    for i in 0..200 {
        let id = b * 1000 + i;
        // Mostly recent days, some late ones far back.
        let late = rng.next(10) == 0;
        let day = if late && !recent_only {
            1 + rng.next(5)
        } else {
            (20 + b * 2).min(28) + rng.next(3)
        };
        let tie = if recent_only { 29 } else { 20 };
        let ts = match rng.next(8) {
            0 => "null".to_string(),
            1 => format!("\"2026-01-{tie}T00:00:00Z\""),
            _ => format!("\"2026-01-{day:02}T{:02}:00:00Z\"", rng.next(24)),
        };
        let user = if rng.next(12) == 0 {
            "null".to_string()
        } else {
            (1 + rng.next(30)).to_string()
        };
        let amount = rng.next(1000) as i64 - 100;
        let line = format!(
            "{{\"id\":{id},\"user_id\":{user},\"ts\":{ts},\"day\":\"2026-01-{day:02}\",\"amount\":{amount}.5}}"
        );
        if rng.next(10) == 0 {
            lines.push(line.clone());
        }
        lines.push(line);
    }
    std::fs::write(
        dir.join(format!("data/events/batch_{b}.ndjson")),
        lines.join("\n"),
    )
    .expect("write");
    // Users arrive over time too, so the join sees both sides grow.
    let users: Vec<String> = (b * 6 + 1..=b * 6 + 6)
        .map(|u| format!("{u},C{}", u % 4))
        .collect();
    std::fs::write(
        dir.join(format!("data/users/users_{b}.csv")),
        format!("user_id,country\n{}\n", users.join("\n")),
    )
    .expect("write");
}

const DUMP: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for path in sys.argv[1:]:
    t = DeltaTable(path).to_pyarrow_table()
    rows = [json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist()]
    rows.sort()
    out[os.path.basename(path)] = rows
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"#;

/// Every model table's rows, sorted, as the Python `deltalake` package reads them.
fn dump(dir: &Path) -> serde_json::Value {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(DUMP);
    for (name, _, _) in MODELS {
        cmd.arg(dir.join("lake").join(name));
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "the independent reader failed (scripts/test.sh installs `deltalake`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// The oracle: the same project, copied, rebuilt from scratch with `--full-refresh`.
fn assert_equals_full_refresh(dir: &Path, label: &str) {
    let copy = tempfile::tempdir().expect("tempdir");
    let target = copy.path().join("copy");
    copy_dir(dir, &target);
    let (code, doc) = run_json(&target, &["--full-refresh"]);
    assert_eq!(code, 0, "{label}: full refresh failed: {doc}");
    let incremental = dump(dir);
    let oracle = dump(&target);
    for (name, _, _) in MODELS {
        let a = &incremental[name];
        let b = &oracle[name];
        assert!(
            a.as_array().is_some_and(|r| !r.is_empty()),
            "{label}: {name} is empty"
        );
        assert_eq!(
            a,
            b,
            "{label}: incremental `{name}` differs from a full refresh ({} vs {} rows)",
            a.as_array().map_or(0, Vec::len),
            b.as_array().map_or(0, Vec::len)
        );
    }
}

#[test]
fn incremental_models_equal_a_full_refresh_after_messy_batches() {
    let (_tmp, dir) = project();
    let mut rng = Lcg(7);
    for b in 0..7 {
        write_batch(&dir, b, &mut rng);
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "batch {b}: {doc}");
        if b > 0 {
            // The exact models ran incrementally: no "recomputed in full" for them.
            for name in [
                "events_clean",
                "events_enriched",
                "daily",
                "daily_by_ts",
                "latest_per_user",
            ] {
                let run = run_of(&doc, name);
                assert_eq!(run["status"], "success", "batch {b} {name}: {run}");
                let warnings = run["warnings"].to_string();
                assert!(
                    !warnings.contains("recomputed in full"),
                    "batch {b} {name} was not incremental: {warnings}"
                );
            }
        }
        assert_equals_full_refresh(&dir, &format!("batch {b}"));
    }
    // Nothing new: every model is up to date.
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    for (name, _, _) in MODELS {
        assert_eq!(run_of(&doc, name)["status"], "up_to_date", "{name}");
    }
}

#[test]
fn incremental_models_stay_exact_when_runs_are_killed() {
    let (_tmp, dir) = project();
    let mut rng = Lcg(11);
    for b in 0..5 {
        write_batch(&dir, b, &mut rng);
        // Kill the run somewhere between start and 1.5 s in, then run again to completion.
        let delay = Duration::from_millis(100 + rng.next(1400));
        let mut child = Command::new(weir_bin())
            .args(["run", "--json", "--project"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "batch {b} after a kill at {delay:?}: {doc}");
        assert_equals_full_refresh(&dir, &format!("batch {b}, killed at {delay:?}"));
    }
}

#[test]
fn an_edited_incremental_model_is_reported_not_mixed() {
    let (_tmp, dir) = project();
    let mut rng = Lcg(3);
    write_batch(&dir, 0, &mut rng);
    let (code, _) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let before = dump(&dir);
    let path = dir.join("models/events_clean.sql");
    let sql = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, sql.replace("amount >= 0", "amount >= 100")).expect("write");
    write_batch(&dir, 1, &mut rng);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "events_clean");
    assert_eq!(run["status"], "needs_full_refresh", "{run}");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("--full-refresh")),
        "{run}"
    );
    // The table was left as it was; the other models went on.
    assert_eq!(dump(&dir)["events_clean"], before["events_clean"]);
    assert_eq!(run_of(&doc, "daily")["status"], "success");
    let (code, doc) = run_json(&dir, &["events_clean", "--full-refresh"]);
    assert_eq!(code, 0, "{doc}");
    assert_equals_full_refresh(&dir, "after the rebuild");
    // With on_definition_change = "rebuild", an edit rebuilds on the next run.
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"inc\"\non_definition_change = \"rebuild\"\n",
    )
    .expect("write");
    std::fs::write(&path, sql.replace("amount >= 0", "amount >= 500")).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "events_clean");
    assert!(run["warnings"].to_string().contains("rebuild"), "{run}");
    assert_equals_full_refresh(&dir, "after the automatic rebuild");
}

#[test]
fn a_rebuilt_upstream_table_recomputes_its_downstream() {
    let (_tmp, dir) = project();
    let mut rng = Lcg(5);
    write_batch(&dir, 0, &mut rng);
    write_batch(&dir, 1, &mut rng);
    let (code, _) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    // Delete the events table and its inputs but one file, and rebuild it: version numbers
    // start again, so only the table id tells it is another table.
    std::fs::remove_file(dir.join("data/events/batch_0.ndjson")).expect("rm");
    std::fs::remove_dir_all(dir.join("lake/events")).expect("rm");
    // Its quarantine table too, if a row was ever quarantined (it is created with the first).
    let quarantine = dir.join("lake/_quarantine/events");
    if quarantine.exists() {
        std::fs::remove_dir_all(quarantine).expect("rm");
    }
    let (code, doc) = run_json(&dir, &["events", "--full-refresh"]);
    assert_eq!(code, 0, "{doc}");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    for name in ["events_clean", "daily"] {
        let run = run_of(&doc, name);
        assert_eq!(run["status"], "success", "{name}: {run}");
        assert!(
            run["warnings"].to_string().contains("rebuilt"),
            "{name}: {run}"
        );
    }
    assert_equals_full_refresh(&dir, "after the upstream rebuild");
}

#[test]
fn a_merge_with_duplicate_keys_fails_cleanly_and_null_keys_are_quarantined() {
    let (_tmp, dir) = project();
    let mut rng = Lcg(9);
    write_batch(&dir, 0, &mut rng);
    // A merge keyed on something the query repeats: every user has many rows.
    std::fs::write(
        dir.join("models/by_user.sql"),
        "-- weir: materialized = incremental, strategy = merge, unique_key = user_id\nSELECT user_id, id FROM events\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("contracts/by_user.odcs.yaml"),
        contract(
            "by_user",
            &[("user_id", "integer", false), ("id", "integer", true)],
        ),
    )
    .expect("write");
    for round in 0..2 {
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 1, "round {round}: {doc}");
        let run = run_of(&doc, "by_user");
        assert_eq!(run["status"], "failed", "round {round}: {run}");
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains("user_id="), "the keys are named: {run}");
        // NULL keys were quarantined as `required`, not merged.
        assert!(
            run["quarantine_by_rule"]["user_id.required"].as_u64() > Some(0),
            "{run}"
        );
        // The rest of the project ran.
        assert_eq!(
            run_of(&doc, "daily")["status"],
            if round == 0 { "success" } else { "up_to_date" }
        );
        assert!(!dir.join(".weir/journal/by_user.json").exists());
    }
}
