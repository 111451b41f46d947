#!/usr/bin/env bash
# Content-Based Transfer, the paper's Figure 5, against plain HTTP (curl/nginx), rsync (daemon),
# zsync (nginx) and casync (store over nginx), on a link shaped with tc in a private network
# namespace. Protocol: ../shared/BENCHMARKS.md, "Transfer". Needs root, nginx, rsync, zsync, casync.
#
#   bench/transfer/fig5.sh [RATE=100mbit] [DELTAS="0 0.1 0.5 1"] [SIZE_MIB=512] [RUNS=1] [TOOLS=...]
#
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
JAR="$here/cli/target/osfarm.jar"
W=${BENCH_DIR:-/var/tmp/osfarm-bench-transfer}
NS=osfarm-bench-$$
mkdir -p "$W/srv" "$W/cli"
in_ns() { ip netns exec "$NS" "$@"; }

cleanup() {
  # Every process of the private namespace is one this script started (servers, clients).
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  sleep 1
  ip netns del "$NS" 2>/dev/null || true
  rm -f "$W/pids" "$W/rsyncd.pid" "$W/nginx.pid"
}
trap cleanup EXIT

# ---- data: B, and A_delta = B with a fraction delta of its 4 KiB blocks random ----
if [ ! -f "$W/cli/b.img" ] || [ "$(stat -c %s "$W/cli/b.img")" != $((SIZE_MIB << 20)) ]; then
  head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/cli/b.img"
fi
for d in $DELTAS; do
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
in_ns "$JAVA" -jar "$JAR" --repo "$W/repo" serve --listen 127.0.0.1:8080 --images "$W/srv" 2>"$W/serve.log" &
echo $! >> "$W/pids"
for i in $(seq 1 120); do
  in_ns curl -sf http://127.0.0.1:8080/v1/images/ >/dev/null 2>&1 && break; sleep 1
done
# The client's persistent seed index of B (built once, like the paper's local image index).
"$JAVA" -jar "$JAR" commonality "$W/cli/b.img" "$W/cli/b.img" >/dev/null
rate_bytes=$(python3 -c "
r='$RATE'; m={'kbit':1e3,'mbit':1e6,'gbit':1e9}
for k,v in m.items():
  if r.endswith(k): print(float(r[:-len(k)])*v/8)")

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
tx() { in_ns cat /sys/class/net/lo/statistics/tx_bytes; }

# v_d: a cold local copy of B on the same disk.
drop; t0=$(date +%s.%N); cp "$W/cli/b.img" "$W/cli/cp.img"; sync; t1=$(date +%s.%N)
vd=$(python3 -c "print($((SIZE_MIB << 20))/($t1-$t0))"); rm -f "$W/cli/cp.img"
echo "# rate $RATE, size $SIZE_MIB MiB, v_d $(python3 -c "print(round($vd/1e6,1))") MB/s, v_n $(python3 -c "print($rate_bytes/1e6)") MB/s"
echo "| Δ | tool | run | seconds | observed MB/s | wire MB | missing MB | serial bound MB/s | overlapped bound MB/s | ok |"
echo "|---|---|---|---|---|---|---|---|---|---|"

cd "$W/cli"
for d in $DELTAS; do
  a="$W/srv/a-$d.img"
  missing=$(python3 - "$W/cli/b.img" "$a" <<'PY'
import sys
n = 0
with open(sys.argv[1], "rb") as b, open(sys.argv[2], "rb") as a:
    while True:
        x, y = b.read(4096), a.read(4096)
        if not x and not y: break
        if x != y: n += len(y)
print(n)
PY
)
  for run in $(seq 1 "$RUNS"); do
    for tool in $TOOLS; do
      rm -f out.img out.img.part out.img.part.state
      [ "$tool" = rsync ] && { cp b.img out.img; sync; }
      drop; x0=$(tx); t0=$(date +%s.%N)
      case $tool in
        osfarm) in_ns "$JAVA" -jar "$JAR" fetch "http://127.0.0.1:8080/a-$d.img" -o out.img --seed b.img >/dev/null ;;
        http) in_ns curl -sf -o out.img "http://127.0.0.1:8081/a-$d.img"; sync out.img ;;
        rsync) in_ns rsync --no-whole-file --inplace "rsync://127.0.0.1:8730/srv/a-$d.img" out.img; sync out.img ;;
        zsync) in_ns zsync -q -i b.img -o out.img "http://127.0.0.1:8081/a-$d.img.zsync" >/dev/null 2>&1; sync out.img ;;
        casync) in_ns casync extract --seed=b.img --store=http://127.0.0.1:8081/store.castr \
                  "http://127.0.0.1:8081/a-$d.caibx" out.img >/dev/null 2>&1; sync out.img ;;
      esac
      t1=$(date +%s.%N); x1=$(tx)
      ok=$(cmp -s out.img "$a" && echo yes || echo NO)
      python3 - <<PY
s=$((SIZE_MIB << 20)); t=$t1-$t0; sd=$missing; si=s-sd; vd=$vd; vn=$rate_bytes
serial=s/(si/vd+sd/vn); over=s/max(si/vd, sd/vn)
print(f"| $d | $tool | $run | {t:.2f} | {s/t/1e6:.1f} | {($x1-$x0)/1e6:.1f} | {sd/1e6:.1f} | {serial/1e6:.1f} | {over/1e6:.1f} | $ok |")
PY
    done
  done
done
rm -f out.img zsync-*.part
