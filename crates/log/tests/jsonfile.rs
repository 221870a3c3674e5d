//! Behaviour of the json-file writer and reader against Docker's format.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{
    read, ContainerInfo, Driver, JsonFileOptions, JsonFileWriter, LogEntry, ReadOptions, Stream,
    MAX_LINE,
};

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// 2026-11-23T18:00:00Z
const T0: u64 = 1_795_456_800;

fn collect(path: &Path, opts: ReadOptions) -> Vec<LogEntry> {
    read(path, opts).unwrap().map(|e| e.unwrap()).collect()
}

fn lines(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8(e.line.clone()).unwrap())
        .collect()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    (dir, path)
}

/// Rotation after `max_size` bytes, keeping `max_file` files.
fn rotating(max_size: u64, max_file: u32, compress: bool) -> JsonFileOptions {
    JsonFileOptions {
        max_size: Some(max_size),
        max_file,
        compress,
        ..Default::default()
    }
}

fn default_writer(path: &Path) -> JsonFileWriter {
    JsonFileWriter::open(path, JsonFileOptions::default()).unwrap()
}

fn tail(n: usize) -> ReadOptions {
    ReadOptions {
        tail: Some(n),
        ..Default::default()
    }
}

/// Follows until `stop` is set, starting `tail` lines from the end (None: all).
fn following(stop: &Arc<AtomicBool>, tail: Option<usize>) -> ReadOptions {
    ReadOptions {
        follow: true,
        tail,
        stop: Some(stop.clone()),
        ..Default::default()
    }
}

/// The lines `write_numbered` writes for `range`.
fn numbered(range: impl Iterator<Item = usize>) -> Vec<String> {
    range.map(|i| format!("line {i:05}")).collect()
}

#[test]
fn writes_docker_bytes() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    w.write(
        Stream::Stdout,
        b"hello <world> & \"q\"\tx\n",
        at(T0, 123_456_789),
    )
    .unwrap();
    w.write(
        Stream::Stderr,
        b"bad \xff\xfe utf8 \xe2\x80\xa8\n",
        at(T0, 120_000_000),
    )
    .unwrap();
    w.write(Stream::Stdout, b"whole second\n", at(T0, 0))
        .unwrap();
    w.close().unwrap();
    let got = fs::read_to_string(&path).unwrap();
    let want = concat!(
        r#"{"log":"hello \u003cworld\u003e \u0026 \"q\"\u0009x\n","stream":"stdout","time":"2026-11-23T18:00:00.123456789Z"}"#,
        "\n",
        r#"{"log":"bad \ufffd\ufffd utf8 \u2028\n","stream":"stderr","time":"2026-11-23T18:00:00.12Z"}"#,
        "\n",
        r#"{"log":"whole second\n","stream":"stdout","time":"2026-11-23T18:00:00Z"}"#,
        "\n",
    );
    assert_eq!(got, want);
    // Docker creates log files 0640.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[test]
fn writes_attrs_sorted_and_escaped() {
    let (_d, path) = tmp();
    let attrs = BTreeMap::from([
        ("tag".to_string(), "a<b".to_string()),
        ("app".to_string(), "x\ty".to_string()),
    ]);
    let mut w = JsonFileWriter::open(
        &path,
        JsonFileOptions {
            extra_attrs: attrs,
            ..Default::default()
        },
    )
    .unwrap();
    w.write(Stream::Stdout, b"m\n", at(T0, 5)).unwrap();
    w.close().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\"log\":\"m\\n\",\"stream\":\"stdout\",\"attrs\":{\"app\":\"x\\ty\",\"tag\":\"a\\u003cb\"},\"time\":\"2026-11-23T18:00:00.000000005Z\"}\n"
    );
    let e = collect(&path, ReadOptions::default());
    assert_eq!(
        e[0].attrs,
        vec![("app".into(), "x\ty".into()), ("tag".into(), "a<b".into())]
    );
    let mut out = Vec::new();
    e[0].append_docker(false, true, &mut out);
    assert_eq!(out, b"app=x%09y,tag=a%3Cb m\n");
}

