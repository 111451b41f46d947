#!/usr/bin/env bash
# Build benchmark: osfarm build side by side with plain mmdebstrap for the same package set
# (Debian bookworm amd64, minbase + the class's base group + openssh-server), one run each:
#   1. plain mmdebstrap, cold (no .deb cache); then the same with dpkg's fsyncs off (reference)
#                                                        2. osfarm cold (empty repo and cache)
#   3. osfarm with core and base cached, 5 extra packages (copy-on-write: checks base out once, then an
#      overlay)                                         4. the same on a copy of the repository made
#      after 2, with the overlay off (the parent's tree unpacked from a tar, as before)
#   5. core and base cached, 5 other packages (the checkout of 3 reused)
#   6. osfarm fully cached request (same as 3; 3 times, median; output compared with 3's)
# Usage: bench/build/run.sh [WORKDIR]   (default /tmp/osfarm-bench-build). Prints a markdown table.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/tmp/osfarm-bench-build}
rm -rf "$W"; mkdir -p "$W"
osfarm() { "${OSFARM_BIN:-$here/osfarm}" --repo "$W/repo" "$@"; }  # OSFARM_BIN: another launcher
base="systemd-sysv,udev,iproute2,ifupdown,netbase,procps,less,ca-certificates,passwd"
extra5="curl rsync nano psmisc lsof"
other5="wget file bzip2 xz-utils zstd"
osfarm classes >/dev/null   # build the jar and the CDS archive outside the measurements
# ext4 without a journal skips inodes deleted in the last 30 s when it allocates new ones (see
# cold-pairs.sh): each build below starts SETTLE seconds (default 40) after a sync.
settle() { sync; sleep "${SETTLE:-40}"; }
t() { local s; s=$(date +%s.%N); "$@" >"$W/last.out" 2>"$W/last.err" || { cat "$W/last.err" >&2; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }

# plain mmdebstrap in the same confinement osfarm uses (as root: a user namespace on root's subuids)
wrap=()
if [ "$(id -u)" -eq 0 ]; then
  b=$(awk -F: '$1=="root"||$1=="0"{print $2; exit}' /etc/subuid)
  g=$(awk -F: '$1=="root"||$1=="0"{print $2; exit}' /etc/subgid)
  wrap=(unshare --user --map-users="$b,0,65536" --map-groups="$g,0,65536" --setuid 0 --setgid 0 --)
  chown "$b:$g" "$W"
fi
settle
plain=$(t env TMPDIR="$W" HOME="$W" "${wrap[@]}" mmdebstrap --mode=unshare --variant=minbase \
  --aptopt='APT::Install-Recommends "false"' --include="$base,openssh-server" \
  bookworm "$W/plain.tar" http://deb.debian.org/debian)

# for reference: plain mmdebstrap with dpkg's fsyncs off, as osfarm runs dpkg (docs/build.md)
settle
plainunsafe=$(t env TMPDIR="$W" HOME="$W" "${wrap[@]}" mmdebstrap --mode=unshare --variant=minbase \
  --aptopt='APT::Install-Recommends "false"' --dpkgopt=force-unsafe-io --include="$base,openssh-server" \
  bookworm "$W/plain-unsafe.tar" http://deb.debian.org/debian)
rm -f "$W/plain.tar" "$W/plain-unsafe.tar"

export OSFARM_CACHE="$W/cache"
settle
cold=$(t osfarm build --class debian-bookworm -g core -g base -p openssh-server -o "$W/cold.tar")
sed -n 's/^built/  osfarm cold: built/p' "$W/last.err" >&2
# osfarm returns once the image is published and written; mmdebstrap then deletes its tree and the
# work directory goes, in the background (plain mmdebstrap's time above includes its deletion).
# Wait for that before the next measurement, and report how long it went on.
s=$(date +%s.%N)
while [ -n "$(ls -A "$W/cache/work" 2>/dev/null)" ]; do sleep 0.2; done
tail=$(echo "$(date +%s.%N) - $s" | bc)
cp -a "$W/repo" "$W/repo-tar"; cp -a "$W/cache" "$W/cache-tar"   # same state, same .debs
# shellcheck disable=SC2086
settle
layered=$(t osfarm build --class debian-bookworm -g core -g base -p openssh-server \
  $(printf -- '-p %s ' $extra5) -o "$W/layered.tar")
sed -n 's/^built/  osfarm layered: built/p' "$W/last.err" >&2
# shellcheck disable=SC2086
settle
untar=$(t env OSFARM_CACHE="$W/cache-tar" OSFARM_JAVA_OPTS="-Dosfarm.build.overlay=false" "${OSFARM_BIN:-$here/osfarm}" \
  --repo "$W/repo-tar" build --class debian-bookworm -g core -g base -p openssh-server \
  $(printf -- '-p %s ' $extra5))
sed -n 's/^built/  osfarm layered, overlay off: built/p' "$W/last.err" >&2
# shellcheck disable=SC2086
settle
again=$(t osfarm build --class debian-bookworm -g core -g base -p openssh-server \
  $(printf -- '-p %s ' $other5))
sed -n 's/^built/  osfarm layered again: built/p' "$W/last.err" >&2
# the fully cached request, 3 times (median), each to a new file; between them a pause, so that the
# spare copy a delivery consumes is made again (in the background, at nice 19) before the next
median() { sort -n | sed -n 2p; }
cached=$(for i in 1 2 3; do
  sleep 5
  # shellcheck disable=SC2086
  t osfarm build --class debian-bookworm -g core -g base -p openssh-server \
    $(printf -- '-p %s ' $extra5) -o "$W/cached$i.tar"
  sed -n 's/^built/  osfarm cached: built/p' "$W/last.err" >&2
  cmp "$W/cached$i.tar" "$W/layered.tar" >&2 || { echo "cached output differs" >&2; exit 1; }
done | median)
inproc=$(sed -n 's/.*from cache, \([0-9.]*\) s$/\1/p' "$W/last.err")
jvm=$(for i in 1 2 3; do t osfarm classes; done | median)
hello=$(for i in 1 2 3; do t "$("$here/scripts/java-home")/bin/java" -Xshare:auto -version; done | median)

cat <<T
| run | seconds | ratio |
|---|---:|---:|
| plain mmdebstrap, cold | $plain | 1.00 |
| … plain mmdebstrap, cold, \`--dpkgopt=force-unsafe-io\` (reference) | $plainunsafe | $(echo "scale=2; $plainunsafe / $plain" | bc) × plain |
| osfarm build, cold (core, base, image layers) | $cold | $(echo "scale=2; $cold / $plain" | bc) × plain, $(echo "scale=2; $cold / $plainunsafe" | bc) × plain without fsyncs |
| … clean-up still running after it returned (mmdebstrap deleting its tree, work directory) | $tail | |
| osfarm build, core+base cached, 5 more packages (overlay; first use checks base out) | $layered | $(echo "scale=2; $layered / $cold" | bc) × own cold |
| … the same with the overlay off (parent unpacked from a tar, as before) | $untar | $(echo "scale=2; $untar / $cold" | bc) × own cold |
| osfarm build, core+base cached, 5 other packages (overlay, checkout reused) | $again | $(echo "scale=2; $again / $cold" | bc) × own cold |
| osfarm build, fully cached request (CLI wall time) | $cached | |
| … of which the build call itself (in-process) | $inproc | |
| … CLI start-up alone (osfarm classes) | $jvm | |
| … a bare JVM on this machine now (java -version) | $hello | |
T
