//! Isolation, end to end: the OCI spec's namespaces, root filesystem, mounts, devices,
//! masked and read-only paths and sysctls, each checked from inside the container by
//! what it prints, and checked on the host for what must (not) have changed.
//!
//! Run as root: `cargo test -p berth-runtime-cli --test isolation`.

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs the bundle to completion and checks it left nothing behind: no mount under the
/// bundle, no state directory, no cgroup.
#[track_caller]
fn run_clean(rt: &Runtime, b: &Bundle, id: &str) -> Output {
    let out = rt.run(b, id);
    assert_left_nothing(rt, b, id);
    out
}

#[track_caller]
fn assert_left_nothing(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(
        mounts_under(&b.dir).is_empty(),
        "mounts left under the bundle: {:?}",
        mounts_under(&b.dir)
    );
    assert!(!rt.exists(id), "state dir of {id} left behind");
    assert!(
        cgroup_dirs(id).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs(id)
    );
}

/// Runs `script` in a fresh bundle (after `edit`) and returns its stdout; the run must
/// succeed and leave nothing behind.
#[track_caller]
fn run_script(name: &str, script: &str, edit: impl FnOnce(&mut Bundle)) -> String {
    let rt = Runtime::new(name);
    let mut b = Bundle::new(name);
    b.sh(script);
    edit(&mut b);
    let id = unique(name);
    ok(&run_clean(&rt, &b, &id))
}

/// The value of `key=value` in the container's output.
#[track_caller]
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key}= in output:\n{out}"))
}

/// The namespace link (e.g. "net:[4026531840]") of the test process.
fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn sh_host(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap()
}

fn push_mount(spec: &mut Value, m: Value) {
    spec["mounts"].as_array_mut().unwrap().push(m);
}

fn add_capability(spec: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

fn remove_namespace(spec: &mut Value, typ: &str) {
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

fn set_namespace_path(spec: &mut Value, typ: &str, path: &str) {
    let nss = spec["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != typ);
    nss.push(json!({"type": typ, "path": path}));
}

/// The mountinfo line (in the container's output) of the topmost mount at `mp`.
fn mountinfo_line<'a>(mountinfo: &'a str, mp: &str) -> Option<&'a str> {
    mountinfo.lines().rfind(|l| l.split(' ').nth(4) == Some(mp))
}

/// A host directory removed on drop (unmounting anything a bad runtime left on it).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("berth-iso-{name}")));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for m in mounts_under(&self.0).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A named network namespace (`ip netns add`), deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = unique("berth-iso-ns");
        let out = sh_host("ip", &["netns", "add", &name]);
        assert!(out.status.success(), "ip netns add: {}", stderr(&out));
        NetNs(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", &self.0];
        a.extend_from_slice(args);
        sh_host("ip", &a)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = sh_host("ip", &["netns", "del", &self.0]);
    }
}

/// A SysV shared memory segment on the host, removed on drop.
struct HostShm(String);

impl HostShm {
    fn new() -> HostShm {
        let out = sh_host("ipcmk", &["-M", "4096"]);
        let text = stdout(&out);
        assert!(out.status.success(), "ipcmk: {}", stderr(&out));
        // "Shared memory id: 42"
        let id = text
            .split(':')
            .nth(1)
            .map(|s| s.trim().to_string())
            .expect("shm id");
        HostShm(id)
    }
}

impl Drop for HostShm {
    fn drop(&mut self) {
        let _ = sh_host("ipcrm", &["-m", &self.0]);
    }
}