#[test]
fn partial_lines_and_flush() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    w.write(Stream::Stdout, b"par", at(T0, 1)).unwrap();
    // Nothing is written until the line completes.
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    w.write(Stream::Stdout, b"tial\nprompt> ", at(T0, 2))
        .unwrap();
    w.flush().unwrap();
    w.close().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].starts_with(
        r#"{"log":"partial\n","stream":"stdout","time":"2026-11-23T18:00:00.000000002Z"}"#
    ));
    assert!(
        rows[1].starts_with(r#"{"log":"prompt\u003e ","stream":"stdout","time":"#),
        "{}",
        rows[1]
    );
    let e = collect(&path, ReadOptions::default());
    assert_eq!(lines(&e), ["partial", "prompt> "]);
    assert!(!e[0].partial && e[1].partial);
    assert_eq!(e[1].format_docker(false), b"prompt> ");
    assert_eq!(
        e[0].format_docker(true),
        b"2026-11-23T18:00:00.000000002Z partial\n"
    );
    // Closed writers refuse writes.
    assert!(matches!(
        w.write(Stream::Stdout, b"x\n", at(T0, 3)),
        Err(log::Error::Closed)
    ));
}

#[test]
fn long_line_split_at_16k() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    let mut big: Vec<u8> = (0..MAX_LINE * 2 + 100)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    big.push(b'\n');
    for (i, chunk) in big.chunks(4096).enumerate() {
        w.write(Stream::Stderr, chunk, at(T0, i as u32)).unwrap();
    }
    w.close().unwrap();
    let e = collect(&path, ReadOptions::default());
    assert_eq!(e.len(), 3);
    assert_eq!(
        e.iter().map(|e| e.line.len()).collect::<Vec<_>>(),
        [MAX_LINE, MAX_LINE, 100]
    );
    assert_eq!(
        e.iter().map(|e| e.partial).collect::<Vec<_>>(),
        [true, true, false]
    );
    // Every piece carries the time of the first, as Docker does.
    assert!(e.iter().all(|x| x.time == e[0].time));
    let joined: Vec<u8> = e.iter().flat_map(|x| x.format_docker(false)).collect();
    assert_eq!(joined, big);
}

fn write_numbered(w: &mut JsonFileWriter, from: usize, to: usize) {
    for i in from..to {
        let stream = if i % 2 == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        w.write(
            stream,
            format!("line {i:05}\n").as_bytes(),
            at(T0 + i as u64, 0),
        )
        .unwrap();
    }
}

fn rotated(path: &Path, n: u32, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{n}{ext}", path.display()))
}

