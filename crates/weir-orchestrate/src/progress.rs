/// Where the runner reports progress; the CLI draws bars, tests and `--json` draw nothing.
pub trait Progress: Send + Sync {
    fn asset_started(&self, asset: &str, total_bytes: u64);
    fn bytes_read(&self, asset: &str, bytes: u64);
    fn asset_finished(&self, asset: &str);
    fn message(&self, asset: &str, message: &str);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn asset_started(&self, _: &str, _: u64) {}
    fn bytes_read(&self, _: &str, _: u64) {}
    fn asset_finished(&self, _: &str) {}
    fn message(&self, _: &str, _: &str) {}
}