/// A `run` in the background whose stdout we read line by line. Killed on drop; the
/// container itself is force-deleted when the `Runtime` is dropped.
struct Background {
    child: Option<Child>,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Background {
    fn start(rt: &Runtime, b: &Bundle, id: &str) -> Background {
        let mut child = rt
            .cmd()
            .args(["run", "-b"])
            .arg(&b.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::BufRead;
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Background {
            child: Some(child),
            lines,
        }
    }

    /// The next line the container prints.
    #[track_caller]
    fn line(&mut self) -> String {
        self.lines
            .next()
            .expect("container exited before printing")
            .unwrap()
    }

    fn wait(mut self) -> std::process::ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------

/// PID namespace: the process is PID 1 and `ps` sees only the container's processes.
#[test]
fn pid_namespace_shows_only_the_container() {
    let out = run_script(
        "pidns",
        "echo pid=$$; echo ns=$(readlink /proc/self/ns/pid); ps -o pid,comm; echo end",
        |_| {},
    );
    assert_eq!(field(&out, "pid"), "1", "{out}");
    assert_ne!(field(&out, "ns"), host_ns("pid"));
    let pids: Vec<u32> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .take_while(|l| *l != "end")
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(pids.contains(&1), "ps does not list PID 1: {out}");
    assert!(
        pids.len() <= 3 && pids.iter().all(|p| *p < 10),
        "ps sees processes outside the container: {out}"
    );
}

/// UTS namespace: the spec's hostname and domainname are the container's, not the host's.
#[test]
fn uts_namespace_has_own_hostname_and_domainname() {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let out = run_script(
        "uts",
        "echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname); \
         echo ns=$(readlink /proc/self/ns/uts)",
        |b| {
            b.edit(|s| {
                s["hostname"] = json!("iso-host");
                s["domainname"] = json!("iso.domain");
            });
        },
    );
    assert_eq!(field(&out, "host"), "iso-host");
    assert_eq!(field(&out, "domain"), "iso.domain");
    assert_ne!(field(&out, "ns"), host_ns("uts"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
}

/// Network namespace: only `lo`, brought up as runc does.
#[test]
fn network_namespace_is_empty_with_lo_up() {
    let out = run_script(
        "netns",
        "echo ns=$(readlink /proc/self/ns/net); tail -n +3 /proc/net/dev | cut -d: -f1; \
         ip link show lo",
        |_| {},
    );
    assert_ne!(field(&out, "ns"), host_ns("net"));
    let ifaces: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("ns=") && !l.contains(": lo:") && !l.contains("link/"))
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "interfaces other than lo: {out}");
    let lo = out.lines().find(|l| l.contains(": lo:")).expect("ip link");
    assert!(lo.contains("LOOPBACK,UP"), "lo should be up: {lo}");
}

/// IPC namespace: a SysV segment made on the host is not visible inside.
#[test]
fn ipc_namespace_hides_host_ipc_objects() {
    let shm = HostShm::new();
    let host_table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    assert!(
        host_table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(shm.0.as_str())),
        "the host segment {} should be listed on the host",
        shm.0
    );
    let out = run_script(
        "ipcns",
        "echo ns=$(readlink /proc/self/ns/ipc); echo rows=$(tail -n +2 /proc/sysvipc/shm | wc -l)",
        |_| {},
    );
    assert_ne!(field(&out, "ns"), host_ns("ipc"));
    assert_eq!(field(&out, "rows"), "0", "host IPC objects visible: {out}");
}

/// Mount namespace: a mount made inside the container is not visible on the host, and
/// what is written to it does not reach the host's rootfs directory.
#[test]
fn mount_namespace_keeps_container_mounts_private() {
    let rt = Runtime::new("mntns");
    let mut b = Bundle::new("mntns");
    std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    b.sh(
        "mount -t tmpfs inner /mnt && echo secret > /mnt/f && echo mounted && \
          grep -c ' /mnt ' /proc/self/mountinfo && sleep 30",
    )
    .edit(|s| add_capability(s, "CAP_SYS_ADMIN"));
    let id = unique("mntns");
    let mut bg = Background::start(&rt, &b, &id);
    assert_eq!(bg.line(), "mounted");
    assert_eq!(bg.line(), "1", "the mount is visible inside");
    assert!(
        !b.rootfs().join("mnt/f").exists(),
        "a file written to the container's tmpfs reached the host"
    );
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(" inner ") && mounts_under(&b.dir).is_empty(),
        "container mounts visible on the host: {:?}",
        mounts_under(&b.dir)
    );
    ok(&rt.exec(&["kill", &id, "KILL"]));
    let _ = bg.wait();
    assert_left_nothing(&rt, &b, &id);
}

/// Cgroup namespace: the container's own cgroup is its root, in every hierarchy.
#[test]
fn cgroup_namespace_shows_root_paths() {
    let out = run_script(
        "cgns",
        "echo ns=$(readlink /proc/self/ns/cgroup); cat /proc/self/cgroup",
        |_| {},
    );
    assert_ne!(field(&out, "ns"), host_ns("cgroup"));
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("ns=")).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l.ends_with(":/"), "cgroup path is not /: {l}\n{out}");
    }
}

