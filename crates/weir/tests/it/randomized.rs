//! A randomized exactly-once test: a project with a keyless CSV source, a keyed NDJSON source
//! and a keyless CSV source whose rewritten files replace their rows (`on_change = "replace"`)
//! goes through cycles of random file changes (new files with bad rows, appended lines, files
//! rewritten in place and restored or replaced, unreadable files later fixed), state store and
//! journal damage, and runs SIGKILLed at random instants. After every cycle the tables, read
//! with the Python `deltalake` package, must hold exactly what an oracle model of the inputs
//! says: every accepted row once, every bad row once in the quarantine, nothing else.
//!
//! `WEIR_RANDOM_SEED` picks another seed (default 1; printed at the start and in every failure);
//! `WEIR_RANDOM_CYCLES` sets the number of cycles (default 200).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{PyLake, run_json, weir_bin};

const EVENTS: &str = "apiVersion: v3.1.0
kind: DataContract
id: events
version: 1.0.0
status: active
schema:
  - name: events
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: kind
        logicalType: string
      - name: n
        logicalType: integer
";

const LOGS: &str = "apiVersion: v3.1.0
kind: DataContract
id: logs
version: 1.0.0
status: active
schema:
  - name: logs
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: kind
        logicalType: string
      - name: n
        logicalType: integer
";

const THINGS: &str = "apiVersion: v3.1.0
kind: DataContract
id: things
version: 1.0.0
status: active
schema:
  - name: things
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
        required: true
      - name: label
        logicalType: string
      - name: n
        logicalType: integer
";

/// splitmix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Src {
    Events,
    Things,
    /// Like `Events`, with `on_change = "replace"`.
    Logs,
}

impl Src {
    fn asset(self) -> &'static str {
        match self {
            Src::Events => "events",
            Src::Things => "things",
            Src::Logs => "logs",
        }
    }

    fn csv(self) -> bool {
        self != Src::Things
    }
}

#[derive(Clone, Debug)]
enum Expect {
    Stored(i64),
    Bad(&'static str),
}

#[derive(Clone, Debug)]
struct Line {
    text: String,
    expect: Expect,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    /// On disk exactly as modelled; after a completing run, all its lines are in the lake.
    Clean,
    /// Changed in place after weir read it: weir refuses it, its modelled lines stay.
    Rewritten,
    /// Unreadable: rejected whole by every run until fixed.
    Garbage,
    /// A `Logs` file weir read, then overwritten with unreadable bytes: rejected by every run,
    /// its earlier rows (its modelled lines) stay until it is fixed, which replaces them.
    Broken,
}

struct File {
    src: Src,
    rel: String,
    lines: Vec<Line>,
    status: Status,
}

impl File {
    fn content(&self) -> String {
        let mut text = String::new();
        if self.src.csv() {
            text.push_str("id,kind,n\n");
        }
        for line in &self.lines {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }

    /// Line number of the modelled line `idx` in the file, from 1.
    fn position(&self, idx: usize) -> usize {
        idx + if self.src.csv() { 2 } else { 1 }
    }
}

struct World {
    dir: PathBuf,
    rng: Rng,
    files: Vec<File>,
    next_id: i64,
    /// Keys of `things` rows in its table (accepted by a completing run).
    things_keys: Vec<i64>,
    log: Vec<String>,
}

impl World {
    fn fresh_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// `count` lines, the first always good (so no file or chunk is all undecodable).
    fn lines(&mut self, src: Src, count: usize) -> Vec<Line> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let roll = if i == 0 { 100 } else { self.rng.below(100) };
            let id = self.fresh_id();
            let n = self.rng.below(1000);
            let line = match (src, roll) {
                (Src::Events | Src::Logs, 0..=5) => Line {
                    text: format!("{id},bad,oops{n}"),
                    expect: Expect::Bad("n.type"),
                },
                (Src::Events | Src::Logs, 6..=8) => Line {
                    text: format!("{id},short"),
                    expect: Expect::Bad("decode.field_count"),
                },
                (Src::Events | Src::Logs, _) => Line {
                    text: format!("{id},k{},{n}", id % 7),
                    expect: Expect::Stored(id),
                },
                (Src::Things, 0..=5) => Line {
                    text: format!("{{\"id\":{id},\"label\":\"bad\",\"n\":\"oops{n}\"}}"),
                    expect: Expect::Bad("n.type"),
                },
                (Src::Things, 6..=8) => Line {
                    text: format!("not json {id} {{"),
                    expect: Expect::Bad("decode.json"),
                },
                (Src::Things, 9..=11) if !self.things_keys.is_empty() => {
                    let pick = self.rng.below(self.things_keys.len() as u64) as usize;
                    let key = self.things_keys[pick];
                    Line {
                        text: format!("{{\"id\":{key},\"label\":\"dup\",\"n\":{n}}}"),
                        expect: Expect::Bad("id.duplicate"),
                    }
                }
                (Src::Things, _) => Line {
                    text: format!("{{\"id\":{id},\"label\":\"t{id}\",\"n\":{n}}}"),
                    expect: Expect::Stored(id),
                },
            };
            out.push(line);
        }
        out
    }

