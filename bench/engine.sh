#!/usr/bin/env bash
# berth (berthd + berth CLI) against real Docker (Debian's docker.io: dockerd, containerd,
# containerd-shim-runc-v2, runc) on this machine, side by side in one run:
#
#   1. start: `berth run --rm busybox true` and `docker run --rm --network none busybox
#      true` against berthd, `docker run --rm --network none busybox true` against dockerd
#      (interleaved, $RUNS runs each after $WARMUP warm-up rounds)
#   2. idle RSS: berthd against dockerd + containerd, one image loaded, a few seconds idle
#   3. shim RSS of a running container (`sleep 300`): berth-shim against
#      containerd-shim-runc-v2
#   4. logs: a container writing 100 MB to stdout: `run -d` + `wait`, then `logs` to
#      /dev/null ($LOG_RUNS rounds, interleaved), as MB/s
#
#   bench/engine.sh [--runs N] [--log-runs N]    the comparison (RUNS=15, LOG_RUNS=3)
#                   [--no-build]                 (use the release binaries as they are)
#   bench/engine.sh --breakdown                  where `run --rm busybox true` goes on
#                                                berthd: BERTH_TRACE marks of berthd,
#                                                berth-shim and the runtime, per phase
#
# Both daemons are started by the script on private state under a temp dir (berthd: its
# own socket, data and exec roots; dockerd: --data-root/--exec-root under the temp dir,
# socket /run/bench-docker.sock, no iptables, no bridge, no ip forwarding; containerd is
# dockerd's own child). The busybox fixture is `docker import`ed into both. Nothing
# leaves loopback: no pulls, containers use `--network none` (berth has no network yet).
# Everything started is removed on exit, also on failure: containers, shims, daemons,
# mounts under the temp dir, the temp dir, the socket, and the directories that dockerd
# and containerd create outside it (/run/containerd/s, /run/docker/plugins, the `docker`
# cgroup parents) when they did not exist before.
# Timing: bash's $EPOCHREALTIME around a fork+exec+wait of the CLI. Needs root. Builds the
# release binaries first ($CARGO_TARGET_DIR, default /var/cache/berth-target).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-15}
WARMUP=${WARMUP:-2}
LOG_RUNS=${LOG_RUNS:-3}
LOG_BYTES=100000000
IDLE_SECS=${IDLE_SECS:-5}
MODE=compare
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --log-runs) LOG_RUNS=$2; shift 2 ;;
    --log-runs=*) LOG_RUNS=${1#--log-runs=}; shift ;;
    --breakdown) MODE=breakdown; shift ;;
    --no-build) BUILD=; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "the benchmark needs root" >&2; exit 1; }

. bench/lib.sh
build_release "${BUILD:-0}"
ROOTFS=$(./scripts/fixtures.sh)

[ "$MODE" = compare ] && ensure_docker
DOCKER=$(command -v docker) || { echo "no docker CLI" >&2; exit 1; }

DSOCK=/run/bench-docker.sock
# Short paths: berth-shim's socket is <exec-root>/shims/<64 hex>.sock, under SUN_LEN.
WORK=$(mktemp -d /tmp/beb.XXXXXX)
chmod 755 "$WORK"
BSOCK=$WORK/b/x/berthd.sock
BHOST=unix://$BSOCK
DHOST=unix://$DSOCK
bench_init

start_berthd_busybox() {
  start_berthd
  tar -C "$ROOTFS" -c . | "$DOCKER" -H "$BHOST" import - busybox >/dev/null
}

start_dockerd_busybox() {
  start_dockerd
  tar -C "$ROOTFS" -c . | "$DOCKER" -H "$DHOST" import - busybox >/dev/null
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# The three clients: berth CLI and docker CLI against berthd, docker CLI against dockerd.
CLIENTS=(berth docker@berthd docker@dockerd)
cli() { # cli CLIENT ARGS...
  local c=$1
  shift
  case $c in
    berth) "$REL/berth" -H "$BHOST" "$@" ;;
    docker@berthd) "$DOCKER" -H "$BHOST" "$@" ;;
    docker@dockerd) "$DOCKER" -H "$DHOST" "$@" ;;
  esac
}
net_none() { [ "$1" = berth ] || echo --network=none; } # berth run as in the brief

fail() { echo "$1 failed (exit $2): $(cat "$WORK/err")" >&2; exit 1; }

