use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_orchestrate::Progress;

/// Progress bars on stderr, one per asset; hidden under `--json` or when stderr is no terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new(hidden: bool) -> Bars {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl Progress for Bars {
    fn asset_started(&self, asset: &str, total_bytes: u64) {
        let bar = self.multi.add(ProgressBar::new(total_bytes));
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(asset.to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(asset.to_string(), bar);
        }
    }

    fn bytes_read(&self, asset: &str, bytes: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(asset)
        {
            bar.inc(bytes);
        }
    }

    fn asset_finished(&self, asset: &str) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(asset)
        {
            bar.finish_and_clear();
        }
    }

    fn message(&self, asset: &str, message: &str) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(asset)
        {
            bar.set_message(message.to_string());
        }
    }
}
