#!/usr/bin/env bash
# Sequential read through a mount of a local repository against the same bytes from a plain file.
# Usage: bench/mount/local-seq.sh [SIZE_MB] [WORKDIR]   (root; fusermount3; builds the project)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-1024}
work=${2:-$(mktemp -d /var/tmp/osfarm-mount-bench.XXXXXX)}
osfarm="$here/osfarm"
mkdir -p "$work/tree" "$work/mnt"
head -c $((mb << 20)) /dev/urandom > "$work/tree/big"
"$osfarm" --repo "$work/repo" publish "$work/tree" --ref bench/big >/dev/null
drop() { dd if="$1" iflag=nocache count=0 status=none; }
rate() { # bytes seconds -> MB/s
  awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
read_secs() { local t0 t1; t0=$(date +%s.%N); dd if="$1" of=/dev/null bs=1M status=none; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }
bytes=$((mb << 20))
for run in 1 2 3; do
  drop "$work/tree/big"
  plain=$(read_secs "$work/tree/big")
  rm -rf "$work/cache"
  find "$work/repo/objects" -type f | while read -r f; do drop "$f"; done
  "$osfarm" mount "$work/repo" bench/big "$work/mnt" --cache "$work/cache" --cache-size 4G >/dev/null
  cold=$(read_secs "$work/mnt/big")
  "$osfarm" umount "$work/mnt"
  "$osfarm" mount "$work/repo" bench/big "$work/mnt" --cache "$work/cache" --cache-size 4G >/dev/null
  warm=$(read_secs "$work/mnt/big")
  "$osfarm" umount "$work/mnt"
  echo "run $run: plain file $(rate $bytes $plain) MB/s; mount, empty cache $(rate $bytes $cold) MB/s; mount, cache filled, page cache cold $(rate $bytes $warm) MB/s"
done
