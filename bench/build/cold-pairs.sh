#!/usr/bin/env bash
# Cold builds in pairs, for before/after comparisons on a noisy host: each round runs plain
# mmdebstrap (as bench/build/run.sh's first row), then osfarm A and osfarm B cold (empty repository
# and cache), A first in odd rounds and B first in even ones. Each line: the run, wall seconds, user
# and system CPU seconds (/usr/bin/time: the process and the children it waits for).
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
tv() {
  /usr/bin/time -f "%e %U %S" -o "$W/time" "$@" >"$W/last.out" 2>"$W/last.err" ||
    { tail -20 "$W/last.err" >&2; exit 1; }
  cat "$W/time"
}
plain() {
  rm -rf "$W/p"; mkdir -p "$W/p"; [ ${#wrap[@]} -eq 0 ] || chown "$b:$g" "$W/p"
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
  if [ $((i % 2)) -eq 1 ]; then
    echo "A $(osf "$A")"; echo "B $(osf "$B")"
  else
    echo "B $(osf "$B")"; echo "A $(osf "$A")"
  fi
done
