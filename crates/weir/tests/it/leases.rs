//! One writer per table, any number per project: while one process writes `orders` (stopped
//! inside its publication), another `weir run` of other assets goes ahead at once, and a
//! `weir run` of `orders` waits for it; once the first is killed, the waiting one takes the
//! asset over at once (its holder is gone), completes nothing twice and leaves every row once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve::{assert_same_lake, reaches_failpoint, reference_project};
use crate::support::{demo_project, weir, weir_bin};

#[test]
fn writers_of_different_tables_go_ahead_and_writers_of_one_table_take_turns() {
    let (_reference_tmp, reference) = reference_project();
    let (_tmp, dir) = demo_project();
    // The first writer stops after journalling `orders`, holding its lease.
    let mut first = Command::new(weir_bin())
        .args(["run", "orders", "--project"])
        .arg(&dir)
        .env("WEIR_FAILPOINT", "journaled@orders")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir run starts");
    assert!(
        reaches_failpoint(&mut first, "journaled@orders", Duration::from_secs(120)),
        "never reached the failpoint"
    );

    // Another table: no waiting for the first writer.
    let started = Instant::now();
    let out = weir(&dir, &["run", "customers", "payments"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a run of other tables waited for the writer of orders"
    );

    // The same table: it waits while the first writer is alive.
    let mut second = Command::new(weir_bin())
        .args(["run", "--project"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("second weir run starts");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        second.try_wait().expect("try_wait").is_none(),
        "a second writer of orders did not wait for the first"
    );
    let mut stderr = String::new();
    first.kill().expect("SIGKILL");
    first.wait().expect("wait");
    let status = second.wait().expect("second run ends");
    if let Some(mut pipe) = second.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("another process is writing"),
        "the waiting run says why it waits: {stderr}"
    );

    crate::crash::assert_exactly_once(&dir);
    assert_same_lake(&dir, &reference, "two writers");
}
