#!/usr/bin/env bash
# Push and pull: berthd against real Docker (Debian's docker.io) on this machine, side by
# side in one run, with the same registry (Debian's `docker-registry`, distribution 2.8,
# plain HTTP on 127.0.0.1, filesystem storage under the temp dir):
#
#   images   100 MB in 5 layers and 500 MB in 20 layers of random (incompressible)
#            bytes, one file per layer, made here as a docker-archive and `docker load`ed
#            into both daemons, so both hold the very same layers (same diff ids, same
#            image id)
#   push     cold: the image just loaded (no compressed blob of it anywhere), the
#            registry's storage empty (the registry is restarted on a wiped storage
#            before each round, so no blob can be skipped or mounted)
#   pull     cold: the image and its layers removed from the daemon; both daemons pull
#            the same blobs (the ones dockerd pushed)
#   re-pull  every layer present: the image kept under another tag, the pulled tag
#            removed, pulled again (manifest + config, "Already exists" per layer)
#   ceiling  the same bytes through loopback from the same registry (curl of every
#            layer blob to /dev/null, one after the other) and through the disk
#            (dd of the layer bytes into a file under the temp dir, conv=fsync)
#
#   bench/registry.sh [--runs N] [--no-build]     (RUNS=3, the medians are reported)
#
# The docker CLI is the client for both daemons. Timing: bash's $EPOCHREALTIME around a
# fork+exec+wait of the CLI. Rounds alternate which daemon goes first. Nothing leaves
# 127.0.0.1. Everything started is removed on exit, also on failure (bench/lib.sh):
# daemons, shims, the registry, mounts, the temp dir. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "the benchmark needs root" >&2; exit 1; }
[ -x /usr/bin/docker-registry ] || { echo "apt-get install docker-registry" >&2; exit 1; }

. bench/lib.sh
build_release "$BUILD"
ensure_docker

DSOCK=/run/bench-docker.sock
WORK=$(mktemp -d /tmp/ber.XXXXXX)
chmod 755 "$WORK"
BSOCK=$WORK/b/x/berthd.sock
BHOST=unix://$BSOCK
DHOST=unix://$DSOCK
REG_PID=
bench_init

bench_cleanup_hook() { stop_pid "$REG_PID" 5; }

# The images: NAME MB LAYERS.
IMAGES=("img100 100 5" "img500 500 20")

REG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$REG_PORT

start_registry() { # on an empty storage
  stop_pid "$REG_PID" 5
  REG_PID=
  rm -rf "$WORK/reg"
  mkdir -p "$WORK/reg/storage"
  cat >"$WORK/reg/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/reg/storage
http:
  addr: $REG
YML
  /usr/bin/docker-registry serve "$WORK/reg/config.yml" </dev/null >"$WORK/registry.log" 2>&1 &
  REG_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://$REG/v2/" >/dev/null && return 0
    alive "$REG_PID" || { echo "registry exited: $(tail "$WORK/registry.log")" >&2; exit 1; }
    sleep 0.1
  done
  echo "registry did not come up" >&2
  exit 1
}

# make_archive NAME MB LAYERS: a docker-archive of random layers; prints the image id.
make_archive() {
  python3 - "$WORK/gen/$1" "$1" "$2" "$3" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, name, mb, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
per = mb * 1000 * 1000 // n

class Rand(io.RawIOBase):
    def __init__(self, size): self.left = size
    def read(self, k=-1):
        k = self.left if k < 0 else min(k, self.left)
        self.left -= k
        return os.urandom(k)

diff_ids, layers = [], []
for i in range(n):
    tmp = f"{out}/layer{i}.tar"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo("data"); d.type = tarfile.DIRTYPE; d.mode = 0o755; d.mtime = 0
        t.addfile(d)
        f = tarfile.TarInfo(f"data/{name}-{i}"); f.size = per; f.mode = 0o644; f.mtime = 0
        t.addfile(f, Rand(per))
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""): h.update(b)
    os.makedirs(f"{out}/{h.hexdigest()}", exist_ok=True)
    os.rename(tmp, f"{out}/{h.hexdigest()}/layer.tar")
    diff_ids.append("sha256:" + h.hexdigest()); layers.append(f"{h.hexdigest()}/layer.tar")
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                  "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diff_ids]},
                 separators=(",", ":")).encode()
cid = hashlib.sha256(cfg).hexdigest()
open(f"{out}/{cid}.json", "wb").write(cfg)
json.dump([{"Config": f"{cid}.json", "RepoTags": [f"bench/{name}:latest"], "Layers": layers}],
          open(f"{out}/manifest.json", "w"))
print("sha256:" + cid)
PY
}

fail() { echo "$1 failed: $(cat "$WORK/err")" >&2; exit 1; }

host_of() { case $1 in berth) echo "$BHOST" ;; docker) echo "$DHOST" ;; esac; }
dk() { local h; h=$(host_of "$1"); shift; "$DOCKER" -H "$h" "$@"; }

timed() { # timed FILE WHAT CMD...: appends seconds to FILE
  local f=$1 what=$2 t0 t1
  shift 2
  t0=$EPOCHREALTIME
  "$@" </dev/null >/dev/null 2>"$WORK/err" || fail "$what"
  t1=$EPOCHREALTIME
  echo "$(((${t1/./} - ${t0/./})))" >>"$WORK/t/$f"
}

