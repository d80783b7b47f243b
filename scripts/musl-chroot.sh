#!/bin/sh
# Runs a command in a musl root, as on Alpine: `musl-chroot.sh ROOT DIRS COMMAND...` mounts /proc, /dev, a
# fresh /tmp and each of DIRS (colon-separated, each at the same path) into ROOT, in a mount namespace of
# its own (nothing outside changes), then runs COMMAND there with chroot. The process keeps its pid through
# each exec, so a test can signal it.
set -e
root=$1
dirs=$2
shift 2
exec unshare -m sh -c '
  set -e  # a mount that fails must not leave a root to chroot into without it
  root=$1; dirs=$2; shift 2
  mount --bind /proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"
  IFS=:
  for dir in $dirs; do
    mkdir -p "$root$dir"
    mount --bind "$dir" "$root$dir"
  done
  unset IFS
  exec chroot "$root" "$@"
' musl-chroot "$root" "$dirs" "$@"
