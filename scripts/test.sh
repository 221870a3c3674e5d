#!/usr/bin/env bash
# The whole test suite: format, lints, unit and end-to-end tests. Run as root (the tests
# make real namespaces, mounts and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/berth-target}
[ "$(id -u)" = 0 ] || { echo "the tests need root" >&2; exit 1; }
./scripts/deps.sh
export BERTH_FIXTURES=${BERTH_FIXTURES:-/var/cache/berth-fixtures}
./scripts/fixtures.sh >/dev/null
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${BERTH_TEST_THREADS:-4}"
