#!/usr/bin/env bash
# The real pair for fig5.sh: batch1 -> batch2 as raw ext4 images of one size (1.25 x the larger
# tree, rounded up to 64 MiB), made from the benchmark tars extracted as root. Then:
#   BENCH_DIR=/var/tmp/osfarm-bench-real bench/transfer/fig5.sh 100mbit real real
set -euo pipefail
IMAGES=${IMAGES:-${OSFARM_BENCH_IMAGES:-$HOME/.cache/osfarm/bench-images}}
W=${BENCH_DIR:-/var/tmp/osfarm-bench-real}
mkdir -p "$W/cli" "$W/srv"
cd "$W"
for n in 1 2; do
  rm -rf "x$n" && mkdir "x$n"
  tar -C "x$n" --numeric-owner -xpf "$IMAGES/batch$n.tar"
done
s=$(du -sm x1 x2 | awk '{if($1>m)m=$1} END{print int((m*1.25+63)/64)*64}')
rm -f cli/b.img srv/a-real.img
mke2fs -q -t ext4 -E root_owner=0:0 -d x1 cli/b.img "${s}M"
mke2fs -q -t ext4 -E root_owner=0:0 -d x2 srv/a-real.img "${s}M"
ls -la cli/b.img srv/a-real.img