    fn path(&self, file: usize) -> PathBuf {
        self.dir.join(&self.files[file].rel)
    }

    fn write(&self, file: usize, bytes: &[u8]) {
        std::fs::write(self.path(file), bytes).expect("write");
    }

    fn new_file(&mut self, src: Src, status: Status) -> usize {
        let ext = if src.csv() { "csv" } else { "ndjson" };
        let rel = format!("data/{}/f{:04}.{ext}", src.asset(), self.files.len());
        let lines = if status == Status::Garbage {
            Vec::new()
        } else {
            let count = 3 + self.rng.below(25) as usize;
            self.lines(src, count)
        };
        self.files.push(File {
            src,
            rel,
            lines,
            status,
        });
        self.files.len() - 1
    }

    fn pick(&mut self, touched: &[usize], status: Status) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.files.len())
            .filter(|i| self.files[*i].status == status && !touched.contains(i))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.below(candidates.len() as u64) as usize])
    }

    fn remove_state(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.dir.join(format!(".weir/state.db{suffix}")));
        }
    }

    /// One random change; files changed this cycle are in `touched`.
    fn act(&mut self, touched: &mut Vec<usize>) {
        let roll = self.rng.below(100);
        let src = match self.rng.below(3) {
            0 => Src::Events,
            1 => Src::Things,
            _ => Src::Logs,
        };
        match roll {
            0..=34 => {
                let f = self.new_file(src, Status::Clean);
                self.write(f, self.files[f].content().as_bytes());
                touched.push(f);
                self.log.push(format!("add {}", self.files[f].rel));
            }
            35..=54 => {
                let Some(f) = self.pick(touched, Status::Clean) else {
                    return;
                };
                let count = 1 + self.rng.below(8) as usize;
                let src = self.files[f].src;
                let chunk = self.lines(src, count);
                let text: String = chunk.iter().map(|l| format!("{}\n", l.text)).collect();
                use std::io::Write;
                let mut out = std::fs::OpenOptions::new()
                    .append(true)
                    .open(self.path(f))
                    .expect("open");
                out.write_all(text.as_bytes()).expect("append");
                self.files[f].lines.extend(chunk);
                touched.push(f);
                self.log
                    .push(format!("append {count} lines to {}", self.files[f].rel));
            }
            55..=62 => {
                let Some(f) = self.pick(touched, Status::Clean) else {
                    return;
                };
                // Another first row and one more: not an append of what weir read.
                let src = self.files[f].src;
                if src == Src::Logs && self.rng.chance(30) {
                    let bytes = self.garbage();
                    self.write(f, &bytes);
                    self.files[f].status = Status::Broken;
                    touched.push(f);
                    self.log.push(format!("break {}", self.files[f].rel));
                    return;
                }
                let mut changed = File {
                    src,
                    rel: String::new(),
                    lines: self.files[f].lines.clone(),
                    status: Status::Clean,
                };
                changed.lines[0] = self.lines(src, 1).remove(0);
                changed.lines.extend(self.lines(src, 1));
                self.write(f, changed.content().as_bytes());
                if src == Src::Logs {
                    // Its new content replaces its earlier rows.
                    self.files[f].lines = changed.lines;
                    self.log.push(format!("replace {}", self.files[f].rel));
                } else {
                    self.files[f].status = Status::Rewritten;
                    self.log.push(format!("rewrite {}", self.files[f].rel));
                }
                touched.push(f);
            }
            63..=69 => {
                let Some(f) = self.pick(touched, Status::Rewritten) else {
                    return;
                };
                self.write(f, self.files[f].content().as_bytes());
                self.files[f].status = Status::Clean;
                touched.push(f);
                self.log.push(format!("restore {}", self.files[f].rel));
            }
            70..=73 => {
                let f = self.new_file(src, Status::Garbage);
                let bytes = self.garbage();
                self.write(f, &bytes);
                touched.push(f);
                self.log.push(format!("garbage {}", self.files[f].rel));
            }
            74..=86 => {
                let broken = if self.rng.chance(50) {
                    Status::Broken
                } else {
                    Status::Garbage
                };
                let Some(f) = self.pick(touched, broken) else {
                    return;
                };
                let src = self.files[f].src;
                let count = 3 + self.rng.below(20) as usize;
                self.files[f].lines = self.lines(src, count);
                self.files[f].status = Status::Clean;
                self.write(f, self.files[f].content().as_bytes());
                touched.push(f);
                self.log.push(format!("fix {}", self.files[f].rel));
            }
            87..=93 => {
                self.remove_state();
                self.log.push("delete state.db".into());
            }
            _ => {
                self.remove_state();
                std::fs::write(self.dir.join(".weir/state.db"), b"garbage, not sqlite")
                    .expect("write");
                self.log.push("garbage state.db".into());
            }
        }
    }

    /// Lines of bytes that are not UTF-8: a file no reader accepts.
    fn garbage(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..3 + self.rng.below(4) {
            for _ in 0..8 + self.rng.below(30) {
                bytes.push(0x80 + self.rng.below(0x7f) as u8);
            }
            bytes.push(b'\n');
        }
        bytes
    }

    /// `weir run`, SIGKILLed after a random delay of 0 to 800 ms.
    fn killed_run(&mut self) {
        let delay = self.rng.below(800);
        let mut child = Command::new(weir_bin())
            .args(["run", "--json", "--project"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        self.log.push(format!("run killed after {delay} ms"));
    }

    fn damage_after_kill(&mut self) {
        let roll = self.rng.below(100);
        if roll < 25 {
            let journals = self.dir.join(".weir/journal");
            let mut gone = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&journals) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().to_string();
                    if name.ends_with(".json") && std::fs::remove_file(entry.path()).is_ok() {
                        gone.push(name);
                    }
                }
            }
            self.log.push(format!("delete journals {gone:?}"));
        } else if roll < 35 {
            self.remove_state();
            self.log.push("delete state.db after kill".into());
        } else if roll < 40 {
            self.remove_state();
            std::fs::write(self.dir.join(".weir/state.db"), b"\x00garbage").expect("write");
            self.log.push("garbage state.db after kill".into());
        }
    }

    /// What the lake must hold: per asset, stored ids and `source|position|rule` of bad rows.
    fn oracle(&self, src: Src) -> (Vec<i64>, Vec<String>) {
        let mut stored = Vec::new();
        let mut bad = Vec::new();
        for file in self
            .files
            .iter()
            .filter(|f| f.src == src && f.status != Status::Garbage)
        {
            for (idx, line) in file.lines.iter().enumerate() {
                match line.expect {
                    Expect::Stored(id) => stored.push(id),
                    Expect::Bad(rule) => {
                        bad.push(format!("{}|{}|{rule}", file.rel, file.position(idx)))
                    }
                }
            }
        }
        stored.sort_unstable();
        bad.sort();
        (stored, bad)
    }

    fn accept(&mut self) {
        let keys: Vec<i64> = self
            .files
            .iter()
            .filter(|f| f.src == Src::Things && f.status != Status::Garbage)
            .flat_map(|f| f.lines.iter())
            .filter_map(|l| match l.expect {
                Expect::Stored(id) => Some(id),
                Expect::Bad(_) => None,
            })
            .collect();
        self.things_keys = keys;
    }
}