/// Joining by path: a network namespace made with `ip netns add` holding a dummy link.
#[test]
fn joins_a_network_namespace_by_path() {
    let ns = NetNs::new();
    // A link only this namespace has (dummy when the kernel has it, else a veth pair),
    // and lo brought up with an unusual MTU.
    let dummy = ns.exec(&["ip", "link", "add", "d0", "type", "dummy"]);
    if !dummy.status.success() {
        let out = ns.exec(&[
            "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ]);
        assert!(out.status.success(), "ip link add: {}", stderr(&out));
    }
    for args in [
        &["ip", "link", "set", "lo", "mtu", "1234"][..],
        &["ip", "link", "set", "lo", "up"][..],
    ] {
        let out = ns.exec(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let want = stdout(&ns.exec(&["readlink", "/proc/self/ns/net"]))
        .trim()
        .to_string();
    let path = ns.path();
    let out = run_script(
        "joinnet",
        "echo ns=$(readlink /proc/self/ns/net); echo lo=$(ip link show lo | head -1); \
         tail -n +3 /proc/net/dev | cut -d: -f1",
        |b| {
            b.edit(|s| set_namespace_path(s, "network", &path));
        },
    );
    assert_eq!(field(&out, "ns"), want);
    let ifaces: Vec<&str> = out.lines().skip(2).map(str::trim).collect();
    assert!(
        ifaces.contains(&"d0"),
        "the namespace's link not seen: {out}"
    );
    assert!(ifaces.contains(&"lo"), "{out}");
    let lo = field(&out, "lo");
    assert!(
        lo.contains("mtu 1234") && lo.contains(",UP"),
        "lo is not the namespace's: {lo}"
    );
}

/// Joining by path: a second container joins the first one's UTS namespace through
/// /proc/<pid>/ns/uts and sees its hostname.
#[test]
fn joins_the_uts_namespace_of_another_container() {
    let rt = Runtime::new("joinuts");
    let mut a = Bundle::new("joinuts-a");
    a.args(&["sleep", "60"])
        .edit(|s| s["hostname"] = json!("first-box"));
    let id_a = unique("uts-a");
    // Not `rt.create`: the created container inherits create's stdio, so capturing
    // create's output would wait for the container to exit.
    let st = rt
        .cmd()
        .args(["create", "-b"])
        .arg(&a.dir)
        .arg(&id_a)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "create {id_a} failed");
    ok(&rt.exec(&["start", &id_a]));
    let pid = rt.state(&id_a)["pid"].as_i64().unwrap();

    let mut b = Bundle::new("joinuts-b");
    b.sh("echo host=$(hostname); echo ns=$(readlink /proc/self/ns/uts)")
        .edit(|s| {
            s["hostname"] = Value::Null;
            set_namespace_path(s, "uts", &format!("/proc/{pid}/ns/uts"));
        });
    let id_b = unique("uts-b");
    let out = ok(&run_clean(&rt, &b, &id_b));
    let want = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    assert_eq!(field(&out, "host"), "first-box");
    assert_eq!(field(&out, "ns"), want.to_string_lossy());

    ok(&rt.exec(&["delete", "--force", &id_a]));
    assert_left_nothing(&rt, &a, &id_a);
}

/// User namespace: uid/gid mappings apply; root inside is 100000 on the host.
#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_id() {
    let rt = Runtime::new("userns");
    let mut b = Bundle::new("userns");
    let st = Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    b.sh(
        "echo uid=$(id -u); echo gid=$(id -g); echo uidmap=$(cat /proc/self/uid_map); \
          echo gidmap=$(cat /proc/self/gid_map); touch /tmp/made-inside; echo done",
    )
    .edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    let id = unique("userns");
    let out = ok(&run_clean(&rt, &b, &id));
    assert_eq!(field(&out, "uid"), "0");
    assert_eq!(field(&out, "gid"), "0");
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(field(&out, "uidmap")), ["0", "100000", "65536"]);
    assert_eq!(words(field(&out, "gidmap")), ["0", "100000", "65536"]);
    let meta = std::fs::metadata(b.rootfs().join("tmp/made-inside")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 100000));
}

