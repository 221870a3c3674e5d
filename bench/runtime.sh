#!/usr/bin/env bash
# Container start-to-exit time: `berth-runtime run` against `runc run` (and crun when
# installed) on the busybox bundle, process `true`, terminal false, the default `spec`
# config otherwise.
#
#   bench/runtime.sh [--runs N]       side-by-side timing, N runs per runtime (default 40,
#                                     or $RUNS); runs are interleaved (berth, runc, crun,
#                                     berth, ...) so machine noise hits all alike
#   bench/runtime.sh --breakdown      where berth-runtime's time goes: its BERTH_TRACE
#                                     phase marks (when the binary has them) and an
#                                     `strace -f -ttt` of one run, summarised per phase
#
# Each run is timed in bash with $EPOCHREALTIME around a fork+exec+wait of the runtime
# (no extra processes inside the timed window). Every run uses a fresh container id; each
# runtime gets a private --root under /run; everything is removed on exit.
# Needs root. Builds berth-runtime in release mode first ($CARGO_TARGET_DIR, default
# /var/cache/berth-target).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-40}
WARMUP=${WARMUP:-3}
MODE=compare
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --breakdown) MODE=breakdown; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "the benchmark needs root" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/berth-target}
echo "building berth-runtime (release)..." >&2
cargo build --release -q -p berth-runtime-cli
BERTH=$CARGO_TARGET_DIR/release/berth-runtime
RUNC=$(command -v runc || true)
CRUN=$(command -v crun || true)
if [ -z "$CRUN" ] && [ "$MODE" = compare ]; then
  echo "crun not installed; trying apt-get install -y crun" >&2
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crun >/dev/null 2>&1; then
    CRUN=$(command -v crun || true)
  fi
  [ -n "$CRUN" ] || echo "crun could not be installed: skipping crun" >&2
fi
ROOTFS=$(./scripts/fixtures.sh)

WORK=$(mktemp -d /run/berth-bench.XXXXXX)
cleanup() {
  local rt root id
  for rt in berth runc crun; do
    root=$WORK/root-$rt
    [ -d "$root" ] || continue
    for id in $(ls "$root" 2>/dev/null); do
      case $rt in
        berth) "$BERTH" --root "$root" delete --force "$id" >/dev/null 2>&1 || true ;;
        runc) "$RUNC" --root "$root" delete --force "$id" >/dev/null 2>&1 || true ;;
        crun) unshare -m sh -c 'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' \
                sh "$CRUN" --root "$root" delete --force "$id" >/dev/null 2>&1 || true ;;
      esac
    done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The bundle: a copy of the busybox rootfs and berth-runtime's default spec, with
# terminal off and `true` as the process.
B=$WORK/bundle
mkdir -p "$B" "$WORK/root-berth" "$WORK/root-runc" "$WORK/root-crun"
cp -a "$ROOTFS" "$B/rootfs"
"$BERTH" spec -b "$B"
python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["true"]
json.dump(s, open(p, "w"), indent=2)
PY

SEQ=0
# run_one RUNTIME: one container start-to-exit, prints elapsed microseconds.
run_one() {
  local rt=$1 id t0 t1 rc=0
  SEQ=$((SEQ + 1))
  id=bench-$$-$rt-$SEQ
  case $rt in
    berth)
      t0=$EPOCHREALTIME
      "$BERTH" --root "$WORK/root-berth" run -b "$B" "$id" </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
    runc)
      t0=$EPOCHREALTIME
      "$RUNC" --root "$WORK/root-runc" run -b "$B" "$id" </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
    crun)
      # crun 1.8 refuses the hybrid cgroup layout: hide the cgroup2 mount in a private
      # mount namespace. The wrapper's own cost is measured separately (crun-wrapper).
      t0=$EPOCHREALTIME
      unshare -m sh -c 'umount -l /sys/fs/cgroup/unified; exec "$@"' sh \
        "$CRUN" --root "$WORK/root-crun" run -b "$B" "$id" </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
    crun-wrapper)
      t0=$EPOCHREALTIME
      unshare -m sh -c 'umount -l /sys/fs/cgroup/unified; exec "$@"' sh true \
        </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
  esac
  if [ "$rc" != 0 ]; then
    echo "$rt run failed (exit $rc): $(cat "$WORK/err")" >&2
    exit 1
  fi
  echo $(( (${t1/./} - ${t0/./}) ))
}

