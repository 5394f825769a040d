#!/usr/bin/env bash
# scripts/clean-root.sh: the README's two set-up commands in a Debian 12 root that has never
# seen the project: the proof that they work on a fresh machine. Run it before a release.
#
#   bash scripts/clean-root.sh [--source DIR] [--cache DIR] [--work DIR] [--mirror URL]
#                              [--refresh-cache] [--keep] [--target-tmpfs SIZE] [--run COMMAND]...
#
# As root, it
#  1. unpacks a Debian 12 (bookworm) minbase root made by debootstrap into a new directory
#     under --work (default /var/tmp/rampart-clean-root). debootstrap runs once: its root is
#     kept as a tarball under --cache (default /var/cache/rampart-clean-root; --refresh-cache
#     makes it anew), and every run unpacks a fresh copy, so no run sees what another left;
#  2. gives the root what a fresh CI machine has and nothing of ours: the host's rustup
#     toolchain read-only (RUSTUP_HOME bind-mounted at /root/.rustup, the rustup proxies
#     cargo, rustc, rustfmt and clippy in /root/.cargo/bin, cargo-nextest in /usr/local/bin),
#     an otherwise empty CARGO_HOME (crates come from crates.io), the Debian mirror the host
#     uses (--mirror, default: the host's apt sources) with its apt access settings, the
#     host's local certificate authorities (/usr/local/share/ca-certificates: how this kind
#     of machine reaches the registries), a DNS resolver, /etc/hosts and a host name. No
#     /etc/nix, no nixbld group, no deadnix;
#  3. clones the committed HEAD of --source (default: this checkout; uncommitted changes are
#     not in it) to /root/rampart-<run> in the root;
#  4. in mount, PID and UTS namespaces of its own (the host's network, for apt and
#     crates.io), mounts /proc, /sys, a minimal /dev, and a new /run in the root, makes it
#     the namespace's root (pivot_root: a chroot that Nix cannot step out of) and runs, as
#     root, with a minimal environment and no input:
#       bash scripts/main.sh, bash scripts/test.sh, ./target/release/infralab down
#     (the last takes down the lab main.sh leaves up, as the README says), or instead each
#     --run COMMAND given, in order (to retry one step: --run 'bash scripts/test.sh');
#  5. prints each command's exit status and time, then ends the namespaces: every process
#     started in the root is killed and every mount is gone with them, also on failure or
#     interruption; the root is deleted (--keep keeps it for a look).
#
# The lab's network namespaces are named in the root's own /run/netns, so they never meet a
# lab of the host; their prefix (from the checkout path, which names the run) differs from
# every other checkout's as well.
#
# Room (measured): the root takes about 2 GiB of disk and the build (target/) more than
# 8 GiB (main.sh's release build plus test.sh's debug, test and clippy builds: a run with an
# 8 GiB target/ ran out of space on 2026-12-04, once the workspace had 15 crates).
# It refuses to start with less than 16 GiB free under --work, so a shared machine's other
# builds never run out of disk because of it; on a machine short of disk, --target-tmpfs 14G
# puts target/ on a tmpfs of that size (memory, which must then be free) and needs only
# 3 GiB of disk.
#
# Output, also written to <work>/<run>.log (kept). Exit 0 when both commands and the lab's
# take-down passed, 1 when one failed, 2 when the root could not be made.
set -euo pipefail