start_one() { # start_one CLIENT: prints µs of `run --rm busybox true`
  local c=$1 t0 t1 rc=0
  case $c in
    berth)
      t0=$EPOCHREALTIME
      "$REL/berth" -H "$BHOST" run --rm busybox true </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
    docker@berthd)
      t0=$EPOCHREALTIME
      "$DOCKER" -H "$BHOST" run --rm --network none busybox true </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
    docker@dockerd)
      t0=$EPOCHREALTIME
      "$DOCKER" -H "$DHOST" run --rm --network none busybox true </dev/null >/dev/null 2>"$WORK/err" || rc=$?
      t1=$EPOCHREALTIME ;;
  esac
  [ "$rc" = 0 ] || fail "$c run" "$rc"
  echo $((${t1/./} - ${t0/./}))
}

LOGCMD='yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 100000000'
logs_one() { # logs_one CLIENT ROUND: appends µs of run -d + wait, and of logs
  local c=$1 round=$2 t0 t1 t2 t3 id rc=0 n
  t0=$EPOCHREALTIME
  id=$(cli "$c" run -d $(net_none "$c") busybox sh -c "$LOGCMD" </dev/null 2>"$WORK/err") || rc=$?
  [ "$rc" = 0 ] || fail "$c run -d" "$rc"
  cli "$c" wait "$id" </dev/null >/dev/null 2>"$WORK/err" || rc=$?
  t1=$EPOCHREALTIME
  [ "$rc" = 0 ] || fail "$c wait" "$rc"
  t2=$EPOCHREALTIME
  cli "$c" logs "$id" </dev/null >/dev/null 2>"$WORK/err" || rc=$?
  t3=$EPOCHREALTIME
  [ "$rc" = 0 ] || fail "$c logs" "$rc"
  echo $((${t1/./} - ${t0/./})) >>"$WORK/logrun-$c"
  echo $((${t3/./} - ${t2/./})) >>"$WORK/logread-$c"
  if [ "$round" = 0 ]; then # once, untimed: all the bytes are there
    n=$(cli "$c" logs "$id" 2>/dev/null </dev/null | wc -c)
    [ "$n" = "$LOG_BYTES" ] || { echo "$c logs returned $n bytes, not $LOG_BYTES" >&2; exit 1; }
  fi
  cli "$c" rm -f "$id" >/dev/null 2>&1
}

# shim_pid KIND ID: the shim process of container ID
shim_pid() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case $1 in
      berth) [[ $cmd == *berth-shim\ * && $cmd == *"--id $2 "* ]] && { echo "${p#/proc/}"; return; } ;;
      docker) [[ $cmd == *containerd-shim-runc-v2\ * && $cmd == *"-id $2 "* ]] && { echo "${p#/proc/}"; return; } ;;
    esac
  done
  echo "no shim found for $1 container $2" >&2
  exit 1
}

compare() {
  local c i id p
  echo "starting berthd and dockerd..." >&2
  start_berthd_busybox
  start_dockerd_busybox

  # 2. Idle RSS, first: fresh daemons with the busybox image, idle for a while.
  sleep "$IDLE_SECS"
  echo "berthd $(rss_kb "$BERTHD_PID") $(pss_kb "$BERTHD_PID")" >>"$WORK/idle"
  echo "dockerd $(rss_kb "$DOCKERD_PID") $(pss_kb "$DOCKERD_PID")" >>"$WORK/idle"
  echo "containerd $(rss_kb "$CONTAINERD_PID") $(pss_kb "$CONTAINERD_PID")" >>"$WORK/idle"

  # 1. Start.
  echo "start: warming up ($WARMUP rounds), then $RUNS interleaved runs of ${CLIENTS[*]}..." >&2
  for ((i = 0; i < WARMUP; i++)); do
    for c in "${CLIENTS[@]}"; do start_one "$c" >/dev/null; done
  done
  for ((i = 0; i < RUNS; i++)); do
    for c in "${CLIENTS[@]}"; do start_one "$c" >>"$WORK/start-$c"; done
  done

  # 3. Shim RSS: 3 `sleep 300` containers on each engine, each shim read after 2 s.
  echo "shims: 3 running containers each..." >&2
  for i in 1 2 3; do
    id=$(cli berth run -d busybox sleep 300 </dev/null)
    echo "berth $id" >>"$WORK/shim-ids"
    id=$(cli docker@dockerd run -d --network none busybox sleep 300 </dev/null)
    echo "docker $id" >>"$WORK/shim-ids"
  done
  sleep 2
  while read -r c id; do
    p=$(shim_pid "$c" "$id")
    echo "$c $(rss_kb "$p") $(pss_kb "$p")" >>"$WORK/shims"
  done <"$WORK/shim-ids"
  while read -r c id; do
    case $c in
      berth) cli berth rm -f "$id" >/dev/null ;;
      docker) cli docker@dockerd rm -f "$id" >/dev/null ;;
    esac
  done <"$WORK/shim-ids"

  # 4. Logs.
  echo "logs: $LOG_RUNS interleaved rounds of 100 MB per client..." >&2
  for ((i = 0; i < LOG_RUNS; i++)); do
    for c in "${CLIENTS[@]}"; do logs_one "$c" "$i"; done
  done

  # 2b. Idle RSS again after all that.
  sleep "$IDLE_SECS"
  echo "berthd $(rss_kb "$BERTHD_PID") $(pss_kb "$BERTHD_PID")" >>"$WORK/idle-after"
  echo "dockerd $(rss_kb "$DOCKERD_PID") $(pss_kb "$DOCKERD_PID")" >>"$WORK/idle-after"
  echo "containerd $(rss_kb "$CONTAINERD_PID") $(pss_kb "$CONTAINERD_PID")" >>"$WORK/idle-after"

  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, kernel $(uname -r)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  versions_line
  python3 - "$WORK" "$LOG_BYTES" "${CLIENTS[@]}" <<'PY'