rmi_all() { # rmi_all DAEMON: every image
  local ids
  ids=$(dk "$1" images -aq 2>/dev/null | sort -u)
  [ -z "$ids" ] || dk "$1" rmi -f $ids >/dev/null 2>&1 || true
}

check_id() { # check_id DAEMON REF ID
  local got
  got=$(dk "$1" image inspect -f '{{.Id}}' "$2" 2>/dev/null) || { echo "$1: $2 missing" >&2; exit 1; }
  [ "$got" = "$3" ] || { echo "$1: $2 is $got, not $3" >&2; exit 1; }
}

echo "starting berthd, dockerd and the registry on $REG..." >&2
start_berthd
start_dockerd
mkdir -p "$WORK/t" "$WORK/gen"
declare -A ID
for spec in "${IMAGES[@]}"; do
  read -r name mb n <<<"$spec"
  echo "making $name ($mb MB, $n layers)..." >&2
  ID[$name]=$(make_archive "$name" "$mb" "$n")
  (cd "$WORK/gen/$name" && tar -cf "$WORK/gen/$name.tar" manifest.json "${ID[$name]#sha256:}.json" */layer.tar)
done

for ((round = 0; round < RUNS; round++)); do
  if ((round % 2)); then order=(docker berth); else order=(berth docker); fi
  start_registry
  for spec in "${IMAGES[@]}"; do
    read -r name mb n <<<"$spec"
    echo "round $((round + 1))/$RUNS: $name (${order[*]})..." >&2
    for d in "${order[@]}"; do
      rmi_all "$d"
      dk "$d" load -i "$WORK/gen/$name.tar" >/dev/null 2>"$WORK/err" || fail "$d load"
      check_id "$d" "bench/$name" "${ID[$name]}"
      dk "$d" tag "bench/$name" "$REG/bench/$name-$d"
      timed "push-$name-$d" "$d push" dk "$d" push "$REG/bench/$name-$d"
    done
    for d in "${order[@]}"; do # cold pull: the same blobs for both (dockerd's push)
      rmi_all "$d"
      timed "pull-$name-$d" "$d pull" dk "$d" pull "$REG/bench/$name-docker"
      check_id "$d" "$REG/bench/$name-docker" "${ID[$name]}"
    done
    for d in "${order[@]}"; do # re-pull, every layer present
      dk "$d" tag "$REG/bench/$name-docker" keep/$name
      dk "$d" rmi "$REG/bench/$name-docker" >/dev/null
      timed "repull-$name-$d" "$d re-pull" dk "$d" pull "$REG/bench/$name-docker"
      check_id "$d" "$REG/bench/$name-docker" "${ID[$name]}"
      rmi_all "$d"
    done
  done
done

# Ceilings, on the blobs of the last round's registry.
for spec in "${IMAGES[@]}"; do
  read -r name mb n <<<"$spec"
  blobs=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/bench/$name-docker/manifests/latest" |
    python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["layers"]))')
  for ((round = 0; round < RUNS; round++)); do
    t0=$EPOCHREALTIME
    for b in $blobs; do curl -sf -o /dev/null "http://$REG/v2/bench/$name-docker/blobs/$b"; done
    t1=$EPOCHREALTIME
    echo "$(((${t1/./} - ${t0/./})))" >>"$WORK/t/loop-$name"
    sync
    t0=$EPOCHREALTIME
    cat "$WORK"/gen/"$name"/*/layer.tar | dd of="$WORK/ddout" bs=1M conv=fsync status=none
    t1=$EPOCHREALTIME
    echo "$(((${t1/./} - ${t0/./})))" >>"$WORK/t/disk-$name"
    rm -f "$WORK/ddout"
  done
done

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, kernel $(uname -r)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each, medians"
versions_line
echo "# registry: $(/usr/bin/docker-registry --version 2>/dev/null | head -1)"
python3 - "$WORK" "${IMAGES[@]}" <<'PY'
import statistics, sys
work, images = sys.argv[1], [s.split() for s in sys.argv[2:]]
def med(f):
    return statistics.median(int(l) / 1e6 for l in open(f"{work}/t/{f}"))
print("\n| image | operation | berth s | MB/s | Docker s | MB/s | speed berth/Docker | target ≥ 2x |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for name, mb, n in images:
    mb = int(mb)
    for op, label in (("push", "push, cold"), ("pull", "pull, cold"),
                      ("repull", "re-pull, layers present")):
        b, d = med(f"{op}-{name}-berth"), med(f"{op}-{name}-docker")
        tgt = "" if op == "repull" else ("met" if d / b >= 2 else "**not met**")
        print(f"| {mb} MB / {n} layers | {label} | {b:.2f} | {mb / b:.0f} | {d:.2f} "
              f"| {mb / d:.0f} | {d / b:.1f}x | {tgt} |")
print("\n| image | ceiling | s | MB/s |")
print("|---|---|---:|---:|")
for name, mb, n in images:
    mb = int(mb)
    for k, label in (("loop", "loopback: curl of every blob from the registry > /dev/null"),
                     ("disk", "disk: dd of the layer bytes, conv=fsync")):
        t = med(f"{k}-{name}")
        print(f"| {mb} MB / {n} layers | {label} | {t:.2f} | {mb / t:.0f} |")
PY