# The whole script is one block, which bash reads before it runs any of it: a run takes half
# an hour, and editing this file meanwhile (or checking out another branch) cannot break it.
{
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/scripts/phases.sh"

# inside ROOT CHECKOUT RUSTUP_HOME TARGET_TMPFS RESULTS COMMAND...: this script again, as
# the first process of the namespaces: mounts, then ROOT becomes the namespace's root and
# each COMMAND runs there. Appends a line per command to RESULTS for the verdict:
# NAME<TAB>STATUS<TAB>MICROSECONDS.
inside() {
  local root=$1 checkout=$2 rustup_home=$3 target_tmpfs=$4 results=$5 node name major minor command
  shift 5
  # pivot_root rather than chroot: before it runs git, Nix 2.8 re-enters the mount namespace
  # it started in, and that puts a chrooted process back at the namespace's real root.
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  # A minimal /dev of its own, as a container has: the root cannot touch the host's devices.
  mount -t tmpfs -o nosuid,mode=755 dev "$root/dev"
  for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$node"
    mknod -m 666 "$root/dev/$name" c "$major" "$minor"
  done
  mkdir "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm"
  mount -t tmpfs -o nosuid,nodev,mode=755 run "$root/run"
  mkdir -m 1777 "$root/run/lock"
  mount --bind "$rustup_home" "$root/root/.rustup"
  mount -o remount,bind,ro "$root/root/.rustup"
  if [[ -n $target_tmpfs ]]; then
    mkdir -p "$root$checkout/target"
    mount -t tmpfs -o "size=$target_tmpfs,mode=755" target "$root$checkout/target"
  fi
  hostname clean-root
  exec 3>>"$results"
  cd "$root"
  mkdir .host
  pivot_root . .host
  cd /
  umount -l /.host
  rmdir /.host

  # in_root COMMAND: in the checkout, with root's home and Debian's PATH for root, nothing
  # else (CI runs with no terminal and no input).
  in_root() {
    local status=0
    phase "$1"
    /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/bash -c "cd $checkout && $1" </dev/null 3>&- || status=$?
    phase_end "$status"
    echo "clean-root: target/ holds $(du -sh "$checkout/target" 2>/dev/null | cut -f1), the root's own disk $(du -sh --one-file-system --exclude=/root/.rustup / 2>/dev/null | cut -f1)"
    printf '%s\t%s\t%s\n' "$1" "$status" "${phase_times[-1]}" >&3
  }
  for command in "$@"; do
    in_root "$command"
  done
}

if [[ ${1:-} == --inside ]]; then
  shift
  inside "$@"
  exit 0
fi

usage() {
  sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2
  exit 2
}
cannot() {
  echo "clean-root: $*" >&2
  exit 2
}

source_dir=$here
cache=/var/cache/rampart-clean-root
work=/var/tmp/rampart-clean-root
mirror=
refresh=false
keep=false
target_tmpfs=
commands=()
while (($# > 0)); do
  case $1 in
  --source) source_dir=${2:?--source needs a directory} && shift ;;
  --cache) cache=${2:?--cache needs a directory} && shift ;;
  --work) work=${2:?--work needs a directory} && shift ;;
  --mirror) mirror=${2:?--mirror needs a URL} && shift ;;
  --refresh-cache) refresh=true ;;
  --keep) keep=true ;;
  --target-tmpfs) target_tmpfs=${2:?--target-tmpfs needs a size, e.g. 8G} && shift ;;
  --run) commands+=("${2:?--run needs a command}") && shift ;;
  *) usage ;;
  esac
  shift
done

