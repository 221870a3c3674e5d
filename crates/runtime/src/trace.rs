//! Phase timestamps for finding where container start time goes: with `BERTH_TRACE` set,
//! each mark prints `berth-trace <monotonic µs> <pid> <phase>` to stderr. Costs one
//! cached env lookup when off.

use std::sync::OnceLock;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BERTH_TRACE").is_some())
}

/// Records that `phase` was reached.
pub fn mark(phase: &str) {
    if !enabled() {
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let us = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    eprintln!("berth-trace {us} {} {phase}", std::process::id());
}