// ---------------------------------------------------------------------------------------
// Root filesystem
// ---------------------------------------------------------------------------------------

/// pivot_root: the host's tree is gone and "/" is the bundle's rootfs.
#[test]
fn pivot_root_hides_the_host() {
    let marker = TempDir::new("pivot");
    std::fs::write(marker.0.join("host-file"), "x").unwrap();
    let script = format!(
        "ls -d /work {} 2>&1; echo ---; cat /proc/self/mountinfo",
        marker.0.display()
    );
    let rt = Runtime::new("pivot");
    let mut b = Bundle::new("pivot");
    b.sh(&script);
    let id = unique("pivot");
    let out = ok(&run_clean(&rt, &b, &id));
    let (ls, mountinfo) = out.split_once("---\n").unwrap();
    assert!(
        ls.lines().all(|l| l.contains("No such file")),
        "host paths visible: {ls}"
    );
    let roots: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/"))
        .collect();
    assert_eq!(roots.len(), 1, "the old root is still mounted: {mountinfo}");
    let root = roots[0].split(' ').nth(3).unwrap();
    assert!(
        root.ends_with(&format!(
            "{}/rootfs",
            b.dir.file_name().unwrap().to_string_lossy()
        )),
        "/ is not the bundle's rootfs: {}",
        roots[0]
    );
}

