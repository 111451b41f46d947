#!/usr/bin/env bash
# Load benchmark of the osfarm service (issue 4), against nginx serving the same file.
#
#   bench/server/load.sh [WORKDIR]      (default /var/tmp/osfarm-bench-server; needs mmdebstrap,
#                                        nginx, curl; builds the server module first)
#
# A: 50 concurrent identical /create requests for an uncached image (fresh repository, real
#    mmdebstrap build; .debs shared with the build tests) -> expect one build, 50 equal downloads.
# B: 200 concurrent downloads of the cached image from osfarm and from nginx (sendfile), ROUNDS
#    rounds each, alternating; reports aggregate throughput (median) and errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-/var/tmp/osfarm-bench-server}
ROUNDS=${ROUNDS:-3}
N_CREATE=${N_CREATE:-50}
N_DOWN=${N_DOWN:-200}
PORT=${PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

rm -rf "$W"; mkdir -p "$W"/{a,b,cache,www}; chmod 755 "$W"
mkdir -p /var/tmp/osfarm-build-test/debs
ln -s /var/tmp/osfarm-build-test/debs "$W/cache/debs"

./mvnw -B -q -o install -DskipTests -Dspotless.check.skip=true -pl server >/dev/null
./mvnw -B -q -o dependency:build-classpath -pl server -Dmdep.outputFile="$W/cp.txt" >/dev/null
CP="server/target/classes:$(cat "$W/cp.txt")"

export OSFARM_REPO="$W/repo" OSFARM_SERVER_DB="$W/server.db" OSFARM_SERVER_DATA="$W/data" \
  OSFARM_CACHE="$W/cache" OSFARM_LISTEN="127.0.0.1:$PORT" OSFARM_WORKERS=2
TOKEN=$("$JAVA_HOME/bin/java" -cp "$CP" bench/server/Token.java "$OSFARM_SERVER_DB" bench)
"$JAVA_HOME/bin/java" -Xmx1g -cp "$CP" org.osfarm.server.OsfarmServer >"$W/server.log" 2>&1 &
SERVER=$!
NGINX_PID=""
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
}
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fs "$BASE/api/v1/status" >/dev/null && break; sleep 0.2; done

metric() { curl -fs "$BASE/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

echo "== A: $N_CREATE concurrent identical /create requests (uncached image)"
Q="name=bench&class=debian-bookworm&arch=amd64&filetype=tar.gz&group=core&package=curl"
t0=$(date +%s.%N)
seq "$N_CREATE" | xargs -P "$N_CREATE" -I{} \
  curl -s -o "$W/a/out.{}" -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" "$BASE/create?$Q" \
  >"$W/a/codes.txt"
t1=$(date +%s.%N)
A_SECONDS=$(echo "$t1 - $t0" | bc)
A_OK=$(grep -c '^200$' "$W/a/codes.txt" || true)
A_SUMS=$(sha256sum "$W"/a/out.* | awk '{print $1}' | sort -u | wc -l)
A_BUILDS=$(metric 'osfarm_builds_total{result="done"}')
A_DEDUP=$(metric 'osfarm_requests_deduplicated_total')
echo "A: ${A_SECONDS}s, $A_OK/$N_CREATE answered 200, $A_SUMS distinct files, builds=$A_BUILDS, deduplicated=$A_DEDUP"

JOB=$(curl -fs "$BASE/api/v1/jobs" | grep -o '"id" : "[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{16\}')
FILE=$(ls "$W"/data/jobs/"$JOB"/*.tar.gz)
SIZE=$(stat -c %s "$FILE")
cp "$FILE" "$W/www/image.tar.gz"   # a copy: the job output is a private (0600) hard link
chmod 644 "$W/www/image.tar.gz"
cat >"$W/nginx.conf" <<NGINX
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $W/nginx-tmp;
  proxy_temp_path $W/nginx-tmp;
  fastcgi_temp_path $W/nginx-tmp;
  uwsgi_temp_path $W/nginx-tmp;
  scgi_temp_path $W/nginx-tmp;
  server { listen 127.0.0.1:$NGINX_PORT; root $W/www; }
}
NGINX
mkdir -p "$W/nginx-tmp"
nginx -c "$W/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/image.tar.gz" && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/image.tar.gz" || { echo "nginx does not serve the file" >&2; exit 1; }
cmp <(curl -fs "http://127.0.0.1:$NGINX_PORT/image.tar.gz") <(curl -fs "$BASE/api/v1/jobs/$JOB/download")

# one round: N_DOWN concurrent downloads of URL; prints "seconds errors"
round() {
  local url=$1
  local t0 t1
  t0=$(date +%s.%N)
  seq "$N_DOWN" | xargs -P "$N_DOWN" -I{} curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "$url" \
    >"$W/b/round.txt"
  t1=$(date +%s.%N)
  local errors
  errors=$(awk -v s="$SIZE" '$1 != 200 || $2 != s' "$W/b/round.txt" | wc -l)
  echo "$(echo "$t1 - $t0" | bc) $errors"
}

echo "== B: $N_DOWN concurrent downloads of a cached image ($SIZE bytes), $ROUNDS rounds"
: >"$W/b/osfarm.txt"; : >"$W/b/nginx.txt"
for r in $(seq "$ROUNDS"); do
  round "$BASE/api/v1/jobs/$JOB/download" >>"$W/b/osfarm.txt"
  round "http://127.0.0.1:$NGINX_PORT/image.tar.gz" >>"$W/b/nginx.txt"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
O_S=$(awk '{print $1}' "$W/b/osfarm.txt" | median)
N_S=$(awk '{print $1}' "$W/b/nginx.txt" | median)
O_E=$(awk '{ s += $2 } END { print s }' "$W/b/osfarm.txt")
N_E=$(awk '{ s += $2 } END { print s }' "$W/b/nginx.txt")
O_MB=$(echo "scale=1; $N_DOWN * $SIZE / $O_S / 1000000" | bc)
N_MB=$(echo "scale=1; $N_DOWN * $SIZE / $N_S / 1000000" | bc)
echo "osfarm: rounds $(awk '{printf "%s ", $1}' "$W/b/osfarm.txt")s, median ${O_S}s = ${O_MB} MB/s, errors $O_E"
echo "nginx:  rounds $(awk '{printf "%s ", $1}' "$W/b/nginx.txt")s, median ${N_S}s = ${N_MB} MB/s, errors $N_E"
echo "ratio osfarm/nginx: $(echo "scale=2; $O_MB / $N_MB" | bc)"
