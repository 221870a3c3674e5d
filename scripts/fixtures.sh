#!/usr/bin/env bash
# Builds the test and benchmark fixtures that every issue reuses:
#   $BERTH_FIXTURES/busybox/   a root filesystem with Debian's busybox-static and its applets
# Installs busybox-static when it is missing. Idempotent: an existing rootfs is kept.
set -euo pipefail
FIX=${BERTH_FIXTURES:-/var/cache/berth-fixtures}
ROOTFS="$FIX/busybox"

if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
BB=/bin/busybox

# Bump when the fixture's content changes, so existing caches are rebuilt.
VERSION=2
if [ -x "$ROOTFS/bin/busybox" ] && [ "$(cat "$ROOTFS/.complete" 2>/dev/null)" = "$VERSION" ]; then
  echo "$ROOTFS"
  exit 0
fi
tmp=$(mktemp -d "$FIX.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$FIX"; mktemp -d "$FIX/.tmp.XXXXXX"; })
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home,var,run}
cp "$BB" "$tmp/bin/busybox"
chmod 755 "$tmp/bin/busybox"
for applet in $("$tmp/bin/busybox" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$tmp/bin/$applet"
done
chmod 1777 "$tmp/tmp"
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
nogroup:x:65534:
G
# mktemp made the directory 0700; a container's non-root user must be able to enter /.
chmod 755 "$tmp"
echo "$VERSION" > "$tmp/.complete"
mkdir -p "$FIX"
rm -rf "$ROOTFS"
mv "$tmp" "$ROOTFS"
echo "$ROOTFS"
