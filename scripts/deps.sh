#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian 12, only what is missing.
set -euo pipefail
need=()
for pkg in busybox-static runc iproute2 procps curl gcc libc6-dev python3 python3-venv docker-registry apache2-utils openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# The e2e tests drive berthd with the stock docker CLI; Debian's docker.io has one.
command -v docker >/dev/null || need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
# docker-py, for tests/python/test_docker_py.py (run by tests/tests/docker_py.rs).
venv=${BERTH_VENV:-/var/cache/berth-venv}
if ! "$venv/bin/python3" -c 'import docker' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'docker>=7,<8'
fi
