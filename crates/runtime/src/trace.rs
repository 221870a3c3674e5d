//! Phase timestamps for finding where container start time goes: with `BERTH_TRACE` set,
//! each mark prints `berth-trace <monotonic µs> <pid> <phase>` to stderr, or appends it
//! to the file `BERTH_TRACE` names when that is an absolute path (daemons and shims
//! have no stderr to speak of). Costs one cached env lookup when off.

use std::io::Write;
use std::sync::OnceLock;

enum Sink {
    Off,
    Stderr,
    File(std::path::PathBuf),
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| match std::env::var_os("BERTH_TRACE") {
        None => Sink::Off,
        Some(v) if v.to_string_lossy().starts_with('/') => Sink::File(v.into()),
        Some(_) => Sink::Stderr,
    })
}

/// Records that `phase` was reached.
pub fn mark(phase: &str) {
    let sink = sink();
    if matches!(sink, Sink::Off) {
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let us = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    let line = format!("berth-trace {us} {} {phase}\n", std::process::id());
    match sink {
        Sink::File(p) => {
            // One write per line with O_APPEND: lines of several processes don't mix.
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
        _ => eprint!("{line}"),
    }
}
