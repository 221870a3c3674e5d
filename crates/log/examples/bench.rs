//! Throughput of the json-file driver: `cargo run --release -p berth-log --example bench [MiB] [dir]`.
//!
//! Writes MiB (default 100) of typical log lines in 64 KiB chunks, as a shim
//! reading a pipe would, then reads them back in full and with `--tail`.

use std::time::{Instant, SystemTime};

use log::{read, JsonFileOptions, JsonFileWriter, ReadOptions, Stream};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(100, |a| a.parse().expect("MiB"));
    let dir = match args.next() {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let path = dir.path().join("bench-json.log");

    // Lines of 40..160 bytes with some characters that need escaping.
    let mut block = Vec::with_capacity(1 << 20);
    let mut i = 0u64;
    while block.len() < (1 << 20) - 200 {
        let pad = "x".repeat((i * 37 % 120) as usize);
        block.extend_from_slice(
            format!("2026-11-23 18:00:00 INFO req={i} path=/api/v1/items?a=1&b=\"2\" status=200 {pad}\n").as_bytes(),
        );
        i += 1;
    }
    let total = mib << 20;

    let mut w = JsonFileWriter::open(&path, JsonFileOptions::default()).expect("open");
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        for chunk in block.chunks(64 * 1024) {
            w.write(Stream::Stdout, chunk, SystemTime::now())
                .expect("write");
            written += chunk.len();
        }
    }
    w.close().expect("close");
    let secs = start.elapsed().as_secs_f64();
    let file_len = std::fs::metadata(&path).expect("stat").len();
    println!(
        "write: {:.1} MiB input in {:.3} s = {:.0} MiB/s (file {:.1} MiB)",
        written as f64 / 1048576.0,
        secs,
        written as f64 / 1048576.0 / secs,
        file_len as f64 / 1048576.0
    );

    let start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    let mut out = Vec::new();
    for e in read(&path, ReadOptions::default()).expect("read") {
        let e = e.expect("entry");
        // Include the formatting `docker logs` does.
        out.clear();
        e.append_docker(false, false, &mut out);
        bytes += out.len();
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read:  {n} entries, {:.1} MiB of text in {:.3} s = {:.0} MiB/s of text ({:.0} MiB/s of file)",
        bytes as f64 / 1048576.0,
        secs,
        bytes as f64 / 1048576.0 / secs,
        file_len as f64 / 1048576.0 / secs
    );

    let start = Instant::now();
    let tail = read(
        &path,
        ReadOptions {
            tail: Some(100),
            ..Default::default()
        },
    )
    .expect("read")
    .count();
    println!(
        "tail 100: {tail} entries in {:.3} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
}
