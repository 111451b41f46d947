#!/usr/bin/env bash
# Content-Based Transfer, the paper's Figure 5, against plain HTTP (curl/nginx), rsync (daemon),
# zsync (nginx) and casync (store over nginx), on a link shaped with tc in a private network
# namespace. Protocol: ../shared/BENCHMARKS.md, "Transfer". Needs root, nginx, rsync, zsync, casync.
#
#   bench/transfer/fig5.sh [RATE=100mbit] [DELTAS="0 0.1 0.5 1"] [SIZE_MIB=512] [RUNS=1] [TOOLS=...]
#
# SIZE_MIB=real: no synthetic data; BENCH_DIR must hold cli/b.img (B) and srv/a-real.img (A), e.g.
# two raw ext4 images made by bench/transfer/real-pair.sh, and DELTAS is "real".
#
# osfarm runs as the `osfarm` launcher runs it (same JVM flags, a class-data-sharing archive made by
# an untimed warm-up fetch), from a copy of the jar taken at the start ($OSFARM_JAR, default
# cli/target/osfarm.jar), so a concurrent rebuild cannot swap it mid-run.
# Prints one markdown row per (delta, tool, run): seconds, observed MB/s, bytes on the wire (tx
# bytes of lo in the namespace), missing bytes, and the serial/overlapped bounds with v_n the shaped
# rate and v_d a cold `cp` + `sync` of B on the same disk.
set -euo pipefail
RATE=${1:-100mbit}
DELTAS=${2:-"0 0.1 0.5 1"}
SIZE_MIB=${3:-512}
RUNS=${4:-1}
TOOLS=${5:-"osfarm http rsync zsync casync"}
here=$(cd "$(dirname "$0")/../.." && pwd)
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
W=${BENCH_DIR:-/var/tmp/osfarm-bench-transfer}
NS=osfarm-bench-$$
mkdir -p "$W/srv" "$W/cli"
JAR="$W/osfarm-$$.jar"
cp "${OSFARM_JAR:-$here/cli/target/osfarm.jar}" "$JAR"
JFLAGS=(--enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xss4m
  -XX:SharedArchiveFile="$W/osfarm-$$.jsa" -XX:+AutoCreateSharedArchive -Xlog:cds=off -Xlog:cds+dynamic=off)
in_ns() { ip netns exec "$NS" "$@"; }
. "$here/scripts/jvm-options.sh"
read -ra FETCH_OPTS <<<"$(osfarm_jvm_options fetch)" # what the launcher adds for a fetch

cleanup() {
  # Every process of the private namespace is one this script started (servers, clients).
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  sleep 1
  ip netns del "$NS" 2>/dev/null || true
  rm -f "$W/pids" "$W/rsyncd.pid" "$W/nginx.pid" "$JAR" "$W/osfarm-$$.jsa"
}
trap cleanup EXIT

# ---- data: B, and A_delta = B with a fraction delta of its 4 KiB blocks random ----
if [ "$SIZE_MIB" = real ]; then
  [ -f "$W/cli/b.img" ] && [ -f "$W/srv/a-real.img" ] || { echo "no $W/cli/b.img or $W/srv/a-real.img" >&2; exit 1; }
  DELTAS=real
elif [ ! -f "$W/cli/b.img" ] || [ "$(stat -c %s "$W/cli/b.img")" != $((SIZE_MIB << 20)) ]; then
  head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/cli/b.img"
fi
for d in $DELTAS; do
  [ "$d" = real ] && continue
  f="$W/srv/a-$d.img"
  [ -f "$f" ] && [ "$(stat -c %s "$f")" = $((SIZE_MIB << 20)) ] && continue
  python3 - "$W/cli/b.img" "$f" "$d" <<'PY'
import os, random, shutil, sys
b, a, d = sys.argv[1], sys.argv[2], float(sys.argv[3])
shutil.copyfile(b, a)
n = os.path.getsize(b) // 4096
rnd = random.Random(42)
with open(a, "r+b") as f:
    for i in sorted(rnd.sample(range(n), round(n * d))):
        f.seek(i * 4096); f.write(os.urandom(4096))
PY
done

[ -f "$W/srv/warm.img" ] || head -c $((4 << 20)) /dev/urandom > "$W/srv/warm.img"

# ---- peers' server-side preparation (not timed, as the paper's server-side hashing) ----
for d in $DELTAS; do
  a="$W/srv/a-$d.img"
  [ -f "$a.zsync" ] || (cd "$W/srv" && zsyncmake -b 4096 -u "a-$d.img" -o "a-$d.img.zsync" "a-$d.img" >/dev/null 2>&1)
  [ -f "$W/srv/a-$d.caibx" ] || casync make --store="$W/srv/store.castr" "$W/srv/a-$d.caibx" "$a" >/dev/null
done
cat > "$W/nginx.conf" <<NG
daemon off; worker_processes 1; pid $W/nginx-$NS.pid; error_log $W/nginx.err;
events { worker_connections 256; }
http { access_log off; sendfile on; tcp_nopush on;
  types { application/octet-stream img; } default_type application/octet-stream;
  server { listen 127.0.0.1:8081; root $W/srv; } }
NG
cat > "$W/rsyncd.conf" <<RS
pid file = $W/rsyncd-$NS.pid
use chroot = no
[srv]
  path = $W/srv
  read only = yes
RS