fn project(dir: &Path) {
    for sub in [
        "contracts",
        "sources",
        "data/events",
        "data/things",
        "data/logs",
        ".weir",
    ] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"random\"\n").expect("write");
    std::fs::write(dir.join("contracts/events.odcs.yaml"), EVENTS).expect("write");
    std::fs::write(dir.join("contracts/things.odcs.yaml"), THINGS).expect("write");
    std::fs::write(dir.join("contracts/logs.odcs.yaml"), LOGS).expect("write");
    std::fs::write(
        dir.join("sources/logs.toml"),
        "format = \"csv\"\npath = \"data/logs/*.csv\"\nmax_quarantined = \"100%\"\non_change = \"replace\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/events.toml"),
        "format = \"csv\"\npath = \"data/events/*.csv\"\nmax_quarantined = \"100%\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/things.toml"),
        "format = \"ndjson\"\npath = \"data/things/*.ndjson\"\nmax_quarantined = \"100%\"\n",
    )
    .expect("write");
}

/// Elements of `a` not matched in `b`, as multisets (both sorted).
fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut counts: BTreeMap<&T, i64> = BTreeMap::new();
    for x in b {
        *counts.entry(x).or_default() += 1;
    }
    let mut out = Vec::new();
    for x in a {
        match counts.get_mut(x) {
            Some(c) if *c > 0 => *c -= 1,
            _ => out.push(x.clone()),
        }
    }
    out
}

