//! The dashboard in a real browser: Debian's headless Chromium, driven through ChromeDriver's
//! WebDriver protocol, opens `weir serve`'s page on the demo project, is asked for the API
//! token, draws every asset, and, without being reloaded, shows a run that fails as a failing
//! asset and an open incident within seconds. The asset page, the lineage graph and the
//! incidents page are drawn from the same data the API serves (which is checked against the
//! OpenAPI document), and a screenshot of each page is kept under `target/tmp/dashboard/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::incidents::{assert_initial_run, orders_file};
use crate::serve::{TOKEN, http, start};
use crate::support::demo_project;

/// A ChromeDriver process; stopped (with its browser) when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_string());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the dashboard test needs Debian's chromium and chromium-driver \
         packages (./scripts/test.sh installs them), or {env} set to another path"
    );
    path
}

fn start_driver() -> Driver {
    let chromedriver = program("WEIR_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        base: format!("127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&driver.base).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

/// One WebDriver request. ChromeDriver answers with a Content-Length and keeps the connection
/// open whatever the request says, so the body is read by its length, not to the end.
fn webdriver(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(base).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {base}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).expect("header");
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("content length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One browser session of the driver.
struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

impl Browser<'_> {
    fn open<'a>(driver: &'a Driver, profile: &Path) -> Browser<'a> {
        let chromium = program("WEIR_TEST_CHROMIUM", "/usr/bin/chromium");
        let (status, doc) = webdriver(
            &driver.base,
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1100",
                             format!("--user-data-dir={}", profile.display())],
                },
            }}})),
        );
        assert_eq!(status, 200, "a browser session: {doc:#}");
        let session = doc["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser { driver, session }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, doc) = webdriver(
            &self.driver.base,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        );
        assert_eq!(status, 200, "{method} {path}: {doc:#}");
        doc["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits until `script` returns something truthy; that value, or a panic naming `what`.
    fn wait(&self, secs: u64, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.eval(script);
            if !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("")
            {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.eval("return document.body.innerText;");
                panic!("{what}: not within {secs} s; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Saves a screenshot of the page as `name`.png; its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .expect("a PNG");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&dir).expect("artefact dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// The browser console's errors (a script error would leave the page half drawn).
    fn console_errors(&self) -> Vec<String> {
        self.command("POST", "/se/log", Some(json!({ "type": "browser" })))
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = webdriver(
            &self.driver.base,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// `GET path` from the API, checked against the 200 response schema `openapi.json` gives it.
fn api_doc(base: &str, path: &str, template: &str) -> Value {
    let (status, doc) = http(base, "GET", path, Some(TOKEN), None);
    assert_eq!(status, 200, "GET {path}: {doc:#}");
    let (_, mut root) = http(base, "GET", "/openapi.json", None, None);
    let pointer = format!(
        "#/paths/{}/get/responses/200/content/application~1json/schema",
        template
            .replace('~', "~0")
            .replace('/', "~1")
            .replace('{', "%7B")
            .replace('}', "%7D")
    );
    root["$ref"] = json!(pointer);
    let validator = jsonschema::validator_for(&root).expect("the OpenAPI document as a schema");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "GET {path} against openapi.json: {errors:#?}"
    );
    doc
}

fn count(browser: &Browser, selector: &str) -> u64 {
    browser
        .eval(&format!(
            "return document.querySelectorAll({}).length;",
            json!(selector)
        ))
        .as_u64()
        .expect("a count")
}

#[test]
fn the_dashboard_draws_every_page_and_shows_a_failing_run_without_a_reload() {
    let (tmp, dir) = demo_project();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\npoll_ms = 50\ndebounce_ms = 100\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    assert_initial_run(&dir);
    let server = start(&dir);
    let base = server.base.clone();
    let driver = start_driver();
    let browser = Browser::open(&driver, &tmp.path().join("chromium-profile"));

    // The page is public; its data is not: the page asks for the token and keeps it.
    browser.goto(&format!("http://{base}/"));
    browser.wait(
        20,
        "the token form",
        "return !document.getElementById('login').hidden;",
    );
    browser.eval(&format!(
        "document.getElementById('token').value = {}; \
         document.getElementById('login').requestSubmit(); return true;",
        json!(TOKEN)
    ));

    // Every asset of the project is on the grid, each healthy after the first run.
    let overview = api_doc(&base, "/overview", "/overview");
    let assets = overview["assets"].as_array().expect("assets").len() as u64;
    assert!(assets >= 6, "{overview:#}");
    browser.wait(
        20,
        "the health grid",
        &format!(
            "return document.querySelectorAll('#health-grid [data-asset]').length === {assets};"
        ),
    );
    assert_eq!(
        count(&browser, "#health-grid [data-health=fresh]"),
        assets,
        "every asset fresh after a good run"
    );
    assert_eq!(count(&browser, "[data-empty=incidents]"), 1);
    browser.screenshot("overview-healthy");

    // A bad file: the service runs it, the run fails its error check, and the open page shows
    // it on its next poll, without being reloaded (the marker set on this page survives).
    browser.eval("window.weirTestMarker = 'same page'; return true;");
    let dropped = Instant::now();
    std::fs::write(
        dir.join("data/orders/2026-11-03.ndjson"),
        orders_file(900_001, 200, "lost_in_transit"),
    )
    .expect("bad file");
    browser.wait(
        60,
        "orders failing on the overview",
        "return document.querySelector('#health-grid [data-asset=orders][data-health=failing]') !== null \
         && document.querySelector('[data-incident][data-root=orders]') !== null;",
    );
    let shown_after = dropped.elapsed();
    eprintln!("a failing run shown {shown_after:?} after its file landed");
    assert!(
        shown_after < Duration::from_secs(30),
        "shown after {shown_after:?}"
    );
    assert_eq!(
        browser.eval("return window.weirTestMarker;"),
        json!("same page"),
        "the page updated itself: it was not reloaded"
    );
    assert_eq!(
        browser.eval("return document.querySelector('[data-count=failing] b').textContent;"),
        json!("1")
    );
    browser.screenshot("overview-failing");

    // The asset page: schema, three charts with one bar per run, the incident, neighbours.
    let asset = api_doc(&base, "/assets/orders", "/assets/{name}");
    browser.eval("location.hash = '#/asset/orders'; return true;");
    browser.wait(
        20,
        "the asset page",
        "return document.querySelector('[data-asset-page=orders]') !== null;",
    );
    let columns = asset["columns"].as_array().expect("columns").len() as u64;
    assert!(columns >= 5, "{asset:#}");
    assert_eq!(count(&browser, "[data-column]"), columns);
    let runs = asset["runs"].as_array().expect("runs").len() as u64;
    assert!(runs >= 2, "the good run and the failed one: {asset:#}");
    assert_eq!(count(&browser, "svg.chart"), 3);
    assert_eq!(count(&browser, "svg.chart rect[data-run]"), 3 * runs);
    assert_eq!(count(&browser, "[data-incident][data-root=orders]"), 1);
    let downstream = asset["downstream"].as_array().expect("downstream").len() as u64;
    assert!(downstream >= 1, "{asset:#}");
    assert!(count(&browser, ".neighbours [data-asset]") > downstream);
    browser.screenshot("asset-orders");

    // The lineage graph: one node per asset, one path per dependency, orders marked failing.
    let lineage = api_doc(&base, "/lineage", "/lineage");
    browser.eval("location.hash = '#/lineage'; return true;");
    browser.wait(
        20,
        "the lineage graph",
        "return document.querySelector('#lineage-graph') !== null;",
    );
    assert_eq!(count(&browser, "#lineage-graph [data-node]"), assets);
    assert_eq!(
        count(&browser, "#lineage-graph [data-edge]"),
        lineage["edges"].as_array().expect("edges").len() as u64
    );
    assert_eq!(
        count(&browser, "[data-node=orders][data-health=failing]"),
        1
    );
    browser.screenshot("lineage");

    // The incidents page lists the open incident.
    browser.eval("location.hash = '#/incidents'; return true;");
    browser.wait(
        20,
        "the incidents page",
        "return document.querySelector('[data-view=incidents] [data-root=orders]') !== null;",
    );
    browser.screenshot("incidents");

    assert_eq!(
        browser.eval("return window.weirTestMarker;"),
        json!("same page")
    );
    // (The one 401 is the first load without the token, which is what brought up the form.)
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|e| {
            !e.contains(
                "/overview - Failed to load resource: the server responded with a status of 401",
            )
        })
        .collect();
    assert!(errors.is_empty(), "the browser console: {errors:#?}");

    // An unknown asset is the API's 404, not an empty page.
    let (status, doc) = http(&base, "GET", "/assets/nope", Some(TOKEN), None);
    assert_eq!(
        (status, doc["error"]["kind"].as_str()),
        (404, Some("unknown_asset"))
    );
}
