#!/usr/bin/env bash
# Cold builds in pairs, for before/after comparisons on a noisy host: each round runs plain
# mmdebstrap (as bench/build/run.sh's first row), then osfarm A and osfarm B cold (empty repository
# and cache), A first in odd rounds and B first in even ones. Each line: the run, wall seconds, user
# and system CPU seconds (/usr/bin/time: the process and the children it waits for).
# With PLAIN_TOPDIR=1 each round also runs plain mmdebstrap with its TMPDIR flagged +T (chattr), the
# placement osfarm gives its work directories (docs/build.md), as a reference row "plainT".
# Usage: bench/build/cold-pairs.sh A_LAUNCHER B_LAUNCHER [WORKDIR] [ROUNDS]
#   (A_LAUNCHER, B_LAUNCHER: ./osfarm of two checkouts; default WORKDIR /tmp/osfarm-cold-pairs, 3 rounds)
set -euo pipefail
A=$1; B=$2; W=${3:-/tmp/osfarm-cold-pairs}; N=${4:-3}
rm -rf "$W"; mkdir -p "$W"; chmod 755 "$W"
base="systemd-sysv,udev,iproute2,ifupdown,netbase,procps,less,ca-certificates,passwd"
wrap=()
if [ "$(id -u)" -eq 0 ]; then
  b=$(awk -F: '$1=="root"||$1=="0"{print $2; exit}' /etc/subuid)
  g=$(awk -F: '$1=="root"||$1=="0"{print $2; exit}' /etc/subgid)
  wrap=(unshare --user --map-users="$b,0,65536" --map-groups="$g,0,65536" --setuid 0 --setgid 0 --)
fi
"$A" classes >/dev/null; "$B" classes >/dev/null   # build the jars and CDS archives first
# ext4 without a journal (as this benchmark's host) skips inodes deleted in the last 30 s when it
# allocates new ones, one cached inode-table lookup each: a run that starts right after the previous
# run deleted its tree pays for that tree in every file it creates. Each run waits SETTLE seconds
# (default 40) after a sync, so that no run pays for another's deletions.
SETTLE=${SETTLE:-40}
tv() {
  sync; sleep "$SETTLE"
  /usr/bin/time -f "%e %U %S" -o "$W/time" "$@" >"$W/last.out" 2>"$W/last.err" ||
    { tail -20 "$W/last.err" >&2; exit 1; }
  cat "$W/time"
}
plain() { # $1: "T" to give mmdebstrap's TMPDIR ext4's top-directory flag, as osfarm's work directory has
  rm -rf "$W/p"; mkdir -p "$W/p"; [ ${#wrap[@]} -eq 0 ] || chown "$b:$g" "$W/p"
  [ "${1:-}" != T ] || chattr +T "$W/p"
  tv env TMPDIR="$W/p" HOME="$W/p" "${wrap[@]}" mmdebstrap --mode=unshare --variant=minbase \
    --aptopt='APT::Install-Recommends "false"' --include="$base,openssh-server" \
    bookworm "$W/p/plain.tar" http://deb.debian.org/debian
  rm -rf "$W/p"
}
osf() {
  local d="$W/o"; rm -rf "$d"; mkdir -p "$d"
  tv env OSFARM_CACHE="$d/cache" "$1" --repo "$d/repo" build --class debian-bookworm -g core \
    -g base -p openssh-server -o "$d/cold.tar"
  grep -h "layer base.*built\|^built" "$W/last.err" | sed 's/^/    /' >&2
  rm -rf "$d"
}
for i in $(seq 1 "$N"); do
  echo "# round $i, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "plain $(plain)"
  [ -z "${PLAIN_TOPDIR:-}" ] || echo "plainT $(plain T)"
  if [ $((i % 2)) -eq 1 ]; then
    echo "A $(osf "$A")"; echo "B $(osf "$B")"
  else
    echo "B $(osf "$B")"; echo "A $(osf "$A")"
  fi
done
