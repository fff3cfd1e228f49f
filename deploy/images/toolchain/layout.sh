#!/bin/sh
# The file layout every sandbox image shares, run inside the image's root (argument: that root).
# The docker driver mounts ONE size-limited tmpfs at /work; /tmp, /out (the compiler's output) and
# /program (the compiled program) point into it, so the workspace limit counts them together, as
# the bubblewrap driver's single tmpfs does. A course image built FROM this one inherits it.
set -eu
root="${1:-/}"
mkdir -p "$root/work"
for dir in tmp out program; do
  rm -rf "${root:?}/$dir"
  ln -s "work/.$dir" "$root/$dir"
done
# The sandbox user has no account, and a program finds no account data to read: no passwd, group or
# shadow files (as in the bubblewrap sandbox, which shows no /etc at all). Docker needs none for a
# numeric User.
rm -f "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow" "$root"/etc/passwd- "$root"/etc/group- "$root"/etc/shadow- "$root"/etc/gshadow-
echo "osbyexample-toolchain" > "$root/etc/osbyexample-image"