/// root.readonly: the root is read-only, /dev (tmpfs) stays writable.
#[test]
fn readonly_root_refuses_writes() {
    let out = run_script(
        "roroot",
        "touch /x 2>&1; echo root=$?; touch /dev/ok && echo dev=ok",
        |b| {
            b.edit(|s| s["root"]["readonly"] = json!(true));
        },
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert_ne!(field(&out, "root"), "0");
    assert_eq!(field(&out, "dev"), "ok");
}

/// rootfsPropagation: every value the spec allows is accepted; anything else is refused.
#[test]
fn rootfs_propagation_values() {
    let rt = Runtime::new("prop");
    let mut b = Bundle::new("prop");
    b.sh("cat /proc/self/mountinfo");
    // The propagation mountinfo shows for "/" and for /proc (mounted before pivot_root,
    // so only the recursive forms reach it). The host's mounts are not shared here, so
    // a slave has no master to show.
    let tag = |line: &str| {
        let optional = line.split(" - ").next().unwrap().split(' ').skip(6);
        let tags: Vec<&str> = optional
            .filter_map(|f| {
                if f.starts_with("shared:") {
                    Some("shared")
                } else if f == "unbindable" {
                    Some("unbindable")
                } else {
                    None
                }
            })
            .collect();
        tags.first().copied().unwrap_or("private")
    };
    for (p, root, proc) in [
        ("private", "private", "private"),
        ("rprivate", "private", "private"),
        ("slave", "private", "private"),
        ("rslave", "private", "private"),
        ("shared", "shared", "private"),
        ("rshared", "shared", "shared"),
        ("unbindable", "unbindable", "private"),
        ("runbindable", "unbindable", "unbindable"),
    ] {
        b.edit(|s| s["linux"]["rootfsPropagation"] = json!(p));
        let id = unique("prop");
        let mi = ok(&run_clean(&rt, &b, &id));
        let root_line = mountinfo_line(&mi, "/").expect("/ in mountinfo");
        let proc_line = mountinfo_line(&mi, "/proc").expect("/proc in mountinfo");
        assert_eq!(
            (tag(root_line), tag(proc_line)),
            (root, proc),
            "rootfsPropagation {p}:\n{root_line}\n{proc_line}"
        );
    }
    b.edit(|s| s["linux"]["rootfsPropagation"] = json!("sideways"));
    let id = unique("prop");
    let out = run_clean(&rt, &b, &id);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sideways"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// The spec's mounts
// ---------------------------------------------------------------------------------------

/// The default mounts: proc, sysfs, /dev tmpfs with its mode and size, devpts and
/// /dev/ptmx, /dev/shm, mqueue, each of the right type and with its options.
#[test]
fn default_mounts_have_their_types_and_options() {
    let out = run_script(
        "mounts",
        "echo devmode=$(stat -c %a /dev); echo shmmode=$(stat -c %a /dev/shm); \
         echo ptmx=$(readlink /dev/ptmx); echo ptsptmx=$(stat -c %F /dev/pts/ptmx); \
         echo ---; cat /proc/self/mountinfo",
        |b| {
            b.edit(|s| {
                for m in s["mounts"].as_array_mut().unwrap() {
                    if m["destination"] == "/dev" {
                        m["options"] = json!(["nosuid", "strictatime", "mode=711", "size=12345k"]);
                    }
                }
            });
        },
    );
    assert_eq!(field(&out, "devmode"), "711");
    assert_eq!(field(&out, "shmmode"), "1777");
    assert_eq!(field(&out, "ptmx"), "pts/ptmx");
    assert_eq!(field(&out, "ptsptmx"), "character special file");
    let mi = out.split_once("---\n").unwrap().1;
    let check = |mp: &str, fstype: &str, opts: &[&str]| {
        let l = mountinfo_line(mi, mp).unwrap_or_else(|| panic!("{mp} not mounted:\n{mi}"));
        let (pre, post) = l.split_once(" - ").unwrap();
        assert_eq!(post.split(' ').next(), Some(fstype), "{l}");
        let all: Vec<&str> = pre
            .split(' ')
            .nth(5)
            .unwrap()
            .split(',')
            .chain(post.split(' ').nth(2).unwrap().split(','))
            .collect();
        for o in opts {
            assert!(all.contains(o), "{mp} lacks {o}: {l}");
        }
    };
    check("/proc", "proc", &["rw"]);
    check("/sys", "sysfs", &["ro", "nosuid", "nodev", "noexec"]);
    check("/dev", "tmpfs", &["nosuid", "size=12348k"]);
    check("/dev/pts", "devpts", &["nosuid", "noexec", "ptmxmode=666"]);
    check(
        "/dev/shm",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=65536k"],
    );
    check("/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"]);
}

/// The cgroup mount: /sys/fs/cgroup shows the controllers and is read-only.
#[test]
fn cgroup_mount_is_readonly_with_controllers() {
    let out = run_script(
        "cgmount",
        "ls /sys/fs/cgroup; echo ---; ls /sys/fs/cgroup/memory | grep -c '^memory\\.'; \
         mkdir /sys/fs/cgroup/memory/evil 2>&1; touch /sys/fs/cgroup/evil 2>&1; true",
        |_| {},
    );
    let (ls, rest) = out.split_once("---\n").unwrap();
    for c in ["memory", "cpu", "pids", "devices"] {
        assert!(ls.lines().any(|l| l == c), "no {c} in /sys/fs/cgroup: {ls}");
    }
    let n: u32 = rest.lines().next().unwrap().parse().unwrap();
    assert!(n > 0, "memory controller files missing: {out}");
    assert_eq!(
        rest.matches("Read-only file system").count(),
        2,
        "cgroup writes should fail read-only: {out}"
    );
}

/// Bind mounts from the host: ro refuses writes, rw writes reach the host, a file can be
/// bound too; the host directory is left as it was.
#[test]
fn bind_mounts_from_the_host() {
    let host = TempDir::new("bind");
    std::fs::write(host.0.join("file"), "from-host\n").unwrap();
    let single = TempDir::new("bindfile");
    std::fs::write(single.0.join("one"), "single-file\n").unwrap();
    let (h, f) = (host.0.clone(), single.0.join("one"));
    let out = run_script(
        "bind",
        "cat /ro/file; touch /ro/new 2>&1; echo ro=$?; \
         cat /rw/file; echo written > /rw/out; echo rw=$?; cat /etc/one",
        |b| {
            b.edit(|s| {
                push_mount(
                    s,
                    json!({"destination": "/ro", "type": "bind", "source": h,
                           "options": ["rbind", "ro"]}),
                );
                push_mount(
                    s,
                    json!({"destination": "/rw", "type": "bind", "source": h,
                           "options": ["bind", "rw"]}),
                );
                push_mount(
                    s,
                    json!({"destination": "/etc/one", "type": "bind", "source": f,
                           "options": ["bind", "ro"]}),
                );
            });
        },
    );
    assert_eq!(out.matches("from-host").count(), 2, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_ne!(field(&out, "ro"), "0");
    assert_eq!(field(&out, "rw"), "0");
    assert!(out.contains("single-file"), "{out}");
    assert!(!host.0.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(host.0.join("out")).unwrap(),
        "written\n"
    );
    assert!(mounts_under(&host.0).is_empty());
    assert!(mounts_under(&single.0).is_empty());
}

/// noexec and nosuid: a program copied onto a noexec tmpfs cannot run, the same copy on
/// an exec tmpfs can.
#[test]
fn noexec_and_nosuid_mount_options() {
    let out = run_script(
        "noexec",
        "cp /bin/busybox /ne/busybox; cp /bin/busybox /ex/busybox; \
         /ex/busybox echo exec-ok; sh -c '/ne/busybox echo should-not-run' 2>&1; echo ne=$?; \
         grep ' /ne ' /proc/self/mountinfo",
        |b| {
            b.edit(|s| {
                push_mount(
                    s,
                    json!({"destination": "/ne", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "noexec", "nodev"]}),
                );
                push_mount(
                    s,
                    json!({"destination": "/ex", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nodev"]}),
                );
            });
        },
    );
    assert!(out.contains("exec-ok"), "{out}");
    assert!(!out.contains("should-not-run"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert_ne!(field(&out, "ne"), "0");
    let ne = out.lines().find(|l| l.contains(" /ne ")).unwrap();
    assert!(ne.contains("nosuid") && ne.contains("noexec"), "{ne}");
}

/// A mount destination that is a symlink pointing outside the root lands inside the
/// root: the host directory it names is neither mounted over nor written to.
#[test]
fn symlinked_destination_cannot_escape_the_root() {
    let victim = TempDir::new("victim");
    std::fs::write(victim.0.join("marker"), "host\n").unwrap();
    let v = victim.0.to_string_lossy().into_owned();
    let rt = Runtime::new("escape");
    let mut b = Bundle::new("escape");
    std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    std::os::unix::fs::symlink(&victim.0, b.rootfs().join("mnt/abs")).unwrap();
    let rel = format!("../../../../../../../../..{v}");
    std::os::unix::fs::symlink(&rel, b.rootfs().join("mnt/rel")).unwrap();
    let bsrc = TempDir::new("escape-src");
    std::fs::write(bsrc.0.join("payload"), "payload\n").unwrap();
    let src = bsrc.0.clone();
    b.sh(&format!(
        "echo pwned > /mnt/abs/pwned; ls {v}; echo ---; grep ' {v} ' /proc/self/mountinfo"
    ))
    .edit(|s| {
        push_mount(
            s,
            json!({"destination": "/mnt/abs", "type": "tmpfs", "source": "tmpfs"}),
        );
        push_mount(
            s,
            json!({"destination": "/mnt/rel", "type": "bind", "source": src,
                   "options": ["bind"]}),
        );
    });
    let id = unique("escape");
    let out = ok(&run_clean(&rt, &b, &id));
    let (ls, mi) = out.split_once("---\n").unwrap();
    // Both symlinks resolve to the same in-root path: the bind is on top of the tmpfs.
    assert!(!ls.contains("marker"), "the host dir is visible: {out}");
    assert_eq!(
        mi.lines().count(),
        2,
        "mounts should land at {v} in the root: {out}"
    );
    let mut host: Vec<String> = std::fs::read_dir(&victim.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(host, ["marker"], "the host dir was written to");
    assert!(mounts_under(&victim.0).is_empty());
    assert!(
        b.rootfs().join(v.trim_start_matches('/')).is_dir(),
        "the mount point should have been made inside the root"
    );
    // The write went where the spec put the bind: into its source, seen through the root.
    assert_eq!(
        ls.lines().collect::<Vec<_>>(),
        ["payload", "pwned"],
        "{out}"
    );
    assert!(bsrc.0.join("pwned").exists());
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// Default device nodes, an extra `linux.devices` node, and the /dev symlinks.
#[test]
fn device_nodes_and_dev_symlinks() {
    let out = run_script(
        "devices",
        "for d in null zero full random urandom tty fuse-test; do \
           echo $d=$(stat -c '%F %a %t,%T %u:%g' /dev/$d); done; \
         for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; \
         echo x > /dev/null && echo null-writes; \
         echo zerobytes=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')",
        |b| {
            b.edit(|s| {
                s["linux"]["devices"] = json!([{
                    "path": "/dev/fuse-test", "type": "c", "major": 1, "minor": 3,
                    "fileMode": 384, "uid": 1000, "gid": 1001
                }]);
            });
        },
    );
    for (d, maj, min) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        assert_eq!(
            field(&out, d),
            format!("character special file 666 {maj:x},{min:x} 0:0"),
            "/dev/{d}"
        );
    }
    assert_eq!(
        field(&out, "fuse-test"),
        "character special file 600 1,3 1000:1001"
    );
    assert_eq!(field(&out, "fd"), "/proc/self/fd");
    assert_eq!(field(&out, "stdin"), "/proc/self/fd/0");
    assert_eq!(field(&out, "stdout"), "/proc/self/fd/1");
    assert_eq!(field(&out, "stderr"), "/proc/self/fd/2");
    assert!(out.contains("null-writes"));
    assert_eq!(field(&out, "zerobytes"), "00000000");
}

// ---------------------------------------------------------------------------------------
// Masked and read-only paths
// ---------------------------------------------------------------------------------------

/// maskedPaths: /proc/kcore reads empty, masked directories are empty, and custom
/// masked paths (a file and a directory of the image) hide their content.
#[test]
fn masked_paths_hide_their_content() {
    let rt = Runtime::new("masked");
    let mut b = Bundle::new("masked");
    std::fs::create_dir_all(b.rootfs().join("secret-dir")).unwrap();
    std::fs::write(b.rootfs().join("secret-dir/key"), "k").unwrap();
    std::fs::write(b.rootfs().join("etc/secret-file"), "hidden").unwrap();
    b.sh(
        "if [ -e /proc/kcore ]; then echo kcore=$(wc -c < /proc/kcore); else echo kcore=absent; fi; \
         echo timer_list=$(wc -c < /proc/timer_list); echo keys=$(wc -c < /proc/keys); \
         echo firmware=$(ls -A /sys/firmware | wc -l); \
         echo dir=$(ls -A /secret-dir | wc -l); echo file=$(cat /etc/secret-file); \
         echo filesize=$(wc -c < /etc/secret-file); echo proc=$(ls -A /proc/self/ | wc -l)",
    )
    .edit(|s| {
        let m = s["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.push(json!("/secret-dir"));
        m.push(json!("/etc/secret-file"));
    });
    // What the masks hide must have content on the host, or the test proves nothing.
    assert!(
        std::fs::read_dir("/sys/firmware").unwrap().count() > 0
            && !std::fs::read_to_string("/proc/timer_list")
                .unwrap()
                .is_empty()
            && !std::fs::read_to_string("/proc/keys").unwrap().is_empty(),
        "the host's /sys/firmware, /proc/timer_list and /proc/keys should not be empty"
    );
    let id = unique("masked");
    let out = ok(&run_clean(&rt, &b, &id));
    // This kernel may have no /proc/kcore at all; when it has one, it reads empty.
    let want_kcore = if std::path::Path::new("/proc/kcore").exists() {
        "0"
    } else {
        "absent"
    };
    assert_eq!(field(&out, "kcore"), want_kcore);
    assert_eq!(field(&out, "timer_list"), "0");
    assert_eq!(field(&out, "keys"), "0");
    assert_eq!(field(&out, "firmware"), "0");
    assert_eq!(field(&out, "dir"), "0");
    assert_eq!(field(&out, "file"), "");
    assert_eq!(field(&out, "filesize"), "0");
    assert_ne!(field(&out, "proc"), "0", "unmasked /proc works");
    // The image itself is untouched.
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/secret-file")).unwrap(),
        "hidden"
    );
}

/// readonlyPaths: /proc/sys and a custom directory refuse writes as read-only; a
/// sibling path stays writable.
#[test]
fn readonly_paths_refuse_writes() {
    let rt = Runtime::new("ropaths");
    let mut b = Bundle::new("ropaths");
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    std::fs::write(b.rootfs().join("data/f"), "orig\n").unwrap();
    b.sh("echo 1 > /proc/sys/net/ipv4/ip_forward 2>&1; echo sys=$?; \
          echo changed > /data/f; echo data=$?; cat /data/f; \
          touch /etc/writable && echo etc=ok")
        .edit(|s| {
            s["linux"]["readonlyPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/data"));
        });
    let id = unique("ropaths");
    let out = rt.run(&b, &id);
    let err = stderr(&out);
    let out_s = ok(&out);
    assert_left_nothing(&rt, &b, &id);
    assert_ne!(field(&out_s, "sys"), "0");
    assert_ne!(field(&out_s, "data"), "0");
    assert_eq!(
        format!("{out_s}{err}")
            .matches("Read-only file system")
            .count(),
        2,
        "stdout: {out_s} stderr: {err}"
    );
    assert!(out_s.contains("orig"), "{out_s}");
    assert_eq!(field(&out_s, "etc"), "ok");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("data/f")).unwrap(),
        "orig\n"
    );
}

// ---------------------------------------------------------------------------------------
// Sysctls
// ---------------------------------------------------------------------------------------

/// A namespaced sysctl is set inside the container only.
#[test]
fn namespaced_sysctl_is_set_inside_only() {
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    // The value the host does not have, so the check can fail.
    let want = if before.trim() == "1" { "0" } else { "1" };
    let out = run_script(
        "sysctl",
        "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo shm=$(cat /proc/sys/kernel/shmmni)",
        |b| {
            b.edit(|s| {
                s["linux"]["sysctl"] =
                    json!({"net.ipv4.ip_forward": want, "kernel.shmmni": "1234"});
            });
        },
    );
    assert_eq!(field(&out, "fwd"), want);
    assert_eq!(field(&out, "shm"), "1234");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        before,
        "the host's ip_forward changed"
    );
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
}

/// A sysctl that is not namespaced (or whose namespace the container does not have) is
/// refused by `run` with an error naming it, before anything is created.
#[test]
fn non_namespaced_sysctl_is_refused_cleanly() {
    let rt = Runtime::new("badsysctl");
    let mut b = Bundle::new("badsysctl");
    b.sh("echo should-not-run");
    for (sysctl, drop_ns) in [
        ("vm.swappiness", None),
        ("net.ipv4.ip_forward", Some("network")),
    ] {
        b.edit(|s| {
            s["linux"]["sysctl"] = json!({ sysctl: "1" });
            if let Some(ns) = drop_ns {
                remove_namespace(s, ns);
            }
        });
        let id = unique("badsysctl");
        let out = run_clean(&rt, &b, &id);
        assert!(!out.status.success(), "{sysctl} accepted");
        assert!(!stdout(&out).contains("should-not-run"));
        assert!(
            stderr(&out).contains(sysctl),
            "error does not name {sysctl}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_dir(&rt.root).unwrap().count(),
            0,
            "something left under the state root"
        );
    }
}
