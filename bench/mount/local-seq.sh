#!/usr/bin/env bash
# Sequential read through a mount of a local repository against the same bytes from a plain file.
# Usage: bench/mount/local-seq.sh [SIZE_MB] [RUNS] [WORKDIR]   (root; fuse3; builds the project)
#
# Per run, page cache dropped (echo 3 > /proc/sys/vm/drop_caches) before every read:
#   plain      dd of the file on disk
#   direct     mount (default: the repository is read directly, nothing copied to the cache)
#   direct-2   the same mount read again (its JIT warm: what a long-lived mount reaches)
#   copy-cold  mount --cache-local with an empty cache (every chunk read, verified, copied)
#   copy-warm  mount --cache-local again, cache filled by copy-cold (read back from the cache)
# Prints one row per run, the medians, and each mount's ratio to the plain read of the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-512}
runs=${2:-3}
work=${3:-/var/tmp/osfarm-mount-local-seq}
osfarm="$here/osfarm"
mkdir -p "$work/tree" "$work/mnt"
if [ ! -f "$work/tree/big" ] || [ "$(stat -c %s "$work/tree/big")" != $((mb << 20)) ]; then
  rm -rf "$work/repo"
  head -c $((mb << 20)) /dev/urandom > "$work/tree/big"
fi
[ -d "$work/repo" ] || "$osfarm" --repo "$work/repo" publish "$work/tree" --ref bench/big >/dev/null
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
mbps() { # file -> MB/s of a cold dd
  local t0 t1
  drop; t0=$(date +%s.%N); dd if="$1" of=/dev/null bs=1M status=none; t1=$(date +%s.%N)
  awk -v b=$((mb << 20)) -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / (c - a) / 1e6 }'; }
unmount() { # waits until the serving process is gone, so the cache is free again
  "$osfarm" umount "$work/mnt"
  while pgrep -f -- "$work/mnt --cache" >/dev/null; do sleep 0.2; done; }
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "| run | plain MB/s | direct MB/s | direct-2 MB/s | copy-cold MB/s | copy-warm MB/s | direct/plain | direct-2/plain | copy-cold/plain | copy-warm/plain | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
rows=()
for run in $(seq 1 "$runs"); do
  plain=$(mbps "$work/tree/big")
  rm -rf "$work/cache"
  "$osfarm" mount "$work/repo" bench/big "$work/mnt" --cache "$work/cache" >/dev/null
  direct=$(mbps "$work/mnt/big")
  direct2=$(mbps "$work/mnt/big")
  cmp -s "$work/mnt/big" "$work/tree/big" || { echo "run $run: CONTENT DIFFERS (direct)"; exit 1; }
  unmount
  rm -rf "$work/cache"
  "$osfarm" mount "$work/repo" bench/big "$work/mnt" --cache "$work/cache" --cache-local >/dev/null
  cold=$(mbps "$work/mnt/big")
  unmount
  "$osfarm" mount "$work/repo" bench/big "$work/mnt" --cache "$work/cache" --cache-local >/dev/null
  warm=$(mbps "$work/mnt/big")
  cmp -s "$work/mnt/big" "$work/tree/big" || { echo "run $run: CONTENT DIFFERS (cache)"; exit 1; }
  unmount
  row="$plain $direct $direct2 $cold $warm"
  rows+=("$row")
  awk -v r="$run" -v l="$(cut -d' ' -f1 /proc/loadavg)" '{ printf "| %s | %d | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %s |\n", r, $1, $2, $3, $4, $5, $2/$1, $3/$1, $4/$1, $5/$1, l }' <<<"$row"
done
printf '%s\n' "${rows[@]}" | python3 -c "
import sys, statistics as s
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = [s.median(c) for c in zip(*rows)]
r = [s.median(x[i] / x[0] for x in rows) for i in range(5)]
print('| median | ' + ' | '.join(f'{v:.0f}' for v in m) + ' | ' + ' | '.join(f'{v:.2f}' for v in r[1:]) + ' | |')"
