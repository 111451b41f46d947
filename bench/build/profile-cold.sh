#!/usr/bin/env bash
# Where a cold osfarm build spends its time: the build of bench/build/run.sh's cold case with -v,
# every stderr line stamped with the seconds since the start, then the phases between markers.
# Usage: bench/build/profile-cold.sh [WORKDIR]   (default /tmp/osfarm-profile-cold)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/tmp/osfarm-profile-cold}
rm -rf "$W"; mkdir -p "$W"; chmod 755 "$W"
export OSFARM_CACHE="$W/cache"
"${OSFARM_BIN:-$here/osfarm}" classes >/dev/null
s=$(date +%s.%N)
"${OSFARM_BIN:-$here/osfarm}" --repo "$W/repo" build -v --class debian-bookworm -g core -g base \
  -p openssh-server -o "$W/cold.tar" 2>&1 >/dev/null |
  while IFS= read -r line; do printf '%7.2f %s\n' "$(echo "$(date +%s.%N) - $s" | bc)" "$line"; done \
  > "$W/stamped.log"
end=$(echo "$(date +%s.%N) - $s" | bc)
at() { awk -v p="$1" 'index($0, p) { print $1; exit }' "$W/stamped.log"; }
row() { printf '| %s | %s |\n' "$1" "$2"; }
echo "| marker (first line containing) | seconds since start |"
echo "|---|---:|"
for m in "layer core" "I: running apt-get update" "I: downloading packages" "I: extracting archives" \
  "I: installing essential packages" "I: installing remaining packages" \
  "I: running --customize-hook" "osfarm: core layer: end of its tar stream" "osfarm: core layer: published" \
  "osfarm: base layer: end of its tar stream" "osfarm: base layer: published" \
  "I: cleaning package lists" "I: creating tarball" "I: done" "osfarm: image layer: end of its tar stream" \
  "osfarm: image layer: published" "I: removing tempdir" ": built" "output" "built "; do
  row "$m" "$(at "$m")"
done
row "end (wall)" "$end"
echo "(full log: $W/stamped.log)"
