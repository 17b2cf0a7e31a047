#!/bin/sh
# Stages the build context of deploy/Containerfile from this machine: the binary, the shared
# libraries it links (as `ldd` lists them, at the same paths), the CA certificates, and the
# user and group 65532. No shell or other program goes in.
#
#   deploy/stage-local-image.sh BINARY CONTEXT_DIR
#
# The binary may be a release or a debug build; a copy is stripped of debug information when
# `strip` is installed (the debug build shrinks from hundreds of megabytes to tens).
set -eu
if [ "$#" -ne 2 ]; then
  echo "usage: $0 BINARY CONTEXT_DIR" >&2
  exit 2
fi
bin=$1
ctx=$2
root="$ctx/rootfs"
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$bin" ] || { echo "$0: no binary at $bin" >&2; exit 1; }
[ -f "$certs" ] || { echo "$0: no $certs (install ca-certificates)" >&2; exit 1; }
command -v ldd >/dev/null 2>&1 || { echo "$0: ldd is not installed" >&2; exit 1; }

rm -rf "$root" "$ctx/home" "$ctx/gitops-seal"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$ctx/home/nonroot"
chmod 1777 "$root/tmp"
chmod 0700 "$ctx/home/nonroot"
cp "$bin" "$ctx/gitops-seal"
chmod 0755 "$ctx/gitops-seal"
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug "$ctx/gitops-seal"
fi

# Each library at the path the loader finds it, symbolic links resolved (`cp -L`); the loader
# (no "=>" in ldd's line) too. linux-vdso is the kernel's and has no file.
ldd "$bin" | while read -r first second third _; do
  case "$second" in
    "=>") lib=$third ;;
    *) lib=$first ;;
  esac
  case "$lib" in
    /*) ;;
    *) continue ;;
  esac
  [ -e "$lib" ] || { echo "$0: ldd names $lib, which does not exist" >&2; exit 1; }
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# Debian's loader path is /lib64/ld-linux-x86-64.so.2 while its libraries are under
# /lib/x86_64-linux-gnu; both are the paths ldd printed, so nothing else is needed.

cp -L "$certs" "$root$certs"
# As distroless's :nonroot: uid/gid 65532 "nonroot", home /home/nonroot, no login shell.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
echo "staged $ctx: $(du -sh "$ctx" | cut -f1)"