compare() {
  local rts=(berth runc) rt i
  [ -n "$RUNC" ] || { echo "runc is not installed" >&2; exit 1; }
  [ -n "$CRUN" ] && rts+=(crun crun-wrapper)
  echo "warming up ($WARMUP runs each)..." >&2
  for ((i = 0; i < WARMUP; i++)); do
    for rt in "${rts[@]}"; do run_one "$rt" >/dev/null; done
  done
  echo "timing $RUNS runs each of: ${rts[*]} (interleaved)..." >&2
  for ((i = 0; i < RUNS; i++)); do
    for rt in "${rts[@]}"; do run_one "$rt" >>"$WORK/times-$rt"; done
  done
  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, kernel $(uname -r)"
  echo "# berth-runtime $(git rev-parse --short HEAD 2>/dev/null || echo '?') (release)," \
    "$("$RUNC" --version | head -1)${CRUN:+, $("$CRUN" --version | head -1)}"
  python3 - "$WORK" "${rts[@]}" <<'PY'
import statistics, sys
work, rts = sys.argv[1], sys.argv[2:]
stats = {}
for rt in rts:
    xs = sorted(int(l) / 1000 for l in open(f"{work}/times-{rt}"))
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    stats[rt] = dict(n=len(xs), median=statistics.median(xs), mean=statistics.mean(xs),
                     min=xs[0], p90=p90, max=xs[-1], sd=statistics.pstdev(xs))
names = {"berth": "berth-runtime run", "runc": "runc run", "crun": "crun run (in unshare -m wrapper)",
         "crun-wrapper": "crun wrapper alone (unshare -m sh -c 'umount; exec true')"}
print("| runtime | runs | median ms | mean ms | min ms | p90 ms | max ms | stddev ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for rt in rts:
    s = stats[rt]
    print(f"| {names[rt]} | {s['n']} | {s['median']:.2f} | {s['mean']:.2f} | {s['min']:.2f} "
          f"| {s['p90']:.2f} | {s['max']:.2f} | {s['sd']:.2f} |")
b, r = stats["berth"], stats["runc"]
print()
print(f"berth/runc ratio: median {b['median'] / r['median']:.2f}, mean {b['mean'] / r['mean']:.2f}, "
      f"min {b['min'] / r['min']:.2f} (target: <= 0.50)")
if "crun" in stats:
    c = stats["crun"]["median"] - stats["crun-wrapper"]["median"]
    print(f"crun median minus its wrapper: {c:.2f} ms; berth/crun(net) ratio {b['median'] / c:.2f}")
PY
}

breakdown() {
  local id out
  echo "# berth-runtime breakdown, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, kernel $(uname -r)"
  for i in 1 2 3; do run_one berth >/dev/null; done # warm caches
  # 1. The runtime's own phase marks (BERTH_TRACE, CLOCK_MONOTONIC µs on stderr), with
  # the launcher's own clock read just before the spawn and just after the wait, median
  # over several runs.
  python3 - "$BERTH" "$WORK" "$B" "$$" <<'PY'
import statistics, subprocess, sys, time, os
berth, work, bundle, tag = sys.argv[1:]
now = lambda: time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
env = dict(os.environ, BERTH_TRACE="1")
runs = []
for i in range(15):
    cmd = [berth, "--root", f"{work}/root-berth", "run", "-b", bundle, f"bench-{tag}-trace-{i}"]
    t0 = now()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    t1 = now()
    if p.returncode != 0:
        sys.exit(f"berth-runtime run failed: {p.stderr.decode()}")
    marks = [(t0, "spawn (launcher clock)")]
    for l in p.stderr.decode().splitlines():
        f = l.split(None, 3)
        if len(f) == 4 and f[0] == "berth-trace":
            name = f[3].strip()
            if any(n == name for _, n in marks):
                name += " (again, after the re-exec)"
            marks.append((int(f[1]), name))
    marks.append((t1, "run returned (launcher clock)"))
    runs.append(marks)
if all(len(r) == 2 for r in runs):
    print("(this berth-runtime has no BERTH_TRACE marks)\n")
    sys.exit(0)
order = [m for _, m in max(runs, key=len)]
print(f"## BERTH_TRACE phase marks (median of {len(runs)} runs, µs since the spawn)")
print()
print("| phase | at µs | step µs |")
print("|---|---:|---:|")
prev = 0
for name in order:
    ats = [t - r[0][0] for r in runs for t, n in r if n == name]
    at = statistics.median(ats)
    print(f"| {name} | {at:.0f} | {at - prev:.0f} |")
    prev = at
print()
PY
  # 2. strace of one run. ptrace makes every syscall slower, so absolute times are
  # inflated; the split between phases is what matters.
  if ! command -v strace >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
  fi
  for i in $(seq 1 "${STRACE_RUNS:-7}"); do
    id=bench-$$-strace-$i
    strace -f -ttt -y -q -o "$WORK/strace-$i" \
      -e trace=process,unshare,setns,mount,umount2,pivot_root,seccomp,mkdir,mkdirat,write,openat,mknodat,symlinkat,chdir,sethostname,prctl,close_range,memfd_create,sendfile,copy_file_range,bpf \
      "$BERTH" --root "$WORK/root-berth" run -b "$B" "$id" </dev/null >/dev/null
  done
  [ -n "${KEEP_STRACE:-}" ] && cp "$WORK"/strace-* "$KEEP_STRACE"/
  python3 - "$WORK"/strace-* <<'PY'
import collections, re, statistics, sys

def analyse(path):
    """[(phase, ms since berth-runtime's execve, pid, syscall)] and syscall counts."""
    ev = []
    for l in open(path):
        m = re.match(r"(\d+) (\d+\.\d+) (.*)", l.rstrip("\n"))
        if m:
            ev.append((int(m[1]), float(m[2]), m[3]))
    if not ev:
        return None
    main, t0 = ev[0][0], ev[0][1]

    def first(pred):
        return next((e for e in ev if pred(e[0], e[2])), None)

    is_fork = lambda s: re.match(r"(clone3?|fork|vfork)\(", s) and "CLONE_THREAD" not in s
    child = lambda e: e and int(re.search(r"= (\d+)", e[2])[1])
    out = []

    def add(name, e):
        if e:
            out.append((name, (e[1] - t0) * 1000, e[0], e[2][:80]))

    add("execve berth-runtime", ev[0])
    add("protect the binary: unshare(CLONE_NEWNS) + ro bind of itself",
        first(lambda p, s: p == main and s.startswith("unshare(")))
    reexec = [e for e in ev if e[0] == main and e[2].startswith("execve(")]
    add("re-exec from the read-only binary", reexec[1] if len(reexec) > 1 else None)
    add("first cgroup write", first(lambda p, s: s.startswith("write(") and "/sys/fs/cgroup" in s))
    fork1 = first(lambda p, s: p == main and is_fork(s))
    add("fork of the chain (P -> I)", fork1)
    ipid = child(fork1)
    add("unshare of the container namespaces (I)",
        first(lambda p, s: p == ipid and s.startswith("unshare(")))
    fork2 = first(lambda p, s: p == ipid and is_fork(s))
    add("fork of the container process (I -> C)", fork2)
    cpid = child(fork2)
    add("first container mount (C)", first(lambda p, s: p == cpid and s.startswith("mount(")))
    add("pivot_root", first(lambda p, s: s.startswith("pivot_root(")))
    cm = [e for e in ev if e[0] == cpid and e[2].startswith(("mount(", "umount2("))]
    add("last mount/umount (C)", cm[-1] if cm else None)
    add("exec.fifo opened: waits for start (C)",
        first(lambda p, s: p == cpid and "exec.fifo" in s))
    add("seccomp", first(lambda p, s: s.startswith("seccomp(")))
    add("execve of the container program",
        first(lambda p, s: p == cpid and s.startswith("execve(")))
    add("container program exits", first(lambda p, s: p == cpid and s.startswith("+++ exited")))
    add("berth-runtime exits",
        [e for e in ev if e[0] == main and e[2].startswith("+++ exited")][-1])
    out.sort(key=lambda x: x[1])
    cnt = collections.Counter(m[1] for m in (re.match(r"(\w+)\(", e[2]) for e in ev) if m)
    return out, cnt

runs = [r for r in map(analyse, sys.argv[1:]) if r]
print(f"## strace -f -ttt, median of {len(runs)} runs (ptrace inflates every syscall)")
print()
print("| phase | at ms | step ms | syscall (first run) |")
print("|---|---:|---:|---|")
prev = 0.0
for name, _, _, sc in runs[0][0]:
    at = statistics.median(t for r in runs for n, t, _, _ in r[0] if n == name)
    sc = sc.replace("|", "\\|")
    print(f"| {name} | {at:.2f} | {at - prev:.2f} | `{sc}` |")
    prev = at
print()
print("traced syscalls (one run): "
      + ", ".join(f"{k} {v}" for k, v in runs[0][1].most_common()))
PY
}

case $MODE in
  compare) compare ;;
  breakdown) breakdown ;;
esac
