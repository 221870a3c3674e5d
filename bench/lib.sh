# Shared by the bench scripts (sourced, not run): private daemons on a temp dir and the
# cleanup of everything they start, also on failure.
#
# The sourcing script sets, before calling anything here:
#   REL     the release binaries (berthd, berth)
#   DOCKER  the docker CLI
#   WORK    its temp dir (short path: berth-shim's socket is <exec-root>/shims/<64 hex>.sock)
#   BSOCK/BHOST, DSOCK/DHOST   the daemons' sockets and -H values
# and calls `bench_init` (after WORK exists), which installs the EXIT trap. A script may
# define `bench_cleanup_hook` to stop its own extra processes first (a registry, say).

BERTHD_PID=
DOCKERD_PID=
CONTAINERD_PID=
DSOCK_OURS=
OUTSIDE=()

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# pids of processes whose command line mentions our temp dir (shims, runtimes).
ours() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$WORK" && echo "${p#/proc/}"
  done
  true
}

stop_pid() { # stop_pid PID SECONDS: SIGTERM, wait, SIGKILL
  local pid=$1 i
  alive "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? ids p m d
  set +e
  trap - EXIT INT TERM
  declare -F bench_cleanup_hook >/dev/null && bench_cleanup_hook
  if alive "$BERTHD_PID"; then
    ids=$("$DOCKER" -H "$BHOST" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" -H "$BHOST" rm -f $ids >/dev/null 2>&1
  fi
  if alive "$DOCKERD_PID"; then
    ids=$("$DOCKER" -H "$DHOST" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" -H "$DHOST" rm -f $ids >/dev/null 2>&1
  fi
  stop_pid "$BERTHD_PID" 5
  stop_pid "$DOCKERD_PID" 20 # dockerd stops its containerd on the way out
  stop_pid "$CONTAINERD_PID" 5
  # Shims (they outlive their daemons) and anything else still running from our dirs.
  for p in $(ours); do [ "$p" != $$ ] && kill -9 "$p" 2>/dev/null; done
  for m in $(awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "$WORK"
  [ -n "$DSOCK_OURS" ] && rm -f "$DSOCK"
  for d in "${OUTSIDE[@]}"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  exit "$rc"
}

bench_init() {
  local d
  # Directories dockerd/containerd make outside their roots: removed at the end (rmdir,
  # so only when empty) if they are not there now.
  OUTSIDE=()
  for d in /sys/fs/cgroup/*/; do
    [ -d "$d/docker" ] || OUTSIDE+=("${d%/}/docker")
  done
  for d in /run/containerd/s /run/containerd /run/docker/plugins /run/docker; do
    [ -e "$d" ] || OUTSIDE+=("$d")
  done
  export DOCKER_CONFIG=$WORK/docker-config # the CLIs' config: not ~/.docker
  mkdir -p "$DOCKER_CONFIG"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# wait_ready HOST LOG PID WHAT: until the daemon answers /_ping through the docker CLI.
wait_ready() {
  local i
  for ((i = 0; i < 300; i++)); do
    "$DOCKER" -H "$1" version >/dev/null 2>&1 && return 0
    alive "$3" || { echo "$4 exited: $(tail -20 "$2")" >&2; exit 1; }
    sleep 0.1
  done
  echo "$4 did not come up: $(tail -20 "$2")" >&2
  exit 1
}

# start_berthd: berthd on $BHOST with its data and exec roots under $WORK/b.
start_berthd() {
  mkdir -p "$WORK/b"
  echo '{}' >"$WORK/b/daemon.json"
  "$REL/berthd" -H "$BHOST" --data-root "$WORK/b/data" --exec-root "$WORK/b/x" \
    --config-file "$WORK/b/daemon.json" </dev/null >"$WORK/berthd.log" 2>&1 &
  BERTHD_PID=$!
  wait_ready "$BHOST" "$WORK/berthd.log" "$BERTHD_PID" berthd
}

# start_dockerd: dockerd on $DHOST, data and exec roots under $WORK/d, no iptables, no
# bridge, no ip forwarding; containerd is its own child.
start_dockerd() {
  [ -e "$DSOCK" ] && { echo "$DSOCK exists: another bench running?" >&2; exit 1; }
  mkdir -p "$WORK/d"
  # The libtrust key goes under the temp dir too (dockerd 20.10 writes /etc/docker/key.json
  # otherwise).
  echo "{\"deprecated-key-path\": \"$WORK/d/key.json\"}" >"$WORK/d/daemon.json"
  DSOCK_OURS=1
  dockerd --data-root "$WORK/d/data" --exec-root "$WORK/d/x" \
    --pidfile "$WORK/d/dockerd.pid" --config-file "$WORK/d/daemon.json" \
    --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
    -H "$DHOST" </dev/null >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  wait_ready "$DHOST" "$WORK/dockerd.log" "$DOCKERD_PID" dockerd
  CONTAINERD_PID=$(pgrep -P "$DOCKERD_PID" -x containerd || true)
  [ -n "$CONTAINERD_PID" ] || { echo "no containerd under dockerd" >&2; exit 1; }
}

# ensure_docker: installs Debian's docker.io when dockerd is missing; sets DOCKER.
ensure_docker() {
  if ! command -v dockerd >/dev/null; then
    echo "dockerd not installed: apt-get install -y docker.io" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  DOCKER=$(command -v docker) || { echo "no docker CLI" >&2; exit 1; }
}

# build_release: the release binaries into $CARGO_TARGET_DIR (default
# /var/cache/berth-target); sets REL.
build_release() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/berth-target}
  if [ "${1:-1}" = 1 ]; then
    echo "building berth (release)..." >&2
    cargo build --release -q --workspace --bins
  fi
  REL=$CARGO_TARGET_DIR/release
}

# versions_line: berth's commit and the Docker component versions, as a comment line.
versions_line() {
  echo "# berth $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' + working tree') (release);" \
    "docker CLI $("$DOCKER" --version | sed 's/^Docker version //; s/,.*//');" \
    "dockerd $(dockerd --version | sed 's/^Docker version //; s/,.*//');" \
    "$(containerd --version | awk '{print "containerd " $3}'); $(runc --version | head -1)"
}
