#!/usr/bin/env bash
# Sets up berth on a fresh Debian 12 machine (as root): builds and installs the binaries,
# starts berthd on /run/berth/berth.sock and runs a container with it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/berth-target}
./scripts/deps.sh
cargo build --release --bins
for b in berthd berth berth-shim berth-init berth-runtime; do
    install -m 0755 "$CARGO_TARGET_DIR/release/$b" "/usr/local/bin/$b"
done
mkdir -p /etc/berth /var/lib/berth /run/berth
sock=/run/berth/berth.sock
export BERTH_HOST=unix://$sock
if ! berth version >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        cat >/etc/systemd/system/berthd.service <<UNIT
[Unit]
Description=berth container engine
After=network.target

[Service]
ExecStart=/usr/local/bin/berthd -H unix://$sock
# Containers outlive the daemon (live restore): only berthd itself is stopped.
KillMode=process
Delegate=yes
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
        systemctl daemon-reload
        systemctl enable --now berthd
    else
        setsid /usr/local/bin/berthd -H "unix://$sock" >>/var/log/berthd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 1 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
fi
# The busybox image, from Debian's busybox-static (no registry needed).
if ! berth image inspect busybox >/dev/null 2>&1; then
    tar -C "$(./scripts/fixtures.sh)" --exclude=./.complete -c . | berth import - busybox
fi
berth run --rm busybox sh -c 'echo "hello from a berth container: $(hostname)"'
echo "berthd listens on $sock: DOCKER_HOST=unix://$sock docker ps"
