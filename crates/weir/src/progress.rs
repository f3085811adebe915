//! Progress a person can read, on stderr: one bar per asset on a terminal (bytes, rows per
//! second, the ETA of file sources of known size, and the phase: reading or computing,
//! auditing, publishing); when stderr is not a terminal, a plain line per running asset every
//! few seconds instead, so a long run in CI or under `nohup` is not silent. Nothing under
//! `--json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_orchestrate::{Phase, Progress};

/// Seconds between plain progress lines; `WEIR_PROGRESS_SECS` overrides (0: every event).
const PLAIN_EVERY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hidden,
    Bars,
    Plain(Duration),
}

struct AssetProgress {
    bar: ProgressBar,
    total_bytes: u64,
    bytes: u64,
    rows: u64,
    phase: Phase,
    started: Instant,
    last_line: Instant,
}

impl AssetProgress {
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// `orders: reading 45.2 MB of 120.0 MB, 312,000 rows (1.2 M rows/s), about 8 s left`
    fn line(&self, asset: &str) -> String {
        let mut line = format!("{asset}: {}", self.phase.as_str());
        if self.phase == Phase::Reading || self.phase == Phase::Computing {
            if self.total_bytes > 0 {
                line.push_str(&format!(
                    " {} of {}",
                    megabytes(self.bytes),
                    megabytes(self.total_bytes)
                ));
            }
            if self.rows > 0 {
                line.push_str(&format!(
                    ", {} rows ({}/s)",
                    self.rows,
                    rate(self.rows_per_sec())
                ));
            }
            if let Some(left) = self.eta() {
                line.push_str(&format!(", about {} s left", left.as_secs().max(1)));
            }
        }
        line
    }

    fn eta(&self) -> Option<Duration> {
        if self.total_bytes == 0 || self.bytes == 0 || self.bytes >= self.total_bytes {
            return None;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed * (self.total_bytes - self.bytes) as f64 / self.bytes as f64;
        Some(Duration::from_secs_f64(left))
    }

    fn message(&self) -> String {
        match self.phase {
            Phase::Reading | Phase::Computing => format!(
                "{} {} rows {}/s",
                self.phase.as_str(),
                self.rows,
                rate(self.rows_per_sec())
            ),
            other => other.as_str().to_string(),
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.1} M rows", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.0} k rows", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} rows")
    }
}

pub struct Bars {
    mode: Mode,
    multi: MultiProgress,
    assets: Mutex<HashMap<String, AssetProgress>>,
}

impl Bars {
    pub fn new(json: bool) -> Bars {
        let mode = if json {
            Mode::Hidden
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            let secs = std::env::var("WEIR_PROGRESS_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(PLAIN_EVERY_SECS);
            Mode::Plain(Duration::from_secs(secs))
        };
        let target = match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        Bars {
            mode,
            multi: MultiProgress::with_draw_target(target),
            assets: Mutex::new(HashMap::new()),
        }
    }

    pub fn clear(&self) {
        let _ = self.multi.clear();
    }

    /// Updates one asset's state, and in plain mode prints its line when one is due (`force`:
    /// due once the interval has passed since it started, for phase changes).
    fn update(&self, asset: &str, force: bool, change: impl FnOnce(&mut AssetProgress)) {
        let Ok(mut assets) = self.assets.lock() else {
            return;
        };
        let Some(state) = assets.get_mut(asset) else {
            return;
        };
        change(state);
        match self.mode {
            Mode::Bars => state.bar.set_message(state.message()),
            Mode::Plain(every) => {
                let due = state.last_line.elapsed() >= every
                    || (force && state.started.elapsed() >= every);
                if due {
                    eprintln!("{}", state.line(asset));
                    state.last_line = Instant::now();
                }
            }
            Mode::Hidden => {}
        }
    }
}

impl Progress for Bars {
    fn asset_started(&self, asset: &str, total_bytes: u64) {
        let bar = self.multi.add(ProgressBar::new(total_bytes));
        let template = if total_bytes > 0 {
            "{prefix:>14} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}"
        } else {
            "{prefix:>14} {spinner} {elapsed} {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(asset.to_string());
        if total_bytes == 0 && self.mode == Mode::Bars {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let now = Instant::now();
        if let Ok(mut assets) = self.assets.lock() {
            assets.insert(
                asset.to_string(),
                AssetProgress {
                    bar,
                    total_bytes,
                    bytes: 0,
                    rows: 0,
                    phase: Phase::Reading,
                    started: now,
                    last_line: now,
                },
            );
        }
    }

    fn read(&self, asset: &str, bytes: u64, rows: u64) {
        self.update(asset, false, |s| {
            s.bytes += bytes;
            s.rows += rows;
            s.bar.inc(bytes);
        });
    }

    fn phase(&self, asset: &str, phase: Phase) {
        self.update(asset, true, |s| s.phase = phase);
    }

    fn asset_finished(&self, asset: &str) {
        if let Ok(mut assets) = self.assets.lock()
            && let Some(state) = assets.remove(asset)
        {
            state.bar.finish_and_clear();
        }
    }

    fn message(&self, asset: &str, message: &str) {
        if let Ok(assets) = self.assets.lock()
            && let Some(state) = assets.get(asset)
        {
            state.bar.set_message(message.to_string());
        }
    }
}