#[test]
fn random_changes_kills_and_damage_never_lose_nor_double_a_row() {
    let seed = std::env::var("WEIR_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        // A fixed default keeps CI's file actions the same every time (the SIGKILL instants
        // still vary); set WEIR_RANDOM_SEED to explore others.
        .unwrap_or(1);
    let cycles: usize = std::env::var("WEIR_RANDOM_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    eprintln!("randomized: WEIR_RANDOM_SEED={seed} WEIR_RANDOM_CYCLES={cycles}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    project(&dir);
    let mut world = World {
        dir: dir.clone(),
        rng: Rng(seed),
        files: Vec::new(),
        next_id: 0,
        things_keys: Vec::new(),
        log: Vec::new(),
    };
    let mut lake = PyLake::start();
    let tables: Vec<(Src, PathBuf, PathBuf)> = [Src::Events, Src::Things, Src::Logs]
        .into_iter()
        .map(|s| {
            (
                s,
                dir.join("lake").join(s.asset()),
                dir.join("lake/_quarantine").join(s.asset()),
            )
        })
        .collect();
    let started = Instant::now();
    let (mut kills, mut weir_time, mut check_time) = (0, Duration::ZERO, Duration::ZERO);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let (mut rejected_files, mut replaced_files) = (0, 0);
    for cycle in 0..cycles {
        world.log.push(format!("-- cycle {cycle}"));
        let mut touched = Vec::new();
        for _ in 0..1 + world.rng.below(3) {
            world.act(&mut touched);
        }
        let t = Instant::now();
        if world.rng.chance(50) {
            world.killed_run();
            world.damage_after_kill();
            kills += 1;
        }
        let (code, doc) = run_json(&dir, &[]);
        weir_time += t.elapsed();
        let context = |world: &World, what: String| {
            let from = world.log.len().saturating_sub(40);
            format!(
                "seed {seed}, cycle {cycle}: {what}\nlast actions:\n  {}\nrun: {doc}",
                world.log[from..].join("\n  ")
            )
        };
        assert!(
            code == 0 || code == 1,
            "{}",
            context(&world, format!("exit {code}"))
        );
        let held = doc["held"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(held, 0, "{}", context(&world, "an asset is held".into()));
        for run in doc["runs"].as_array().into_iter().flatten() {
            let status = run["status"].as_str().unwrap_or_default();
            *statuses.entry(status.to_string()).or_default() += 1;
            rejected_files += run["rejected_files"].as_array().map(Vec::len).unwrap_or(0);
            replaced_files += run["replaced_files"].as_array().map(Vec::len).unwrap_or(0);
            assert!(
                ["success", "partial", "up_to_date", "error"].contains(&status),
                "{}",
                context(&world, format!("status {status}"))
            );
        }
        world.log.push(format!(
            "run exit {code}: {}",
            doc["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| format!("{} {}", r["asset"], r["status"]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let t = Instant::now();
        let specs: Vec<(&Path, &str)> =
            tables.iter().map(|(_, t, _)| (t.as_path(), "id")).collect();
        let quarantines: Vec<&Path> = tables.iter().map(|(_, _, q)| q.as_path()).collect();
        let read = lake.read(&specs, &quarantines);
        check_time += t.elapsed();
        for (src, table, quarantine) in &tables {
            let (want_ids, want_bad) = world.oracle(*src);
            let got_ids: Vec<i64> = read.tables[&table.display().to_string()]
                .iter()
                .map(|v: &Value| v.as_i64().unwrap_or(i64::MIN))
                .collect();
            let got_bad = &read.quarantines[&quarantine.display().to_string()];
            let lost = minus(&want_ids, &got_ids);
            let extra = minus(&got_ids, &want_ids);
            let lost_bad = minus(&want_bad, got_bad);
            let extra_bad = minus(got_bad, &want_bad);
            assert!(
                lost.is_empty() && extra.is_empty() && lost_bad.is_empty() && extra_bad.is_empty(),
                "{}",
                context(
                    &world,
                    format!(
                        "{}: {} stored (want {}, sum {} want {}), {} quarantined (want {}); \
                         lost rows {lost:?}, extra rows {extra:?}, \
                         lost quarantine {lost_bad:?}, extra quarantine {extra_bad:?}",
                        src.asset(),
                        got_ids.len(),
                        want_ids.len(),
                        got_ids.iter().sum::<i64>(),
                        want_ids.iter().sum::<i64>(),
                        got_bad.len(),
                        want_bad.len(),
                    )
                )
            );
        }
        world.accept();
    }
    let (rows, bad): (usize, usize) = [Src::Events, Src::Things, Src::Logs]
        .iter()
        .map(|s| world.oracle(*s))
        .fold((0, 0), |acc, (r, b)| (acc.0 + r.len(), acc.1 + b.len()));
    eprintln!(
        "randomized: seed {seed}: {cycles} cycles, {} files, {rows} rows stored, {bad} quarantined, \
         {kills} kills, runs {statuses:?}, {rejected_files} files rejected, \
         {replaced_files} replaced, in {:.1?} \
         (weir {:.1?}, python checks {:.1?})",
        world.files.len(),
        started.elapsed(),
        weir_time,
        check_time
    );
}