if ((${#commands[@]} == 0)); then
  commands=("bash scripts/main.sh" "bash scripts/test.sh" "./target/release/infralab down")
fi
((EUID == 0)) || cannot "run me as root (debootstrap, namespaces and mounts need it)"
for tool in unshare pivot_root git tar mknod; do
  command -v "$tool" >/dev/null || cannot "$tool not found"
done
rev=$(git -C "$source_dir" rev-parse HEAD) || cannot "$source_dir is not a git checkout (--source)"
if [[ -n $(git -C "$source_dir" status --porcelain --untracked-files=no) ]]; then
  echo "clean-root: note: $source_dir has uncommitted changes; the root gets the committed HEAD only"
fi

# The host's Debian mirror: the first archive URI of its apt sources that is not commented
# out, else Debian's own.
if [[ -z $mirror ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ') || true
  mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}

# The host's toolchain: the rustup proxies (cargo is a link to rustup) and cargo-nextest.
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo=$(PATH="$HOME/.cargo/bin:$PATH" command -v cargo) || cannot "cargo not found: the host needs a rustup toolchain"
rustup=$(readlink -f "$cargo")
[[ $(basename "$rustup") == rustup* && -d $rustup_home/toolchains ]] ||
  cannot "$cargo is not a rustup proxy with toolchains in $rustup_home; only a rustup toolchain can be lent to the root"
nextest=$(PATH="$HOME/.cargo/bin:$PATH" command -v cargo-nextest) || cannot "cargo-nextest not found on the host"

mkdir -p "$cache" "$work"
# Room (see the header): GiB of disk free under --work, and of memory for a tmpfs target/.
free_disk=$(($(df --output=avail -k "$work" | tail -n1) / 1048576))
need_disk=16
if [[ -n $target_tmpfs ]]; then
  need_disk=3
  free_memory=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) / 1048576))
  need_memory=$(numfmt --from=iec "$target_tmpfs" | awk '{ print int($1 / 1073741824) + 4 }')
  ((free_memory >= need_memory)) ||
    cannot "--target-tmpfs $target_tmpfs needs about $need_memory GiB of memory available; $free_memory GiB are"
fi
((free_disk >= need_disk)) ||
  cannot "$work has $free_disk GiB free; a run needs $need_disk GiB (--work elsewhere$([[ -n $target_tmpfs ]] || echo ", or --target-tmpfs 14G"))"

run=$(date +%Y%m%d-%H%M%S)-$$
root=$work/$run
log=$work/$run.log
checkout=/root/rampart-$run
results=$work/$run.results
exec > >(tee "$log") 2>&1

child=
# shellcheck disable=SC2317 # called by the EXIT trap
finish() {
  local status=$?
  # The namespaces end with their first process: that kills whatever the root still runs
  # and drops every mount made in it. unshare ignores SIGTERM while it waits; killed, it
  # takes that first process along (--kill-child).
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [[ -d $root ]]; then
    if grep -qF " $root/" /proc/self/mountinfo || grep -qF " $root " /proc/self/mountinfo; then
      echo "clean-root: mounts under $root are still there; not deleting it (look with: grep $root /proc/self/mountinfo)" >&2
      status=2
    elif $keep; then
      echo "clean-root: the root is kept in $root (delete it with: rm -rf --one-file-system $root)"
    else
      rm -rf --one-file-system "$root"
    fi
  fi
  rm -f "$results"
  echo "clean-root: the log is $log"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the root

phase "root" "Debian 12 minbase from $mirror, unpacked fresh into $root"
if ! command -v debootstrap >/dev/null; then
  echo "clean-root: installing debootstrap (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
tarball=$cache/bookworm-minbase.tar
if $refresh || [[ ! -f $tarball ]]; then
  building=$cache/building.$$
  rm -rf --one-file-system "$building"
  mkdir -p "$building"
  echo "clean-root: debootstrap --variant=minbase bookworm (once; kept as $tarball)"
  if ! debootstrap --variant=minbase bookworm "$building/root" "$mirror" >"$building/debootstrap.log" 2>&1; then
    tail -n 20 "$building/debootstrap.log" >&2
    cannot "debootstrap failed (above; the whole log is $building/debootstrap.log)"
  fi
  tar -C "$building/root" --numeric-owner --xattrs -cf "$building/root.tar" .
  mv "$building/root.tar" "$tarball"
  rm -rf --one-file-system "$building"
fi
mkdir "$root"
tar -C "$root" --numeric-owner --xattrs -xpf "$tarball"

# What a fresh Debian machine has: its mirror for bookworm, its updates and security fixes,
# with the host's settings for reaching it (a proxy, or a dated snapshot's validity); a
# resolver; a host name that resolves.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
for conf in /etc/apt/apt.conf.d/*; do
  if grep -q '^[[:space:]]*Acquire::' "$conf" 2>/dev/null; then
    cp "$conf" "$root/etc/apt/apt.conf.d/"
  fi
done
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# The machine's own certificate authorities (a TLS-inspecting egress proxy's, say): the
# ca-certificates package, once install.sh adds it, puts them in the bundle cargo and curl read.
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
echo clean-root >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tclean-root\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# The machine's Rust toolchain, lent read-only, and an empty CARGO_HOME beside it.
mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin"
cp "$rustup" "$root/root/.cargo/bin/rustup"
for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  ln -s rustup "$root/root/.cargo/bin/$proxy"
done
cp "$nextest" "$root/usr/local/bin/cargo-nextest"

# Nothing of ours: a fresh machine has none of it.
if [[ -e $root/etc/nix ]] || grep -q '^nixbld:' "$root/etc/group"; then
  cannot "the debootstrap root has /etc/nix or a nixbld group; remake it with --refresh-cache"
fi
echo "clean-root: root ready ($(du -sh --one-file-system "$root" | cut -f1)): no /etc/nix, no nixbld group, /root/.cargo holds bin/ only"

phase "clone" "$rev of $source_dir"
git clone --quiet --no-hardlinks "$source_dir" "$root$checkout"
git -C "$root$checkout" checkout --quiet --detach "$rev"
git -C "$root$checkout" log -1 --format='clean-root: %h %s'

# ---------------------------------------------------------------- the commands

: >"$results"
phase_end
unshare --mount --pid --uts --fork --kill-child --propagation private \
  bash "$here/scripts/clean-root.sh" --inside "$root" "$checkout" "$rustup_home" "$target_tmpfs" "$results" "${commands[@]}" &
child=$!
wait "$child" || true
child=

# ---------------------------------------------------------------- the verdict

failed=0
echo
echo "clean-root: $rev in a fresh Debian 12 root (run $run)"
while IFS=$'\t' read -r name status micros; do
  printf '  %-32s exit %-3s %s\n' "$name" "$status" "$(phase_duration "$micros")"
  ((status == 0)) || failed=$((failed + 1))
done <"$results"
[[ $(wc -l <"$results") == "${#commands[@]}" ]] || {
  echo "clean-root: not every command ran (the namespaces ended early; see the log)"
  failed=$((failed + 1))
}
phases_done $((failed > 0))
((failed == 0))
exit
}
