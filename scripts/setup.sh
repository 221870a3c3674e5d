#!/usr/bin/env bash
# Sets up berth on a fresh Debian 12 machine (as root) and runs a container with it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/berth-target}
./scripts/deps.sh
cargo build --release --bins
install -m 0755 "$CARGO_TARGET_DIR/release/berth-runtime" /usr/local/bin/berth-runtime
install -m 0755 "$CARGO_TARGET_DIR/release/berth-init" /usr/local/bin/berth-init
rootfs=$(./scripts/fixtures.sh)
bundle=$(mktemp -d /tmp/berth-hello.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
cp -a "$rootfs" "$bundle/rootfs"
(cd "$bundle" && berth-runtime spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from a berth container: $(hostname), pid $$"/' "$bundle/config.json"
berth-runtime run -b "$bundle" "hello-$$"