#[test]
fn rotation_max_size_max_file() {
    let (_d, path) = tmp();
    let mut w = JsonFileWriter::open(&path, rotating(1000, 3, false)).unwrap();
    write_numbered(&mut w, 0, 200);
    w.close().unwrap();
    let line_len = 80; // each entry is about 75 bytes
    for p in [path.clone(), rotated(&path, 1, ""), rotated(&path, 2, "")] {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(!rotated(&path, 3, "").exists());
    for n in [1, 2] {
        let len = fs::metadata(rotated(&path, n, "")).unwrap().len();
        assert!((1000..1000 + line_len).contains(&len), "rotated size {len}");
    }
    let e = collect(&path, ReadOptions::default());
    // The newest entries survive, contiguous and in order, ending with the last.
    let got = lines(&e);
    assert_eq!(got.last().unwrap(), "line 00199");
    let first: usize = got[0][5..].parse().unwrap();
    assert_eq!(got, numbered(first..200));
    assert!(got.len() > 26 && got.len() < 45, "{}", got.len());

    // Reopening appends and keeps rotating from the existing size.
    let mut w = JsonFileWriter::open(&path, rotating(1000, 3, false)).unwrap();
    write_numbered(&mut w, 200, 230);
    w.close().unwrap();
    let got = lines(&collect(&path, ReadOptions::default()));
    assert_eq!(got.last().unwrap(), "line 00229");
}

#[test]
fn rotation_single_file_unlinks() {
    let (_d, path) = tmp();
    let mut w = JsonFileWriter::open(&path, rotating(500, 1, false)).unwrap();
    write_numbered(&mut w, 0, 50);
    w.close().unwrap();
    assert!(!rotated(&path, 1, "").exists());
    let got = lines(&collect(&path, ReadOptions::default()));
    assert_eq!(got.last().unwrap(), "line 00049");
    assert!(got.len() < 10);
}

#[test]
fn compress_rotated_files() {
    let (_d, path) = tmp();
    let mut w = JsonFileWriter::open(&path, rotating(2000, 4, true)).unwrap();
    write_numbered(&mut w, 0, 300);
    w.close().unwrap();
    for n in 1..=3 {
        assert!(rotated(&path, n, ".gz").exists(), "{n}.gz");
        assert!(!rotated(&path, n, "").exists(), "{n} left uncompressed");
    }
    assert!(!rotated(&path, 4, ".gz").exists());
    // Docker's header metadata: the time of the file's last entry.
    let f = fs::File::open(rotated(&path, 1, ".gz")).unwrap();
    let mut dec = flate2::read::GzDecoder::new(f);
    let extra = String::from_utf8(dec.header().unwrap().extra().unwrap().to_vec()).unwrap();
    let mut text = String::new();
    dec.read_to_string(&mut text).unwrap();
    let last_row = text.lines().last().unwrap();
    let last_time = &last_row[last_row.find("\"time\":").unwrap() + 7..last_row.len() - 1];
    assert_eq!(extra, format!("{{\"lastTime\":{last_time}}}"));

    let got = lines(&collect(&path, ReadOptions::default()));
    let first: usize = got[0][5..].parse().unwrap();
    assert_eq!(got, numbered(first..300));
    assert!(got.len() >= 81, "{}", got.len());

    // since skips whole compressed files by their header, and still filters.
    let since = at(T0 + 290, 0);
    let got = lines(&collect(
        &path,
        ReadOptions {
            since: Some(since),
            ..Default::default()
        },
    ));
    assert_eq!(got, numbered(290..300));
}

#[test]
fn tail_across_rotated_files() {
    for compress in [false, true] {
        let (_d, path) = tmp();
        let mut w = JsonFileWriter::open(&path, rotating(1500, 5, compress)).unwrap();
        write_numbered(&mut w, 0, 90);
        // Leave the live file with only a few lines so tail must reach back.
        w.close().unwrap();
        let live_lines = fs::read_to_string(&path).unwrap().lines().count();
        for n in [0, 1, live_lines, live_lines + 1, 45, 60] {
            let got = lines(&collect(&path, tail(n)));
            assert_eq!(got, numbered(90 - n..90), "tail {n} compress {compress}");
        }
        // More than exist: everything kept.
        let all = collect(&path, ReadOptions::default()).len();
        assert_eq!(collect(&path, tail(10_000)).len(), all);
        // Tail counts both streams, then filters, as Docker does.
        let got = lines(&collect(
            &path,
            ReadOptions {
                tail: Some(4),
                stderr: false,
                ..Default::default()
            },
        ));
        assert_eq!(got, ["line 00086", "line 00088"]);
    }
}

#[test]
fn tail_ignores_incomplete_last_line() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    write_numbered(&mut w, 0, 5);
    w.close().unwrap();
    // A writer caught mid-line.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, b"{\"log\":\"half").unwrap();
    let got = lines(&collect(&path, tail(2)));
    assert_eq!(got, ["line 00003", "line 00004"]);
}

#[test]
fn since_until_and_streams() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    write_numbered(&mut w, 0, 20);
    w.close().unwrap();
    let opts = ReadOptions {
        since: Some(at(T0 + 5, 0)),
        until: Some(at(T0 + 9, 0)),
        ..Default::default()
    };
    assert_eq!(lines(&collect(&path, opts)), numbered(5..=9));
    let opts = ReadOptions {
        since: Some(at(T0 + 5, 1)),
        stdout: false,
        ..Default::default()
    };
    assert_eq!(
        lines(&collect(&path, opts))[..2],
        ["line 00007", "line 00009"]
    );
    let opts = ReadOptions {
        tail: Some(5),
        since: Some(at(T0 + 17, 0)),
        ..Default::default()
    };
    assert_eq!(
        lines(&collect(&path, opts)),
        ["line 00017", "line 00018", "line 00019"]
    );
    let opts = ReadOptions {
        stdout: false,
        stderr: false,
        ..Default::default()
    };
    assert!(collect(&path, opts).is_empty());
}

#[test]
fn corrupt_lines_are_reported_and_skipped() {
    let (_d, path) = tmp();
    fs::write(
        &path,
        "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:00:00Z\"}\ngarbage\n\n{\"log\":\"b\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:00:01Z\"}\n",
    )
    .unwrap();
    let items: Vec<_> = read(&path, ReadOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[1], Err(log::Error::Corrupt { .. })));
    assert_eq!(items[2].as_ref().unwrap().line, b"b");
}

