#!/usr/bin/env bash
# Lazy mounts (issue 7). Protocol: ../shared/BENCHMARKS.md. Needs root (drop_caches, netns, tc,
# FUSE), fuse3, iproute2, mmdebstrap (once, for the standard image), python3, attr (getfattr).
#
#   bench/mount/run.sh [PARTS="a b c"] [RATE=1gbit] [SIZE_MIB=512] [RUNS=3]
#
# (a) sequential read of a SIZE_MIB file of random data through the mount (local repository, and
#     remote over unshaped loopback) against `cat` of the same data from a plain file on the same
#     disk; page cache dropped and the mount's cache empty before every run. Target: >= 50%.
# (b) cold read of the same file from a server behind an emulated link (private network namespace,
#     `tc qdisc ... tbf rate RATE` on its lo, as bench/transfer/fig5.sh) against the link rate.
#     Target: >= 80%.
# (c) `chroot MOUNT /bin/sh -c 'apt-get --version'` on a mounted standard Debian image (bookworm,
#     mmdebstrap --variant=standard) over the same link, fresh cache: time to first byte (from
#     starting `osfarm mount` to the first byte of /usr/bin/apt-get), total time, and the bytes the
#     mount fetched against the image's file bytes. Target: < 5%.
#
# osfarm runs from a copy of the jar taken at the start ($OSFARM_JAR, default cli/target/osfarm.jar)
# with the launcher's JVM flags. The mount's network side runs in the namespace (nsenter --net
# only, so the FUSE mount is visible to the host's readers). Tuning of the remote source:
# OSFARM_REMOTE_CONNECTIONS, OSFARM_REMOTE_BATCH, OSFARM_REMOTE_READAHEAD are passed through.
set -euo pipefail
PARTS=${1:-"a b c"}
RATE=${2:-1gbit}
SIZE_MIB=${3:-512}
RUNS=${4:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
W=${BENCH_DIR:-/var/tmp/osfarm-bench-mount}
NS=osfarm-bench-mount-$$
mkdir -p "$W/data" "$W/mnt"
JAR="$W/osfarm-$$.jar"
cp "${OSFARM_JAR:-$here/cli/target/osfarm.jar}" "$JAR"
JFLAGS=(--enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xss4m
  -XX:SharedArchiveFile="$W/osfarm-$$.jsa" -XX:+AutoCreateSharedArchive -Xlog:cds=off -Xlog:cds+dynamic=off)
osf() { "$JAVA" "${JFLAGS[@]}" -jar "$JAR" "$@"; }
# The mount client: `osfarm mount` from the jar, or MountMain from $OSFARM_MOUNT_CP (a classpath)
if [ -n "${OSFARM_MOUNT_CP:-}" ]; then
  MOUNT=("$JAVA" --enable-native-access=ALL-UNNAMED -cp "$OSFARM_MOUNT_CP" org.osfarm.mount.MountMain)
  UMOUNT=("${MOUNT[@]}" --umount)
else
  . "$here/scripts/jvm-options.sh"
  read -ra MOUNT_OPTS <<<"$(osfarm_jvm_options mount)" # what the launcher adds for a mount
  MOUNT=("$JAVA" "${JFLAGS[@]}" ${MOUNT_OPTS[@]+"${MOUNT_OPTS[@]}"} -jar "$JAR" mount)
  UMOUNT=("$JAVA" "${JFLAGS[@]}" -jar "$JAR" umount)
fi
in_ns() { nsenter --net=/run/netns/"$NS" "$@"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
M="$W/mnt/m"
SERVE_PIDS=()

unmount() {
  if mountpoint -q "$M" 2>/dev/null; then
    "${UMOUNT[@]}" "$M" 2>/dev/null || fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M" || true
  fi
}
cleanup() {
  unmount
  for p in "${SERVE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -e /run/netns/"$NS" ]; then
    # Every process of the private namespace is one this script started.
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    sleep 1
    ip netns del "$NS" 2>/dev/null || true
  fi
  rm -f "$JAR" "$W/osfarm-$$.jsa"
}
trap cleanup EXIT

# ---- data ----
SIZE=$((SIZE_MIB << 20))
if [ ! -f "$W/data/random.bin" ] || [ "$(stat -c %s "$W/data/random.bin")" != "$SIZE" ]; then
  rm -rf "$W/repo"
  head -c "$SIZE" /dev/urandom > "$W/data/random.bin"
fi
if [ ! -d "$W/repo" ] || ! osf refs --repo "$W/repo" 2>/dev/null | grep -q 'images/big'; then
  osf publish --repo "$W/repo" --ref images/big "$W/data" >/dev/null
fi
if [[ " $PARTS " == *" c "* ]]; then
  if [ ! -f "$W/base.tar" ]; then
    mmdebstrap --quiet --variant=standard bookworm "$W/base.partial.tar" http://deb.debian.org/debian
    mv "$W/base.partial.tar" "$W/base.tar"
  fi
  osf refs --repo "$W/repo" | grep -q 'images/base' ||
    osf publish --repo "$W/repo" --ref images/base "$W/base.tar" >/dev/null
fi
rate_bytes=$(python3 -c "
r='$RATE'; m={'kbit':1e3,'mbit':1e6,'gbit':1e9}
for k,v in m.items():
  if r.endswith(k): print(float(r[:-len(k)])*v/8)")

wait_http() {
  for _ in $(seq 1 120); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server did not come up" >&2
  exit 1
}

# ---- servers: one on the host's loopback (unshaped), one behind the shaped link ----
"$JAVA" "${JFLAGS[@]}" -jar "$JAR" --repo "$W/repo" serve --listen 127.0.0.1:8093 \
  2>"$W/serve-host.log" &
SERVE_PIDS+=($!)
ip netns add "$NS"
in_ns ip link set lo mtu 9000 up
in_ns tc qdisc add dev lo root tbf rate "$RATE" burst 256kb latency 100ms
# nsenter without --fork execs the JVM: $! is the server's pid (for its CPU time)
nsenter --net=/run/netns/"$NS" "$JAVA" "${JFLAGS[@]}" -jar "$JAR" --repo "$W/repo" serve \
  --listen 127.0.0.1:8080 --images "$W/data" 2>"$W/serve-ns.log" &
SERVE_PIDS+=($!)
wait_http curl -sf http://127.0.0.1:8093/v1/refs/images/big
wait_http in_ns curl -sf http://127.0.0.1:8080/v1/refs/images/big

# CPU seconds (user+system) a process has used so far; 0 when it is gone
cpu() { [ -r /proc/"$1"/stat ] && awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' /proc/"$1"/stat || echo 0; }
mount_pid() { pgrep -n -f -- "$M --cache" || echo 0; }
stats() { getfattr --only-values -n user.osfarm.stats "$M" 2>/dev/null || echo '{}'; }
json_get() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))" "$1" "$2"; }

# mount SOURCE REF [in_ns]: a fresh cache every time; returns once the mount is ready.
mount_fresh() {
  local src=$1 ref=$2 ns=${3:-}
  unmount
  rm -rf "$W/cache"
  mkdir -p "$M"
  if [ -n "$ns" ]; then
    in_ns "${MOUNT[@]}" "$src" "$ref" "$M" --cache "$W/cache" >/dev/null
  else
    "${MOUNT[@]}" "$src" "$ref" "$M" --cache "$W/cache" >/dev/null
  fi
}

echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# size $SIZE bytes, rate $RATE ($(python3 -c "print($rate_bytes/1e6)") MB/s), runs $RUNS"

if [[ " $PARTS " == *" a "* ]]; then
  echo
  echo "## (a) sequential read, cold: mount against the plain file on the same disk"
  echo "| run | reader | seconds | MB/s | ratio to plain | network bytes | CPU s mount | CPU s server |"
  echo "|---|---|---|---|---|---|---|---|"
  for run in $(seq 1 "$RUNS"); do
    drop; t0=$(now); cat "$W/data/random.bin" > /dev/null; t1=$(now)
    plain=$(python3 -c "print($SIZE/($t1-$t0))")
    echo "| $run | cat plain file | $(python3 -c "print(f'{$t1-$t0:.2f} | {$plain/1e6:.1f} | 1.00')") | 0 | | |"
    for kind in local loopback; do
      if [ $kind = local ]; then mount_fresh "$W/repo" images/big; else mount_fresh http://127.0.0.1:8093 images/big; fi
      mp=$(mount_pid); c0=$(cpu "$mp"); s0=$(cpu "${SERVE_PIDS[0]}")
      drop; t0=$(now); cat "$M/random.bin" > /dev/null; t1=$(now)
      c1=$(cpu "$mp"); s1=$(cpu "${SERVE_PIDS[0]}")
      [ $kind = local ] && s1=$s0
      net=$(json_get "$(stats)" networkBytes)
      python3 -c "t=$t1-$t0; r=$SIZE/t; print(f'| $run | mount ($kind) | {t:.2f} | {r/1e6:.1f} | {r/$plain:.2f} | $net | {$c1-$c0:.1f} | {$s1-$s0:.1f} |')"
      cmp -s "$M/random.bin" "$W/data/random.bin" || echo "| $run | mount ($kind) | CONTENT DIFFERS | | | |"
      unmount
    done
  done
fi

if [[ " $PARTS " == *" b "* ]]; then
  echo
  echo "## (b) cold read over the emulated $RATE link"
  echo "| run | reader | seconds | MB/s | ratio to link | network bytes | CPU s mount | CPU s server |"
  echo "|---|---|---|---|---|---|---|---|"
  for run in $(seq 1 "$RUNS"); do
    mount_fresh http://127.0.0.1:8080 images/big ns
    mp=$(mount_pid); c0=$(cpu "$mp"); s0=$(cpu "${SERVE_PIDS[1]}")
    drop; t0=$(now); cat "$M/random.bin" > /dev/null; t1=$(now)
    c1=$(cpu "$mp"); s1=$(cpu "${SERVE_PIDS[1]}")
    net=$(json_get "$(stats)" networkBytes)
    python3 -c "t=$t1-$t0; r=$SIZE/t; print(f'| $run | mount (remote) | {t:.2f} | {r/1e6:.1f} | {r/$rate_bytes:.2f} | $net | {$c1-$c0:.1f} | {$s1-$s0:.1f} |')"
    cmp -s "$M/random.bin" "$W/data/random.bin" || echo "| $run | mount (remote) | CONTENT DIFFERS | | | |"
    unmount
    # the peer: curl downloading the same bytes as one file over the same link
    drop; t0=$(now); in_ns curl -sf -o /dev/null http://127.0.0.1:8080/v1/images/random.bin; t1=$(now)
    python3 -c "t=$t1-$t0; r=$SIZE/t; print(f'| $run | curl (whole file) | {t:.2f} | {r/1e6:.1f} | {r/$rate_bytes:.2f} | $SIZE | | |')"
  done
fi

if [[ " $PARTS " == *" c "* ]]; then
  echo
  echo "## (c) chroot MOUNT apt-get --version on the standard image, over the $RATE link, fresh cache"
  image_bytes=$(python3 - "$W/base.tar" <<'PY'
import sys, tarfile
print(sum(m.size for m in tarfile.open(sys.argv[1]) if m.isreg()))
PY
)
  echo "# image: $(stat -L -c %s "$W/base.tar") bytes of tar, $image_bytes bytes in regular files"
  echo "| run | mount ready s | first byte s | total s | network bytes | object bytes | % of image | output |"
  echo "|---|---|---|---|---|---|---|---|"
  for run in $(seq 1 "$RUNS"); do
    unmount; rm -rf "$W/cache"; mkdir -p "$M"
    drop
    t0=$(now)
    in_ns "${MOUNT[@]}" http://127.0.0.1:8080 images/base "$M" --cache "$W/cache" >/dev/null
    t1=$(now)
    head -c1 "$M/usr/bin/apt-get" > /dev/null
    t2=$(now)
    out=$(chroot "$M" /bin/sh -c 'apt-get --version')
    out=${out%%$'\n'*}
    t3=$(now)
    s=$(stats)
    net=$(json_get "$s" networkBytes)
    obj=$(json_get "$s" bytesFetched)
    python3 -c "print(f'| $run | {$t1-$t0:.2f} | {$t2-$t0:.2f} | {$t3-$t0:.2f} | $net | $obj | {100*$net/$image_bytes:.2f} | $out |')"
    unmount
  done
fi