# ---- the link ----
ip netns add "$NS"
in_ns ip link set lo mtu 9000 up
in_ns tc qdisc add dev lo root tbf rate "$RATE" burst 256kb latency 100ms
: > "$W/pids"
in_ns nginx -c "$W/nginx.conf" & echo $! >> "$W/pids"
in_ns rsync --daemon --no-detach --port=8730 --config="$W/rsyncd.conf" & echo $! >> "$W/pids"
in_ns "$JAVA" "${JFLAGS[@]}" -jar "$JAR" --repo "$W/repo" serve --listen 127.0.0.1:8080 --images "$W/srv" 2>"$W/serve.log" &
echo $! >> "$W/pids"
for i in $(seq 1 120); do
  in_ns curl -sf http://127.0.0.1:8080/v1/images/ >/dev/null 2>&1 && break; sleep 1
done
# The client's persistent seed index of B (built once, like the paper's local image index).
"$JAVA" "${JFLAGS[@]}" -jar "$JAR" commonality "$W/cli/b.img" "$W/cli/b.img" >/dev/null
# Untimed warm-up: writes the class-data-sharing archive, as the launcher's first run does.
in_ns "$JAVA" "${JFLAGS[@]}" ${FETCH_OPTS[@]+"${FETCH_OPTS[@]}"} -jar "$JAR" fetch "http://127.0.0.1:8080/warm.img" -o "$W/cli/warm.img" \
  --seed "$W/cli/b.img" >/dev/null
rm -f "$W/cli/warm.img"
SIZE=$(stat -c %s "$W/cli/b.img")
rate_bytes=$(python3 -c "
r='$RATE'; m={'kbit':1e3,'mbit':1e6,'gbit':1e9}
for k,v in m.items():
  if r.endswith(k): print(float(r[:-len(k)])*v/8)")

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
tx() { in_ns cat /sys/class/net/lo/statistics/tx_bytes; }

# v_d: a cold local copy of B on the same disk.
drop; t0=$(date +%s.%N); cp "$W/cli/b.img" "$W/cli/cp.img"; sync; t1=$(date +%s.%N)
vd=$(python3 -c "print($SIZE/($t1-$t0))"); rm -f "$W/cli/cp.img"
echo "# $(uptime)"
echo "# rate $RATE, size $SIZE bytes, v_d $(python3 -c "print(round($vd/1e6,1))") MB/s, v_n $(python3 -c "print($rate_bytes/1e6)") MB/s"
echo "| Δ | tool | run | seconds | observed MB/s | wire MB | missing MB | serial bound MB/s | overlapped bound MB/s | ok |"
echo "|---|---|---|---|---|---|---|---|---|---|"

cd "$W/cli"
for d in $DELTAS; do
  a="$W/srv/a-$d.img"
  # s_D: bytes of A's 4 KiB blocks whose content is nowhere in B (at any offset).
  missing=$(python3 - "$W/cli/b.img" "$a" <<'PY'
import hashlib, sys
have = set()
with open(sys.argv[1], "rb") as b:
    while x := b.read(4096):
        have.add(hashlib.sha1(x).digest())
n = 0
with open(sys.argv[2], "rb") as a:
    while y := a.read(4096):
        if hashlib.sha1(y).digest() not in have: n += len(y)
print(n)
PY
)
  for run in $(seq 1 "$RUNS"); do
    for tool in $TOOLS; do
      rm -f out.img out.img.part out.img.part.state
      [ "$tool" = rsync ] && { cp b.img out.img; sync; }
      drop; x0=$(tx); t0=$(date +%s.%N)
      case $tool in
        osfarm) in_ns "$JAVA" "${JFLAGS[@]}" ${FETCH_OPTS[@]+"${FETCH_OPTS[@]}"} -jar "$JAR" fetch "http://127.0.0.1:8080/a-$d.img" -o out.img --seed b.img >/dev/null ;;
        http) in_ns curl -sf -o out.img "http://127.0.0.1:8081/a-$d.img"; sync out.img ;;
        rsync) in_ns rsync --no-whole-file --inplace "rsync://127.0.0.1:8730/srv/a-$d.img" out.img; sync out.img ;;
        # TOOL_TIMEOUT (s): zsync's seed scan of an ext4 image (many zero blocks) can run for many
        # minutes; a timed-out run is reported with its time and "NO".
        zsync) in_ns timeout "${TOOL_TIMEOUT:-1800}" zsync -q -i b.img -o out.img \
                 "http://127.0.0.1:8081/a-$d.img.zsync" >/dev/null 2>&1 || true; touch out.img; sync out.img ;;
        casync) in_ns timeout "${TOOL_TIMEOUT:-1800}" casync extract --seed=b.img \
                  --store=http://127.0.0.1:8081/store.castr "http://127.0.0.1:8081/a-$d.caibx" out.img \
                  >/dev/null 2>&1 || true; touch out.img; sync out.img ;;
      esac
      t1=$(date +%s.%N); x1=$(tx)
      ok=$(cmp -s out.img "$a" && echo yes || echo NO)
      python3 - <<PY
s=$(stat -c %s "$a"); t=$t1-$t0; sd=$missing; si=s-sd; vd=$vd; vn=$rate_bytes
serial=s/(si/vd+sd/vn); over=s/max(si/vd, sd/vn)
print(f"| $d | $tool | $run | {t:.2f} | {s/t/1e6:.1f} | {($x1-$x0)/1e6:.1f} | {sd/1e6:.1f} | {serial/1e6:.1f} | {over/1e6:.1f} | $ok |")
PY
    done
  done
done
rm -f out.img zsync-*.part