#[test]
fn follow_catches_up_after_many_rotations() {
    // Deterministic: the reader is idle at the end of the live file while the
    // writer rotates it several times; it must then read every file in order.
    for compress in [false, true] {
        let (_d, path) = tmp();
        let mut w = JsonFileWriter::open(&path, rotating(600, 10, compress)).unwrap();
        write_numbered(&mut w, 0, 3);
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = read(&path, following(&stop, None)).unwrap();
        let mut got: Vec<LogEntry> = (0..3).map(|_| reader.next().unwrap().unwrap()).collect();
        write_numbered(&mut w, 3, 50);
        w.close().unwrap();
        stop.store(true, Ordering::Release);
        got.extend(reader.map(|e| e.unwrap()));
        assert_eq!(lines(&got), numbered(0..50), "compress {compress}");
    }
}

#[test]
fn follow_from_end_catches_up_compressed() {
    // Nothing read yet when the writer rotates (and compresses) repeatedly.
    let (_d, path) = tmp();
    let mut w = JsonFileWriter::open(&path, rotating(600, 10, true)).unwrap();
    write_numbered(&mut w, 0, 20);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read(&path, following(&stop, Some(0))).unwrap();
    write_numbered(&mut w, 20, 60);
    w.close().unwrap();
    stop.store(true, Ordering::Release);
    let got = lines(&reader.map(|e| e.unwrap()).collect::<Vec<_>>());
    assert_eq!(got, numbered(20..60));
}

#[test]
fn follow_sees_appends_and_rotation() {
    for (max_file, compress) in [(5, false), (5, true), (1, false)] {
        let (_d, path) = tmp();
        let mut w = JsonFileWriter::open(&path, rotating(600, max_file, compress)).unwrap();
        write_numbered(&mut w, 0, 3);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = read(&path, following(&stop, Some(2))).unwrap();
        let handle = std::thread::spawn(move || reader.map(|e| e.unwrap()).collect::<Vec<_>>());
        // A steady writer: a few lines, a pause, rotating every ~8 lines.
        for i in 3..200 {
            write_numbered(&mut w, i, i + 1);
            if i % 4 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        w.close().unwrap();
        stop.store(true, Ordering::Release);
        let got = lines(&handle.join().unwrap());
        if max_file == 1 {
            // With a single file the writer unlinks it on rotation; lines a
            // slow reader had not reached are gone, as in Docker. Order holds.
            assert!(got.windows(2).all(|p| p[0] < p[1]));
            assert_eq!(got.last().unwrap(), "line 00199");
        } else {
            assert_eq!(
                got,
                numbered(1..200),
                "max_file {max_file} compress {compress}"
            );
        }
    }
}

#[test]
fn follow_tail_zero_and_until() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    write_numbered(&mut w, 0, 5);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read(&path, following(&stop, Some(0))).unwrap();
    let handle = std::thread::spawn(move || reader.map(|e| e.unwrap()).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(20));
    write_numbered(&mut w, 5, 7);
    stop.store(true, Ordering::Release);
    assert_eq!(lines(&handle.join().unwrap()), ["line 00005", "line 00006"]);

    // until in the past ends following without a stop flag.
    let opts = ReadOptions {
        follow: true,
        until: Some(at(T0 + 2, 0)),
        ..Default::default()
    };
    assert_eq!(collect(&path, opts).len(), 3);
}

#[test]
fn follow_latency_is_low() {
    let (_d, path) = tmp();
    let mut w = default_writer(&path);
    let mut reader = read(
        &path,
        ReadOptions {
            follow: true,
            ..Default::default()
        },
    )
    .unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let t = std::time::Instant::now();
        w.write(Stream::Stdout, b"ping\n", SystemTime::now())
            .unwrap();
        (t, w)
    });
    let e = reader.next().unwrap().unwrap();
    let seen = std::time::Instant::now();
    let (sent, _w) = writer.join().unwrap();
    assert_eq!(e.line, b"ping");
    assert!(
        seen.duration_since(sent) < Duration::from_millis(120),
        "{:?}",
        seen.duration_since(sent)
    );
}

fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config_err(name: &str, pairs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    match <dyn Driver>::from_config(name, &opts(pairs), &dir.path().join("x.log")) {
        Ok(_) => panic!("{pairs:?} accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn opts_validation_errors() {
    let compress_needs_rotation =
        "compress cannot be true when max-file is less than 2 or max-size is not set";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("max-sise", "1m")],
            "unknown log opt 'max-sise' for json-file log driver",
        ),
        (&[("max-size", "0")], "max-size must be a positive number"),
        (&[("max-size", "10q")], "invalid suffix: 'q'"),
        (
            &[("max-size", "1m"), ("max-file", "0")],
            "max-file cannot be less than 1",
        ),
        (
            &[("max-file", "x")],
            "strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            &[("compress", "maybe")],
            "strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        (
            &[("compress", "true"), ("max-size", "1m")],
            compress_needs_rotation,
        ),
        (
            &[("compress", "true"), ("max-file", "3")],
            compress_needs_rotation,
        ),
        (
            &[("mode", "fast")],
            "logger: logging mode not supported: fast",
        ),
        (
            &[("max-buffer-size", "4m")],
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
        ),
        (
            &[("tag", "{{.Nope}}")],
            "template: log-tag: can't evaluate field Nope",
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(config_err("json-file", pairs), *want);
    }
    assert_eq!(
        config_err("json-file", &[("env-regex", "(")])
            .split(':')
            .next(),
        Some("error parsing regexp")
    );
    assert_eq!(
        config_err("splunk", &[]),
        "logger: no log driver named 'splunk' is registered"
    );
}

