#!/usr/bin/env bash
# `osfarm pull` of a real snapshot onto a repository that holds its sibling, against rsync of the
# two extracted trees, on a link shaped with tc in a private network namespace (as fig5.sh).
# Needs root and rsync.
#
#   bench/transfer/pull-real.sh [RATE=100mbit] [RUNS=1] [OLD=batch1] [NEW=batch2]
#
# The server's repository holds NEW (published from $IMAGES/NEW.tar); the client's holds OLD. Each
# run starts from a fresh copy of the client repository (untimed), drops caches, and times
# `osfarm pull URL NEW` (it returns once the objects and the ref are durable). rsync: the client
# holds the extracted OLD tree, the daemon serves the extracted NEW tree;
# `rsync -aH --numeric-ids --delete` then `sync`. Wire = tx bytes of lo in the namespace.
set -euo pipefail
RATE=${1:-100mbit}
RUNS=${2:-1}
OLD=${3:-batch1}
NEW=${4:-batch2}
IMAGES=${IMAGES:-${OSFARM_BENCH_IMAGES:-$HOME/.cache/osfarm/bench-images}}
here=$(cd "$(dirname "$0")/../.." && pwd)
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
W=${BENCH_DIR:-/var/tmp/osfarm-bench-pull}
NS=osfarm-pull-$$
mkdir -p "$W"
JAR="$W/osfarm-$$.jar"
cp "${OSFARM_JAR:-$here/cli/target/osfarm.jar}" "$JAR"
JFLAGS=(--enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xss4m
  -XX:SharedArchiveFile="$W/osfarm-$$.jsa" -XX:+AutoCreateSharedArchive -Xlog:cds=off -Xlog:cds+dynamic=off)
osfarm() { "$JAVA" "${JFLAGS[@]}" -jar "$JAR" "$@"; }
in_ns() { ip netns exec "$NS" "$@"; }
cleanup() {
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  sleep 1
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$JAR" "$W/osfarm-$$.jsa" "$W/client-run" "$W/tree-run"
}
trap cleanup EXIT

# ---- untimed preparation: the two repositories and the two trees ----
[ -d "$W/server-repo" ] || osfarm --repo "$W/server-repo" publish "$IMAGES/$NEW.tar" --ref "$NEW" >/dev/null
[ -d "$W/client-repo" ] || osfarm --repo "$W/client-repo" publish "$IMAGES/$OLD.tar" --ref "$OLD" >/dev/null
for t in "$OLD" "$NEW"; do
  if [ ! -d "$W/tree-$t" ]; then
    mkdir -p "$W/tree-$t.tmp"
    tar -C "$W/tree-$t.tmp" --numeric-owner -xpf "$IMAGES/$t.tar"
    mv "$W/tree-$t.tmp" "$W/tree-$t"
  fi
done
cat > "$W/rsyncd.conf" <<RS
pid file = $W/rsyncd-$NS.pid
use chroot = no
uid = root
gid = root
[new]
  path = $W/tree-$NEW
  read only = yes
RS

ip netns add "$NS"
in_ns ip link set lo mtu 9000 up
in_ns tc qdisc add dev lo root tbf rate "$RATE" burst 256kb latency 100ms
in_ns rsync --daemon --no-detach --port=8731 --config="$W/rsyncd.conf" &
in_ns "$JAVA" "${JFLAGS[@]}" -jar "$JAR" --repo "$W/server-repo" serve --listen 127.0.0.1:8090 \
  2>"$W/serve.log" &
for i in $(seq 1 120); do
  in_ns curl -sf http://127.0.0.1:8090/v1/refs >/dev/null 2>&1 && break
  grep -q serving "$W/serve.log" && break
  sleep 1
done
# Untimed warm-up of the class-data-sharing archive (as the launcher's first run).
osfarm --repo "$W/client-repo" refs >/dev/null

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
tx() { in_ns cat /sys/class/net/lo/statistics/tx_bytes; }
echo "# $(uptime)"
echo "# rate $RATE, pull $NEW onto a repository holding $OLD; rsync of tree $OLD to tree $NEW"
echo "| tool | run | seconds | wire MB | detail |"
echo "|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  rm -rf "$W/client-run"; cp -a "$W/client-repo" "$W/client-run"
  drop; x0=$(tx); t0=$(date +%s.%N)
  detail=$(in_ns "$JAVA" "${JFLAGS[@]}" -jar "$JAR" --repo "$W/client-run" pull \
    http://127.0.0.1:8090 "$NEW" 2>&1 >/dev/null | grep pulled || true)
  t1=$(date +%s.%N); x1=$(tx)
  echo "| osfarm pull | $run | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(python3 -c "print(f'{($x1-$x0)/1e6:.1f}')") | $detail |"

  rm -rf "$W/tree-run"; cp -a "$W/tree-$OLD" "$W/tree-run"
  drop; x0=$(tx); t0=$(date +%s.%N)
  stats=$(in_ns rsync -aH --numeric-ids --delete --stats rsync://127.0.0.1:8731/new/ "$W/tree-run/" \
    | grep -E "^Total bytes (sent|received)|^Number of regular files transferred" | tr '\n' ' ')
  sync
  t1=$(date +%s.%N); x1=$(tx)
  d=$(diff -r --no-dereference "$W/tree-run" "$W/tree-$NEW" >/dev/null 2>&1 && echo same || echo DIFFERS)
  echo "| rsync | $run | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(python3 -c "print(f'{($x1-$x0)/1e6:.1f}')") | $stats; tree $d |"
done
