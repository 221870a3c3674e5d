//! `docker events` and `docker system df` end to end through the stock docker CLI: the
//! container life cycle in order, filters, a live stream, image events, bad filters, and
//! disk usage.
//!
//! The image is the busybox fixture (scripts/fixtures.sh) brought in with
//! `docker import`. Every container is removed when the test's Daemon is dropped, also
//! when the test fails.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::*;

/// Now as the docker CLI passes a timestamp: `seconds.nanoseconds`, moved by `offset_ms`.
fn timestamp(offset_ms: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let t = now.as_millis() as i64 + offset_ms;
    format!("{}.{:09}", t / 1000, (t % 1000) * 1_000_000)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// `docker events --since since --until until [--filter F]... --format fmt`: its output.
fn events(d: &Daemon, since: &str, until: &str, filters: &[&str], fmt: &str) -> String {
    let mut args = vec!["events", "--since", since, "--until", until];
    for f in filters {
        args.extend(["--filter", f]);
    }
    args.extend(["--format", fmt]);
    ok(&d.docker(&args))
}

/// A `docker events` subprocess, killed when dropped (also when the test fails).
struct Stream {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Stream {
    fn start(d: &Daemon, args: &[&str]) -> Stream {
        let mut child = d
            .docker_cmd(&["events"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker CLI installed");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Stream { child, lines }
    }

    /// Lines until one equals `want`; `None` if it does not come within `secs`.
    fn until_line(&self, want: &str, secs: u64) -> Option<Vec<String>> {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l == want;
                    seen.push(l);
                    if done {
                        return Some(seen);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// run, stop, rm: create, start, kill, die, stop, destroy, in order; the same with an
/// `until` in the near future, which ends the stream then.
#[test]
fn lifecycle_in_order() {
    let d = Daemon::with_busybox();
    let since = timestamp(-1000);
    // The trap makes SIGTERM end it, so `stop` sends exactly one signal.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; sleep 30 & wait",
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stdout(&d.docker(&["logs", "web"])) != "ready\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&d.docker(&["stop", "web"]));
    ok(&d.docker(&["rm", "web"]));
    let until = timestamp(0);
    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let out = events(&d, &since, &until, &[], fmt);
    let want = [
        "container create web",
        "container start web",
        "container kill web",
        "container die web",
        "container stop web",
        "container destroy web",
    ];
    let got: Vec<String> = lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("container"))
        .collect();
    assert_eq!(got, want, "{out}");

    // The attributes Docker gives: signal on kill, exitCode on die, labels, image.
    let attrs = "{{.Action}} {{index .Actor.Attributes \"signal\"}}{{index .Actor.Attributes \"exitCode\"}} {{.Actor.Attributes.image}} {{.Status}} {{.From}}";
    let out = events(&d, &since, &until, &["label=tier=front"], attrs);
    assert!(
        out.contains("kill 15 busybox kill busybox\n")
            && out.contains("die 0 busybox die busybox\n"),
        "{out}"
    );

    // An `until` ahead: the history, then the stream ends when it is reached.
    let until = timestamp(1500);
    let start = Instant::now();
    let out = events(&d, &since, &until, &[], fmt);
    let took = start.elapsed();
    assert!(out.contains("container destroy web"), "{out}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

/// `--filter event=die --filter container=NAME`: exactly one die for an exit the
/// container made on its own, although the watcher, `wait` and every read of the record
/// all notice it.
#[test]
fn die_once_filtered_by_container() {
    let d = Daemon::with_busybox();
    let since = timestamp(-1000);
    let run = d.docker(&["run", "--name", "exiter", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    ok(&d.docker(&["run", "--name", "other", "busybox", "true"]));
    for _ in 0..3 {
        ok(&d.docker(&["inspect", "exiter"]));
        ok(&d.docker(&["ps", "-a"]));
    }
    let until = timestamp(0);
    let out = events(
        &d,
        &since,
        &until,
        &["event=die", "container=exiter"],
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    );
    assert_eq!(lines(&out), ["die exiter 3"], "{out}");

    // Two values of one key: either matches.
    let out = events(
        &d,
        &since,
        &until,
        &["event=die", "event=start", "type=container"],
        "{{.Action}} {{.Actor.Attributes.name}}",
    );
    assert_eq!(
        lines(&out),
        ["start exiter", "die exiter", "start other", "die other"],
        "{out}"
    );
}

/// A `docker events` that connected first sees a container started afterwards.
#[test]
fn live_stream_sees_new_container() {
    let d = Daemon::with_busybox();
    let s = Stream::start(
        &d,
        &[
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    // Tag until the stream shows it: then it is connected.
    let mut connected = false;
    for i in 0..50 {
        let tag = format!("sentinel:{i}");
        ok(&d.docker(&["tag", "busybox", &tag]));
        if s.until_line(&format!("image tag {tag}"), 1).is_some() {
            connected = true;
            break;
        }
    }
    assert!(connected, "the event stream never showed a tag");
    ok(&d.docker(&["run", "-d", "--name", "live", "busybox", "sleep", "30"]));
    let seen = s.until_line("container start live", 15);
    let seen = seen.expect("no start event on the live stream");
    assert!(
        seen.iter().any(|l| l == "container create live"),
        "{seen:?}"
    );
    // Still streaming: a kill shows up too.
    ok(&d.docker(&["kill", "live"]));
    assert!(
        s.until_line("container die live", 15).is_some(),
        "no die event on the live stream"
    );
}

/// tag, untag, import, delete: image events with Docker's names; `image=` filters
/// them.
#[test]
fn image_events() {
    let d = Daemon::with_busybox();
    // After the import of the fixture (times are cut to milliseconds).
    std::thread::sleep(Duration::from_millis(20));
    let since = timestamp(0);
    ok(&d.docker(&["tag", "busybox:latest", "foo:1"]));
    ok(&d.docker(&["rmi", "foo:1"]));
    let src = d.dir.join("tiny");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello"), b"hi\n").unwrap();
    let tarball = d.dir.join("tiny.tar");
    tar_dir(&src, &tarball);
    ok(&d.docker(&["import", tarball.to_str().unwrap(), "tiny:1"]));
    let id = ok(&d.docker(&["images", "-q", "--no-trunc", "tiny:1"]));
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    ok(&d.docker(&["rmi", "tiny:1"]));
    let until = timestamp(0);
    let fmt = "{{.Action}} {{.Actor.Attributes.name}}";
    let out = events(&d, &since, &until, &["type=image"], fmt);
    let want = [
        "tag foo:1".to_string(),
        "untag foo:1".to_string(),
        "tag tiny:1".to_string(),
        format!("import {id}"),
        "untag tiny:1".to_string(),
        format!("delete {id}"),
    ];
    assert_eq!(lines(&out), want, "{out}");
    let out = events(&d, &since, &until, &["image=foo"], fmt);
    assert_eq!(lines(&out), ["tag foo:1", "untag foo:1"], "{out}");
}

/// Unknown filter keys, bad JSON, bad times and an inverted range: 400 with Docker's
/// messages.
#[test]
fn bad_filters() {
    let d = Daemon::start();
    let until = timestamp(0);
    let out = d.docker(&["events", "--until", &until, "--filter", "nope=1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid filter 'nope'"),
        "{}",
        stderr(&out)
    );
    let (code, body) = d.curl(
        "GET",
        "/v1.45/events?until=1&filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter 'nope'"), "{body}");
    let (code, body) = d.curl("GET", "/events?until=1&filters=notjson");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter"), "{body}");
    let (code, body) = d.curl("GET", "/events?since=soon");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl("GET", "/events?since=20&until=10");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("`since` time (20) cannot be after `until` time (10)"),
        "{body}"
    );
    // A past `until` with nothing to send: an empty, finished stream.
    let (code, body) = d.curl("GET", "/events?until=1");
    assert_eq!((code, body.as_str()), (200, ""));
}

/// `docker system df` and `-v` show the image and the container with sane sizes.
#[test]
fn system_df() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "dfc",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1024",
        "count=100",
    ]));
    let (code, body) = d.curl("GET", "/system/df");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let img = &v["Images"][0];
    assert_eq!(v["Images"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(img["Containers"], 1, "{body}");
    assert_eq!(img["RepoTags"][0], "busybox:latest", "{body}");
    let img_size = img["Size"].as_u64().unwrap();
    assert!(img_size > 100_000, "{body}");
    assert_eq!(v["LayersSize"].as_u64(), Some(img_size), "{body}");
    assert_eq!(img["SharedSize"], 0, "{body}");
    let c = &v["Containers"][0];
    assert_eq!(c["Names"][0], "/dfc", "{body}");
    let rw = c["SizeRw"].as_u64().unwrap();
    assert!((102_400..200_000).contains(&rw), "{body}");
    assert_eq!(c["SizeRootFs"].as_u64(), Some(rw + img_size), "{body}");
    assert_eq!(v["Volumes"], serde_json::json!([]), "{body}");
    assert_eq!(v["BuildCache"], serde_json::json!([]), "{body}");

    let out = ok(&d.docker(&["system", "df"]));
    let row = |kind: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row: {out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // TYPE TOTAL ACTIVE SIZE RECLAIMABLE...
    assert_eq!(row("Images")[1..3], ["1", "1"], "{out}");
    assert_eq!(row("Containers")[1..3], ["1", "0"], "{out}");
    assert_eq!(row("Containers")[3], "102.4kB", "{out}");

    let out = ok(&d.docker(&["system", "df", "-v"]));
    assert!(out.contains("busybox") && out.contains("latest"), "{out}");
    assert!(out.contains("dfc") && out.contains("102kB"), "{out}");
    assert!(out.contains("Exited (0)"), "{out}");

    let (code, body) = d.curl("GET", "/system/df?type=bogus");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("unknown object type: bogus"), "{body}");
    let (code, body) = d.curl("GET", "/v1.45/system/df?type=container");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["Images"].is_null() && v["Containers"].is_array(),
        "{body}"
    );
}
