//! Incidents end to end, against a real webhook receiver on loopback: a bad file under
//! `weir serve` opens one incident and sends one alert to the owning team (with the affected
//! downstream assets and their owners), a good file resolves it with a second notification
//! and MTTD/MTTR filled in; and an alert storm (a failing source with 33 assets downstream)
//! is one incident and one alert, delivered exactly once after the receiver was down for a
//! minute.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{TOKEN, http, start};
use crate::support::{demo_project, weir};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

pub(crate) type Hits = Arc<Mutex<Vec<Hit>>>;

/// A receiver on a free loopback port, and that port.
pub(crate) fn receiver() -> (Hits, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (receive_on(listener), port)
}

/// A webhook receiver: answers 200 to every POST and keeps what it got.
pub(crate) fn receive_on(listener: TcpListener) -> Hits {
    let hits: Hits = Arc::default();
    let kept = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(hit) = read_request(stream) {
                kept.lock().expect("hits").push(hit);
            }
        }
    });
    hits
}

fn read_request(mut stream: TcpStream) -> Option<Hit> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut length, mut key) = (0usize, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "idempotency-key" => key = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Hit {
        path,
        idempotency_key: key,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

pub(crate) fn hits_on(hits: &Hits, path: &str) -> Vec<Hit> {
    hits.lock()
        .expect("hits")
        .iter()
        .filter(|h| h.path == path)
        .cloned()
        .collect()
}

/// Waits until the receiver has `n` requests on `path`; panics after `secs`.
pub(crate) fn wait_for_hits(hits: &Hits, path: &str, n: usize, secs: u64) -> Vec<Hit> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = hits_on(hits, path);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{n} notification(s) on {path}: not within {secs} s; got {got:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Gives the sales team a webhook (and finance another, which must stay silent).
fn route_alerts(dir: &Path, sales: &str, finance: &str) {
    let config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    let config = config
        .replace(
            "channels = [\"slack:#sales-data\", \"email:sales-data@example.com\"]",
            &format!("channels = [\"slack:#sales-data\", \"email:sales-data@example.com\", \"webhook:{sales}\"]"),
        )
        .replace(
            "channels = [\"slack:#finance-data\"]",
            &format!("channels = [\"slack:#finance-data\", \"webhook:{finance}\"]"),
        );
    assert!(
        config.contains(sales) && config.contains(finance),
        "{config}"
    );
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
}

/// The demo project with each team's alerts also sent to a webhook receiver on loopback
/// (`/hooks/sales`, `/hooks/finance`), and what it receives.
fn demo_with_alerts() -> (tempfile::TempDir, std::path::PathBuf, Hits) {
    let (tmp, dir) = demo_project();
    let (hits, port) = receiver();
    route_alerts(
        &dir,
        &format!("http://127.0.0.1:{port}/hooks/sales"),
        &format!("http://127.0.0.1:{port}/hooks/finance"),
    );
    (tmp, dir, hits)
}

/// `n` orders from `first_id` on, every one with status `status`.
pub(crate) fn orders_file(first_id: u64, n: u64, status: &str) -> String {
    (first_id..first_id + n)
        .map(|id| {
            format!(
                "{}\n",
                json!({"order_id": id, "customer_id": 1 + id % 1000, "order_ts": "2026-11-03T10:00:00Z",
                       "status": status, "amount": 12.5, "currency": "EUR"})
            )
        })
        .collect()
}

fn incidents_json(dir: &Path, all: bool) -> Value {
    let mut args = vec!["incidents", "--json"];
    if all {
        args.push("--all");
    }
    let out = weir(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = serde_json::from_slice(&out.stdout).expect("incidents JSON");
    crate::json_output::assert_documented(&["incidents"], &doc);
    doc
}

pub(crate) fn assert_initial_run(dir: &Path) {
    let out = weir(dir, &["run", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    for run in doc["runs"].as_array().expect("runs") {
        assert!(
            run["status"] == "success" || run["status"] == "up_to_date",
            "the first run builds everything: {run}"
        );
    }
}

#[test]
fn a_bad_file_opens_one_incident_with_one_alert_and_a_good_file_resolves_it() {
    let (_tmp, dir) = demo_project();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = receive_on(listener);
    let sales = format!("http://127.0.0.1:{port}/hooks/sales");
    route_alerts(
        &dir,
        &sales,
        &format!("http://127.0.0.1:{port}/hooks/finance"),
    );
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\npoll_ms = 50\ndebounce_ms = 100\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    assert_initial_run(&dir);
    assert!(
        hits.lock().expect("hits").is_empty(),
        "a good run alerts nobody"
    );

    let server = start(&dir);
    // A file whose statuses are all unknown: `status_valid` (error severity) fails the run.
    let bad = dir.join("data/orders/2026-11-03.ndjson");
    std::fs::write(&bad, orders_file(900_001, 200, "lost_in_transit")).expect("bad file");
    let opened = wait_for_hits(&hits, "/hooks/sales", 1, 90);
    let alert = &opened[0].body;
    assert_eq!(alert["event"], "incident.opened", "{alert:#}");
    assert_eq!(alert["incident"]["root_asset"], "orders");
    assert_eq!(alert["incident"]["owners"], json!(["ana@example.com"]));
    assert!(
        alert["incident"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("status_valid")),
        "the alert says which check failed: {alert:#}"
    );
    let affected: Vec<(String, Value)> = alert["incident"]["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|a| {
            (
                a["asset"].as_str().unwrap_or("").to_string(),
                a["owners"].clone(),
            )
        })
        .collect();
    assert_eq!(
        affected,
        vec![
            ("stg_orders".to_string(), json!(["ana@example.com"])),
            ("daily_revenue".to_string(), json!(["omar@example.com"])),
            ("order_details".to_string(), json!(["li@example.com"])),
        ],
        "the downstream assets and their owners, from lineage, in graph order"
    );
    assert_eq!(
        opened[0].idempotency_key.as_deref(),
        alert["id"].as_str(),
        "the notification's id is its idempotency key"
    );

    // The same bad file failing again joins the open incident: no second alert.
    let (status, _) = http(
        &server.base,
        "POST",
        "/runs",
        Some(TOKEN),
        Some(json!({"select": ["orders"]})),
    );
    assert_eq!(status, 201);
    crate::serve::wait_for(&server.base, 90, "the second run of orders ends", |runs| {
        runs.iter()
            .filter(|r| r["status"] != "queued" && r["status"] != "running")
            .count()
            >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hits_on(&hits, "/hooks/sales").len(),
        1,
        "one incident, one alert"
    );
    let doc = incidents_json(&dir, false);
    let open = doc["incidents"].as_array().expect("incidents");
    assert_eq!(open.len(), 1, "{doc:#}");
    assert_eq!(open[0]["status"], "open");
    let id = open[0]["id"].as_i64().expect("id");
    assert!(open[0]["notified_at"].is_string(), "{doc:#}");
    let (status, detail) = http(
        &server.base,
        "GET",
        &format!("/incidents/{id}"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{detail}");
    let bad_runs = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "bad_run" || e["kind"] == "opened")
        .count();
    assert_eq!(
        bad_runs, 2,
        "both failed runs are on the timeline: {detail:#}"
    );
    assert!(
        !detail.to_string().contains("/hooks/sales"),
        "a webhook's path (where secrets live) stays out of the API: {detail:#}"
    );

    // A good file in its place: the run succeeds, the incident resolves, one more notification.
    std::fs::write(&bad, orders_file(900_001, 200, "paid")).expect("good file");
    let both = wait_for_hits(&hits, "/hooks/sales", 2, 90);
    assert_eq!(
        both[1].body["event"], "incident.resolved",
        "{:#}",
        both[1].body
    );
    assert_eq!(both[1].body["incident"]["status"], "resolved");
    assert!(
        both[1].body["incident"]["time_to_resolve_seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0)
    );
    drop(server);
    assert!(
        hits_on(&hits, "/hooks/finance").is_empty(),
        "finance owns no failed asset"
    );

    let doc = incidents_json(&dir, true);
    let incident = &doc["incidents"][0];
    assert_eq!(incident["status"], "resolved", "{doc:#}");
    let stats = &doc["stats"]["by_asset"]["orders"];
    assert_eq!(stats["incidents"], 1);
    assert!(
        stats["mttd_seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{doc:#}"
    );
    assert!(
        stats["mttr_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{doc:#}"
    );
    assert!(
        doc["stats"]["by_team"]["sales"]["mttn_seconds"]
            .as_f64()
            .is_some(),
        "{doc:#}"
    );

    let draft = dir.join("postmortem.md");
    let id = id.to_string();
    let out = weir(
        &dir,
        &[
            "incident",
            "postmortem",
            &id,
            "-o",
            draft.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Value = serde_json::from_slice(&out.stdout).expect("postmortem JSON");
    crate::json_output::assert_documented(&["incident", "postmortem"], &written);
    // By hand: acknowledging a resolved incident is refused with a sentence, exit 2.
    let out = weir(&dir, &["incident", "ack", &id, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&out.stdout).expect("error JSON");
    crate::json_output::assert_documented(&["incident", "ack"], &refused);
    assert_eq!(refused["error"]["kind"], "incident_state", "{refused}");
    let text = std::fs::read_to_string(&draft).expect("post-mortem");
    for expected in [
        "# Post-mortem: incident #",
        "Time to resolve",
        "`daily_revenue` | finance | omar@example.com",
        "**resolved**",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

/// Thirty models on top of `orders`, owned by another team.
fn add_thirty_models(dir: &Path) {
    for i in 1..=30 {
        let name = format!("storm_{i:02}");
        std::fs::write(
            dir.join(format!("models/{name}.sql")),
            format!("SELECT order_id, amount FROM orders WHERE amount > {i}\n"),
        )
        .expect("model");
        std::fs::write(
            dir.join(format!("contracts/{name}.odcs.yaml")),
            format!(
                "apiVersion: v3.1.0\nkind: DataContract\nid: shop-{name}\nversion: 1.0.0\nstatus: active\nname: {name}\nteam:\n  name: finance\n  members:\n    - username: omar@example.com\n      role: owner\nschema:\n  - name: {name}\n    physicalType: table\n    properties:\n      - name: order_id\n        logicalType: integer\n        required: true\n      - name: amount\n        logicalType: number\n        physicalType: decimal(12,2)\n"
            ),
        )
        .expect("contract");
    }
}

#[test]
fn an_alert_storm_is_one_incident_and_one_alert_delivered_once_after_a_minute_down() {
    let (_tmp, dir) = demo_project();
    add_thirty_models(&dir);
    // A port nobody listens on yet: the receiver is down.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let sales = format!("http://127.0.0.1:{port}/hooks/sales");
    route_alerts(
        &dir,
        &sales,
        &format!("http://127.0.0.1:{port}/hooks/finance"),
    );
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\nfile_arrival = false\npoll_ms = 50\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    assert_initial_run(&dir);

    std::fs::write(
        dir.join("data/orders/2026-11-03.ndjson"),
        orders_file(900_001, 200, "lost_in_transit"),
    )
    .expect("bad file");
    let out = weir(&dir, &["run"]);
    let down_since = Instant::now();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("incident #1 opened on orders"), "{stderr}");
    assert!(stderr.contains("33 affected downstream"), "{stderr}");
    assert!(
        stderr.contains("1 notification not delivered yet"),
        "{stderr}"
    );

    let doc = incidents_json(&dir, true);
    let incidents = doc["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "one root cause, one incident: {doc:#}");
    assert_eq!(incidents[0]["root_asset"], "orders");
    assert_eq!(incidents[0]["affected"].as_array().map(Vec::len), Some(33));
    let out = weir(&dir, &["incident", "show", "1", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("show JSON");
    crate::json_output::assert_documented(&["incident", "show"], &shown);
    let skipped = shown["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "skipped")
        .count();
    assert_eq!(
        skipped, 33,
        "every skipped asset joins the incident: {shown:#}"
    );
    assert_eq!(
        shown["notifications"].as_array().map(Vec::len),
        Some(1),
        "{shown:#}"
    );

    // The service keeps trying while the receiver is down, and shows it.
    let server = start(&dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, detail) = http(&server.base, "GET", "/incidents/1", Some(TOKEN), None);
        let attempts = detail["notifications"][0]["attempts"].as_i64().unwrap_or(0);
        if attempts >= 2 {
            assert_eq!(
                detail["notifications"][0]["status"], "pending",
                "{detail:#}"
            );
            assert!(
                detail["notifications"][0]["last_error"].is_string(),
                "{detail:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not retry: {detail:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = scrape(&server.base);
    assert!(
        metrics.contains("weir_notifications{status=\"retrying\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_incidents_unresolved{team=\"sales\",status=\"open\"} 1"),
        "{metrics}"
    );

    // A minute later the receiver is back: the alert arrives once.
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down_since.elapsed()));
    let hits =
        receive_on(TcpListener::bind(("127.0.0.1", port)).expect("rebind the receiver's port"));
    let got = wait_for_hits(&hits, "/hooks/sales", 1, 60);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        hits_on(&hits, "/hooks/sales").len(),
        1,
        "delivered exactly once"
    );
    assert!(
        hits_on(&hits, "/hooks/finance").is_empty(),
        "the owners of the root are alerted, not 33 teams"
    );
    let alert = &got[0].body;
    assert_eq!(alert["incident"]["root_asset"], "orders", "{alert:#}");
    assert_eq!(
        alert["incident"]["affected"].as_array().map(Vec::len),
        Some(33)
    );
    let metrics = scrape(&server.base);
    assert!(
        metrics.contains("weir_notifications{status=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_notifications{status=\"pending\"} 0"),
        "{metrics}"
    );
}

fn scrape(base: &str) -> String {
    let mut stream = TcpStream::connect(base).expect("connect");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {base}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text
}

/// A run that succeeds but reads far fewer rows than the asset's history says it should opens
/// an `anomaly` incident (one alert, naming the metric and the usual range); the next normal
/// run resolves it.
#[test]
fn an_unusual_row_count_is_an_anomaly_incident_and_a_normal_run_resolves_it() {
    let (_tmp, dir, hits) = demo_with_alerts();
    assert_initial_run(&dir);
    let run_orders = |name: &str, first_id: u64, rows: u64| {
        std::fs::write(
            dir.join(format!("data/orders/{name}.ndjson")),
            orders_file(first_id, rows, "paid"),
        )
        .expect("orders file");
        let out = weir(&dir, &["run", "orders", "--json"]);
        assert!(
            out.status.success(),
            "an unusual run is still a good run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
        assert_eq!(doc["runs"][0]["rows_in"], rows, "{doc:#}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A history of ordinary batches: 480 to 520 orders each.
    for i in 0..8u64 {
        let stderr = run_orders(
            &format!("batch-{i}"),
            100_000 + i * 1000,
            480 + (i * 17) % 41,
        );
        assert!(!stderr.contains("incident"), "batch {i}: {stderr}");
    }
    assert!(hits_on(&hits, "/hooks/sales").is_empty());

    // A batch of 60: the run succeeds, and the owners hear of it.
    let stderr = run_orders("batch-small", 200_000, 60);
    assert!(
        stderr.contains("incident #") && stderr.contains("opened on orders"),
        "{stderr}"
    );
    let opened = wait_for_hits(&hits, "/hooks/sales", 1, 30);
    let incident = &opened[0].body["incident"];
    assert_eq!(opened[0].body["event"], "incident.opened", "{incident:#}");
    assert_eq!(incident["kind"], "anomaly", "{incident:#}");
    let title = incident["title"].as_str().unwrap_or_default();
    assert!(
        title.contains("rows_in 60 is") && title.contains("below the usual"),
        "the alert names the metric, the value and the usual range: {title}"
    );

    // A run with nothing new to read says nothing of the anomaly: it stays open.
    let out = weir(&dir, &["run", "orders"]);
    assert!(out.status.success());
    let doc = incidents_json(&dir, false);
    assert_eq!(
        doc["incidents"].as_array().map(Vec::len),
        Some(1),
        "still open after an up-to-date run: {doc:#}"
    );

    // Back to normal: resolved, and the same channel is told.
    let stderr = run_orders("batch-9", 300_000, 505);
    assert!(stderr.contains("resolved"), "{stderr}");
    let both = wait_for_hits(&hits, "/hooks/sales", 2, 30);
    assert_eq!(both[1].body["event"], "incident.resolved");
    assert!(hits_on(&hits, "/hooks/finance").is_empty());
    let doc = incidents_json(&dir, true);
    let incidents = doc["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{doc:#}");
    assert_eq!(incidents[0]["status"], "resolved");
}

/// With no run at all, data goes stale: `weir serve` measures the freshness SLO and, once its
/// error budget burns past the paging threshold of both short windows, opens an `slo_burn`
/// incident on the stale asset and pages its owners, once; `weir slo` and `/metrics` show the
/// burn.
#[test]
fn a_stale_source_burns_its_freshness_budget_and_pages_its_owners_once() {
    let (_tmp, dir, hits) = demo_with_alerts();
    // Orders must be at most 3 s old; a one-day SLO window, so the paging windows are 2 min
    // and 10 s; no freshness automation, so nothing runs to keep them fresh.
    let contract = dir.join("contracts/orders.odcs.yaml");
    let text = std::fs::read_to_string(&contract).expect("contract");
    let stale = text.replace(
        "  - property: latency\n    value: 2\n    unit: h",
        "  - property: latency\n    value: 3\n    unit: s",
    );
    assert_ne!(stale, text, "the demo's orders latency");
    std::fs::write(&contract, stale).expect("contract");
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str(
        "\n[serve]\nfreshness_automation = false\n\n[slo]\nwindow_days = 1\nfreshness = 99.9\n",
    );
    std::fs::write(dir.join("weir.toml"), config).expect("weir.toml");
    assert_initial_run(&dir);

    let server = start(&dir);
    let paged = wait_for_hits(&hits, "/hooks/sales", 1, 60);
    let incident = &paged[0].body["incident"];
    assert_eq!(incident["kind"], "slo_burn", "{incident:#}");
    assert_eq!(incident["root_asset"], "orders", "{incident:#}");
    let title = incident["title"].as_str().unwrap_or_default();
    assert!(
        title.contains("freshness SLO") && title.contains("(page)"),
        "{title}"
    );
    // The models below orders are stale too, but the root cause has been told: one page.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(hits_on(&hits, "/hooks/sales").len(), 1, "paged once");
    assert!(hits_on(&hits, "/hooks/finance").is_empty());
    let metrics = crate::serve::http_text(&server.base, "/metrics", TOKEN);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("weir_slo_burn_rate{asset=\"orders\",slo=\"freshness\",window=\"5m\"}")),
        "{metrics}"
    );
    let (status, api) = http(&server.base, "GET", "/slo", Some(TOKEN), None);
    assert_eq!(status, 200, "{api}");
    assert!(
        api["slos"]
            .as_array()
            .is_some_and(|slos| slos.iter().any(|s| {
                s["asset"] == "orders"
                    && s["slo"] == "freshness"
                    && s["alert"]["severity"] == "page"
            })),
        "{api:#}"
    );
    drop(server);

    let out = weir(&dir, &["slo", "--json"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("slo JSON");
    crate::json_output::assert_documented(&["slo"], &doc);
    let freshness = doc["slos"]
        .as_array()
        .expect("slos")
        .iter()
        .find(|s| s["asset"] == "orders" && s["slo"] == "freshness")
        .cloned()
        .expect("orders has a freshness SLO");
    assert_eq!(freshness["alert"]["severity"], "page", "{freshness:#}");
    assert!(
        freshness["compliance"].as_f64().is_some_and(|c| c < 0.999),
        "{freshness:#}"
    );
}

/// A late upstream is predicted before it breaches the freshness of what waits for it: orders
/// publish every 3 s and stg_orders follows within a moment, its data at most 40 s old; then
/// no more orders. `weir serve` sees orders late by as long as stg_orders has left, opens one
/// `predicted_late` incident on stg_orders that names orders and the deadline, and tells its
/// team before the deadline; new orders resolve it.
#[test]
fn a_late_upstream_is_predicted_to_breach_the_freshness_of_what_waits_for_it() {
    let (_tmp, dir, hits) = demo_with_alerts();
    let contract = dir.join("contracts/stg_orders.odcs.yaml");
    let text = std::fs::read_to_string(&contract).expect("contract");
    let with_sla = text.replacen(
        "\nschema:\n",
        "\nslaProperties:\n  - property: latency\n    value: 40\n    unit: s\nschema:\n",
        1,
    );
    assert_ne!(with_sla, text);
    std::fs::write(&contract, with_sla).expect("contract");
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str(
        "\n[serve]\nfreshness_automation = false\nfile_arrival = false\ndependency_automation = false\n",
    );
    std::fs::write(dir.join("weir.toml"), config).expect("weir.toml");
    assert_initial_run(&dir);
    // A history: a new orders file every 3 s, each run publishing orders then stg_orders.
    let mut last_run = Instant::now();
    for i in 0..6u64 {
        let started = Instant::now();
        std::fs::write(
            dir.join(format!("data/orders/2026-11-1{i}.ndjson")),
            orders_file(900_000 + 10 * i, 5, "placed"),
        )
        .expect("orders");
        let out = weir(&dir, &["run"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last_run = Instant::now();
        std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    }

    let _server = start(&dir);
    let told = wait_for_hits(&hits, "/hooks/sales", 1, 45);
    let before_deadline = last_run.elapsed();
    let incident = &told[0].body["incident"];
    assert_eq!(told[0].body["event"], "incident.opened", "{incident:#}");
    assert_eq!(incident["kind"], "predicted_late", "{incident:#}");
    assert_eq!(incident["root_asset"], "stg_orders", "{incident:#}");
    let title = incident["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with("stg_orders: predicted freshness breach at ")
            && title.contains("upstream orders is ")
            && title.contains("unless orders publishes by "),
        "{title}"
    );
    assert!(
        before_deadline < Duration::from_secs(40),
        "told {before_deadline:?} after stg_orders last published: past its 40 s deadline"
    );
    // Told once, though the prediction stands at every round.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(hits_on(&hits, "/hooks/sales").len(), 1);

    // Orders arrive: stg_orders is fresh again, and the incident resolves.
    std::fs::write(
        dir.join("data/orders/2026-11-20.ndjson"),
        orders_file(990_000, 5, "placed"),
    )
    .expect("orders");
    assert!(weir(&dir, &["run"]).status.success());
    let both = wait_for_hits(&hits, "/hooks/sales", 2, 30);
    assert_eq!(
        both[1].body["event"], "incident.resolved",
        "{:#}",
        both[1].body
    );
    assert_eq!(both[1].body["incident"]["kind"], "predicted_late");
}