import statistics, sys
work, log_bytes, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def load(name):
    return sorted(int(l) / 1000 for l in open(f"{work}/{name}"))  # ms

def stats(xs):
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return dict(n=len(xs), median=statistics.median(xs), mean=statistics.mean(xs),
                min=xs[0], p90=p90, max=xs[-1])

def verdict(ok):
    return "**met**" if ok else "**not met**"

names = {"berth": "`berth run --rm busybox true` → berthd",
         "docker@berthd": "`docker run --rm --network none busybox true` → berthd",
         "docker@dockerd": "`docker run --rm --network none busybox true` → dockerd"}
print("\n## 1. Start: run --rm busybox true\n")
print("| client → daemon | runs | median ms | mean ms | min ms | p90 ms | max ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
st = {c: stats(load(f"start-{c}")) for c in clients}
for c in clients:
    s = st[c]
    print(f"| {names[c]} | {s['n']} | {s['median']:.1f} | {s['mean']:.1f} | {s['min']:.1f} "
          f"| {s['p90']:.1f} | {s['max']:.1f} |")
d = st["docker@dockerd"]["median"]
r1 = st["berth"]["median"] / d
r2 = st["docker@berthd"]["median"] / d
print(f"\nratio berth/docker (medians): berth CLI → berthd {r1:.2f}, "
      f"docker CLI → berthd {r2:.2f}; target ≤ 0.20: {verdict(r1 <= 0.2)} (berth CLI), "
      f"{verdict(r2 <= 0.2)} (docker CLI)")

def rows(fname):
    out = {}
    for l in open(f"{work}/{fname}"):
        k, rss, pss = l.split()
        out.setdefault(k, []).append((int(rss), int(pss)))
    return out

print("\n## 2. Idle RSS (VmRSS; PSS in brackets), busybox image loaded\n")
print("| process | fresh, idle MiB | after the whole bench, idle MiB |")
print("|---|---:|---:|")
a, b = rows("idle"), rows("idle-after")
mib = lambda kb: kb / 1024
for k in ("berthd", "dockerd", "containerd"):
    print(f"| {k} | {mib(a[k][0][0]):.1f} ({mib(a[k][0][1]):.1f}) "
          f"| {mib(b[k][0][0]):.1f} ({mib(b[k][0][1]):.1f}) |")
dk = lambda r, i: r["dockerd"][0][i] + r["containerd"][0][i]
print(f"| dockerd + containerd | {mib(dk(a, 0)):.1f} ({mib(dk(a, 1)):.1f}) "
      f"| {mib(dk(b, 0)):.1f} ({mib(dk(b, 1)):.1f}) |")
print(f"\nratio berthd/(dockerd+containerd): {a['berthd'][0][0] / dk(a, 0):.2f} fresh, "
      f"{b['berthd'][0][0] / dk(b, 0):.2f} after; target berthd < 15 MB (VmRSS): "
      f"{verdict(a['berthd'][0][0] * 1024 < 15e6)} fresh "
      f"({a['berthd'][0][0] * 1024 / 1e6:.1f} MB), "
      f"{verdict(b['berthd'][0][0] * 1024 < 15e6)} after "
      f"({b['berthd'][0][0] * 1024 / 1e6:.1f} MB)")

print("\n## 3. Shim RSS per running container (`sleep 300`, 3 containers each)\n")
print("| shim | VmRSS MiB (each) | median MiB | PSS MiB (median) |")
print("|---|---|---:|---:|")
sh = rows("shims")
med = {}
for k, label in (("berth", "berth-shim"), ("docker", "containerd-shim-runc-v2")):
    rs = [r for r, _ in sh[k]]
    med[k] = statistics.median(rs)
    print(f"| {label} | {', '.join(f'{mib(r):.2f}' for r in rs)} | {mib(med[k]):.2f} "
          f"| {mib(statistics.median(p for _, p in sh[k])):.2f} |")
print(f"\nratio berth-shim/containerd-shim-runc-v2: {med['berth'] / med['docker']:.2f}; "
      f"target < 1.5 MB: {verdict(med['berth'] * 1024 < 1.5e6)} "
      f"({med['berth'] * 1024 / 1e6:.2f} MB)")

print("\n## 4. Logs: 100 MB to stdout (`yes ... | head -c 100000000`)\n")
print("| client → daemon | runs | run -d + wait, median s | MB/s | logs > /dev/null, median s | MB/s |")
print("|---|---:|---:|---:|---:|---:|")
mb = log_bytes / 1e6
lr = {c: statistics.median(load(f"logrun-{c}")) / 1000 for c in clients}
ld = {c: statistics.median(load(f"logread-{c}")) / 1000 for c in clients}
lnames = {"berth": "berth → berthd", "docker@berthd": "docker → berthd",
          "docker@dockerd": "docker → dockerd"}
for c in clients:
    print(f"| {lnames[c]} | {len(load(f'logrun-{c}'))} | {lr[c]:.2f} | {mb / lr[c]:.0f} "
          f"| {ld[c]:.2f} | {mb / ld[c]:.0f} |")
w = lr["docker@dockerd"] / lr["berth"]
r = ld["docker@dockerd"] / ld["berth"]
w2 = lr["docker@dockerd"] / lr["docker@berthd"]
r2 = ld["docker@dockerd"] / ld["docker@berthd"]
print(f"\nthroughput ratio berth/docker: writing (run + wait) {w:.2f}x, reading (logs) {r:.2f}x "
      f"(docker CLI → berthd: {w2:.2f}x, {r2:.2f}x); target ≥ 3x both ways: "
      f"{verdict(w >= 3)} writing, {verdict(r >= 3)} reading")
PY
}

