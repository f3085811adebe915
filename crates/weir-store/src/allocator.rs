//! The process's allocator, tuned for the lake's buffers. The Parquet reader and writer
//! allocate a column chunk or a page at a time, megabytes each; with glibc's defaults every
//! such buffer above its (self-adjusting) mmap threshold is mapped fresh and unmapped when
//! freed, and the top of the heap is trimmed past 128 KB free, so every chunk read faults its
//! pages in again. Measured on `weir diff` of two 10 M-row Parquet files (BENCHMARKS.md):
//! 2.0-2.3 s with the defaults, 1.6-1.7 s with buffers up to 32 MB served from the heap and
//! up to 256 MB of freed memory kept for reuse, for ~90 MB more peak memory. jemalloc
//! (2.5-2.7 s) and mimalloc (1.8-2.0 s) did worse on the same run.

/// Buffers up to this size come from the heap, not a mapping of their own: glibc's ceiling.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory at the top of the heap kept for reuse before it is returned to the kernel.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Applies the tuning above once, at the start of `main`, before any thread starts. An
/// operator's own `MALLOC_*` or `GLIBC_TUNABLES` settings win: then nothing is changed.
/// Elsewhere than glibc on Linux it does nothing.
pub fn tune_allocator() {
    let operator_set = std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|n| n == "GLIBC_TUNABLES" || n.starts_with("MALLOC_"))
    });
    if !operator_set {
        apply();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() {
    // SAFETY: `mallopt` only sets allocator parameters; both values are within the ranges
    // glibc documents (`mallopt(3)`), and it is called before any other thread exists. A
    // value glibc refused would leave its default: slower, never wrong.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() {}