#[test]
fn opts_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    // none ignores whatever it is given, like Docker.
    let mut d = <dyn Driver>::from_config("none", &opts(&[("whatever", "1")]), &path).unwrap();
    d.write(Stream::Stdout, b"gone\n", SystemTime::now())
        .unwrap();
    d.close().unwrap();
    assert!(!path.exists() && !d.readable() && d.name() == "none");

    // max-file without max-size is accepted (Docker never rotates then).
    let ok = [
        opts(&[("max-size", "10m"), ("max-file", "3"), ("compress", "true")]),
        opts(&[("max-file", "3")]),
        opts(&[
            ("max-size", "1.5k"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
        ]),
    ];
    for o in &ok {
        log::validate_log_opts("json-file", o).unwrap();
    }
    let cfg = log::JsonFileConfig::parse(&ok[0], &ContainerInfo::default()).unwrap();
    assert_eq!(
        (
            cfg.options.max_size,
            cfg.options.max_file,
            cfg.options.compress
        ),
        (Some(10_000_000), 3, true)
    );

    let info = ContainerInfo {
        id: "0123456789abcdef0123".into(),
        name: "/web".into(),
        image_name: "nginx:1".into(),
        labels: HashMap::from([
            ("com.x.team".into(), "core".into()),
            ("other".into(), "o".into()),
        ]),
        env: vec![
            "APP_MODE=prod".into(),
            "APP_LEVEL=3".into(),
            "HOME=/root".into(),
        ],
        ..Default::default()
    };
    let o = opts(&[
        ("labels", "com.x.team,missing"),
        ("env", "HOME"),
        ("env-regex", "^APP_"),
        ("tag", "{{.Name}}/{{.ID}} {{ .ImageName | upper }}"),
    ]);
    let cfg = log::JsonFileConfig::parse(&o, &info).unwrap();
    let want: BTreeMap<String, String> = [
        ("APP_LEVEL", "3"),
        ("APP_MODE", "prod"),
        ("HOME", "/root"),
        ("com.x.team", "core"),
        ("tag", "web/0123456789ab NGINX:1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(cfg.options.extra_attrs, want);

    let mut d = <dyn Driver>::from_config_with("json-file", &o, &path, &info).unwrap();
    assert!(d.readable() && d.name() == "json-file");
    d.write(Stream::Stdout, b"hi\n", at(T0, 0)).unwrap();
    d.close().unwrap();
    let e = collect(&path, ReadOptions::default());
    assert_eq!(e[0].attrs.len(), 5);
}

/// Heavy: a fast writer rotating every 2 MB while a follower keeps up.
/// `cargo test --release -p berth-log -- --ignored follow_under_load`
#[test]
#[ignore]
fn follow_under_load() {
    let (_d, path) = tmp();
    let mut w = JsonFileWriter::open(&path, rotating(2_000_000, 60, true)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read(&path, following(&stop, None)).unwrap();
    let handle = std::thread::spawn(move || {
        let mut next = 0usize;
        for e in reader {
            let e = e.unwrap();
            let n: usize = std::str::from_utf8(&e.line[5..15])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(n, next, "gap or reorder");
            next += 1;
        }
        next
    });
    let total = 1_000_000;
    let mut chunk = Vec::new();
    for i in 0..total {
        chunk
            .extend_from_slice(format!("line {i:010} some padding text for the line\n").as_bytes());
        if chunk.len() > 60_000 {
            w.write(Stream::Stdout, &chunk, SystemTime::now()).unwrap();
            chunk.clear();
        }
    }
    w.write(Stream::Stdout, &chunk, SystemTime::now()).unwrap();
    w.close().unwrap();
    stop.store(true, Ordering::Release);
    assert_eq!(handle.join().unwrap(), total);
}