breakdown() {
  # berthd with BERTH_TRACE to a file: berthd, its shims and the runtime append their
  # phase marks there; the launcher reads CLOCK_MONOTONIC around each CLI run.
  echo "starting berthd (BERTH_TRACE)..." >&2
  export BERTH_TRACE=$WORK/trace
  start_berthd_busybox
  unset BERTH_TRACE
  echo "# berthd breakdown, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, kernel $(uname -r)"
  python3 - "$WORK" "$REL/berth" "$DOCKER" "$BHOST" <<'PY'
import statistics, subprocess, sys, time
work, berth, docker, host = sys.argv[1:]
now = lambda: time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
trace = f"{work}/trace"
for name, cmd in (("berth run --rm busybox true", [berth, "-H", host, "run", "--rm", "busybox", "true"]),
                  ("docker run --rm --network none busybox true (against berthd)",
                   [docker, "-H", host, "run", "--rm", "--network", "none", "busybox", "true"])):
    runs = []
    for i in range(18):
        open(trace, "w").close()
        t0 = now()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t1 = now()
        if p.returncode:
            sys.exit(f"{cmd} failed: {p.stderr.decode()}")
        if i < 3:
            continue  # warm-up
        marks = [(0, "CLI spawned (launcher clock)")]
        seen = {}
        for l in open(trace):
            f = l.split(None, 3)
            if len(f) == 4 and f[0] == "berth-trace":
                ph = f[3].strip()
                seen[ph] = seen.get(ph, 0) + 1
                if seen[ph] > 1:
                    ph += f" (#{seen[ph]})"
                marks.append((int(f[1]) - t0, ph))
        marks.append((t1 - t0, "CLI exited (launcher clock)"))
        runs.append(sorted(marks))
    order = [m for _, m in max(runs, key=len)]
    print(f"\n## {name}: phase marks, median of {len(runs)} runs (µs since the CLI's spawn)\n")
    print("| phase | at µs | step µs |")
    print("|---|---:|---:|")
    prev = 0
    for ph in order:
        ats = [t for r in runs for t, n in r if n == ph]
        at = statistics.median(ats)
        print(f"| {ph} | {at:.0f} | {at - prev:.0f} |")
        prev = at
PY
}

case $MODE in
  compare) compare ;;
  breakdown) breakdown ;;
esac
