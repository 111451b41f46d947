#!/usr/bin/env bash
# repo-peers.sh — compare osfarm with peer content-addressed stores on the
# same eight real Debian image trees.
#
# For each tool (restic, borg, ostree, casync, and osfarm when $OSFARM is set)
# and each run, starting from an empty repository:
#   publish  all eight images one after the other (dedup across them counts),
#   measure  bytes kept (du -sb of the repository / store),
#   restore  all eight into a fresh directory.
# Caches are dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every
# timed command; publish and export times are the sums over the eight images.
# The median over --runs runs is reported.
#
# Usage: sudo bench/repo-peers.sh [options] [IMAGE_DIR [WORK_DIR]]
#   --images DIR   image tars NAME.tar (default $OSFARM_BENCH_IMAGES or
#                  ~/.cache/osfarm/bench-images)
#   --work DIR     scratch dir for trees, repos, restores, results
#                  (default $OSFARM_BENCH_WORK or /var/tmp/osfarm-bench)
#   --runs N       runs per tool, median reported (default 3)
#   --tools LIST   comma list out of restic,borg,ostree,casync (default all)
#   --no-peers     run only osfarm (needs $OSFARM)
#   --keep         keep the last run's restored trees
#   -h, --help
# Environment:
#   OSFARM          osfarm launcher (path, or a command line such as
#                   "java -jar cli/target/osfarm.jar"); when set, osfarm is run too:
#                     $OSFARM --repo DIR publish TAR --ref bench/NAME
#                     $OSFARM --repo DIR export bench/NAME -o OUT --format dir
#   OSFARM_BENCH_NAMES  space-separated image names (default the eight below)
#   RESTIC_PASSWORD     restic repository password (default a fixed bench one)
#
# Output: a markdown table on stdout; raw numbers as TSV in WORK_DIR
# (repo-peers-<stamp>.tsv per image and run, repo-peers-<stamp>-summary.tsv).
# Progress goes to stderr. Must run as root (ownership, device nodes,
# drop_caches).
set -euo pipefail

NAMES_DEFAULT="min base wiki dev min-i386 min-bullseye batch1 batch2"
ALL_PEERS="restic borg ostree casync"

images="${OSFARM_BENCH_IMAGES:-$HOME/.cache/osfarm/bench-images}"
work="${OSFARM_BENCH_WORK:-/var/tmp/osfarm-bench}"
runs=3
peers="$ALL_PEERS"
keep=0
pos=()

die() { echo "repo-peers: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --images) [ $# -ge 2 ] || die "--images needs a value"; images="$2"; shift 2 ;;
    --images=*) images="${1#*=}"; shift ;;
    --work) [ $# -ge 2 ] || die "--work needs a value"; work="$2"; shift 2 ;;
    --work=*) work="${1#*=}"; shift ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a value"; runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --tools) [ $# -ge 2 ] || die "--tools needs a value"; peers="${2//,/ }"; shift 2 ;;
    --tools=*) peers="${1#*=}"; peers="${peers//,/ }"; shift ;;
    --no-peers) peers=""; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; pos+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) pos+=("$1"); shift ;;
  esac
done
[ ${#pos[@]} -ge 1 ] && images="${pos[0]}"
[ ${#pos[@]} -ge 2 ] && work="${pos[1]}"
[ ${#pos[@]} -le 2 ] || die "too many arguments (see --help)"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$runs'"
for p in $peers; do
  case " $ALL_PEERS " in *" $p "*) ;; *) die "unknown tool '$p' (known: $ALL_PEERS)" ;; esac
done

# ---------------------------------------------------------------- preflight
[ "$(id -u)" -eq 0 ] || die "must run as root (extracting image trees with owners and device nodes, dropping caches)"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable; cannot drop caches"

need() { # need CMD DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install it (apt-get install $2)"
}
need tar tar; need du coreutils; need awk mawk; need sort coreutils
for p in $peers; do
  case "$p" in
    restic) need restic restic ;;
    borg)   need borg borgbackup ;;
    ostree) need ostree ostree ;;
    casync) need casync casync ;;
  esac
done

osfarm_cmd=()
if [ -n "${OSFARM:-}" ]; then
  if [ -x "$OSFARM" ] && [ ! -d "$OSFARM" ]; then
    osfarm_cmd=("$OSFARM")
  else
    read -r -a osfarm_cmd <<<"$OSFARM"
    [ ${#osfarm_cmd[@]} -gt 0 ] || die "\$OSFARM is blank"
    command -v "${osfarm_cmd[0]}" >/dev/null 2>&1 || die "\$OSFARM='$OSFARM': '${osfarm_cmd[0]}' is not an executable"
  fi
fi
tools="$peers"
[ ${#osfarm_cmd[@]} -gt 0 ] && tools="$tools osfarm"
tools="$(echo $tools)"
[ -n "$tools" ] || die "nothing to run: --no-peers given and \$OSFARM is not set"

[ -d "$images" ] || die "image directory '$images' does not exist (build the images first)"
read -r -a names <<<"${OSFARM_BENCH_NAMES:-$NAMES_DEFAULT}"
[ ${#names[@]} -gt 0 ] || die "OSFARM_BENCH_NAMES is empty"
for n in "${names[@]}"; do
  [ -f "$images/$n.tar" ] || die "missing image $images/$n.tar"
done

mkdir -p "$work"
work="$(cd "$work" && pwd)"
images="$(cd "$images" && pwd)"
export RESTIC_PASSWORD="${RESTIC_PASSWORD:-osfarm-bench-fixed-password}"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR="$work/borg-home"   # keep borg's cache/security dirs in the work dir

stamp="$(date +%Y%m%d-%H%M%S)"
tsv="$work/repo-peers-$stamp.tsv"
summary="$work/repo-peers-$stamp-summary.tsv"

# ------------------------------------------------------------------ helpers
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }
median() { # numbers as args
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit 1
    if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
    else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
elapsed=0
# timed LOGFILE CMD...: drop caches, run CMD (output to LOGFILE), set $elapsed
timed() {
  local logf="$1" t0 t1 rc=0; shift
  drop_caches
  t0=$(now)
  "$@" >>"$logf" 2>&1 || rc=$?
  t1=$(now)
  if [ $rc -ne 0 ]; then
    echo "repo-peers: error: command failed (exit $rc): $*" >&2
    echo "--- last lines of $logf:" >&2; tail -n 20 "$logf" >&2
    exit 1
  fi
  elapsed=$(fsub "$t1" "$t0")
}
# in_dir DIR CMD...: run CMD with DIR as working directory
in_dir() { local d="$1"; shift; (cd "$d" && "$@"); }
bytes_of() { du -sb "$@" | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# ----------------------------------------------------------- extract trees
trees="$work/trees"
nodev="$work/trees-nodev"
mkdir -p "$trees" "$nodev"
for n in "${names[@]}"; do
  tarf="$images/$n.tar"
  sig="$(stat -c '%s %Y' "$tarf")"
  if [ -f "$trees/.$n.done" ] && [ "$(cat "$trees/.$n.done")" = "$sig" ]; then
    continue
  fi
  log "extracting $n.tar"
  rm -rf "$trees/$n" "$nodev/$n" "$trees/.$n.done"
  mkdir -p "$trees/$n"
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$tarf" -C "$trees/$n" \
    || die "extracting $tarf failed"
  echo "$sig" >"$trees/.$n.done"
done
# ostree refuses device nodes: it commits a hardlinked copy of each tree with
# /dev emptied (cheap; the original tree is untouched).
for n in "${names[@]}"; do
  if [ ! -f "$nodev/.$n.done" ] || [ "$nodev/.$n.done" -ot "$trees/.$n.done" ]; then
    case " $peers " in *" ostree "*) ;; *) continue ;; esac
    log "making /dev-less copy of $n for ostree"
    rm -rf "$nodev/$n" "$nodev/.$n.done"
    cp -a --link "$trees/$n" "$nodev/$n"
    if [ -d "$nodev/$n/dev" ]; then
      find "$nodev/$n/dev" -mindepth 1 -delete
    fi
    touch "$nodev/.$n.done"
  fi
done
input_bytes=$(bytes_of "${names[@]/#/$trees/}")
tar_bytes=$(for n in "${names[@]}"; do stat -c %s "$images/$n.tar"; done | awk '{ s += $1 } END { printf "%.0f\n", s }')

# ----------------------------------------------------- per-tool operations
# Each tool defines: <tool>_init REPO, <tool>_publish REPO NAME,
# <tool>_export REPO NAME OUTDIR (OUTDIR/NAME does not exist yet).
restic_init()    { restic -r "$1" init; }
restic_publish() { in_dir "$trees/$2" restic -r "$1" --no-cache backup --tag "$2" --host osfarm-bench .; }
restic_export()  { restic -r "$1" --no-cache restore latest --tag "$2" --host osfarm-bench --target "$3/$2"; }

borg_init()      { borg init -e none "$1"; }
borg_publish()   { in_dir "$trees/$2" borg create --numeric-ids --compression lz4 "$1::$2" .; }
borg_export()    { mkdir -p "$3/$2" && in_dir "$3/$2" borg extract --numeric-ids "$1::$2"; }

ostree_init()    { ostree --repo="$1" init --mode=archive; }
ostree_publish() { ostree --repo="$1" commit --branch="bench/$2" --subject="$2" --tree=dir="$nodev/$2"; }
ostree_export()  { ostree --repo="$1" checkout "bench/$2" "$3/$2"; }

casync_init()    { mkdir -p "$1/store" "$1/index"; }
casync_publish() { casync make --store="$1/store" "$1/index/$2.caidx" "$trees/$2"; }
casync_export()  { casync extract --store="$1/store" "$1/index/$2.caidx" "$3/$2"; }

osfarm_init()    { mkdir -p "$1"; }
osfarm_publish() { "${osfarm_cmd[@]}" --repo "$1" publish "$images/$2.tar" --ref "bench/$2"; }
osfarm_export()  { "${osfarm_cmd[@]}" --repo "$1" export "bench/$2" -o "$3/$2" --format dir; }

# A restored tree must look like a root filesystem (catches path nesting).
check_restored() {
  local tool="$1" d="$2"
  [ -f "$d/etc/os-release" ] || [ -L "$d/etc/os-release" ] \
    || die "$tool: restored tree $d has no etc/os-release (wrong layout?)"
}

# ---------------------------------------------------------------- the runs
printf 'tool\trun\timage\tbytes_kept\tpublish_s\texport_s\n' >"$tsv"
declare -A med_bytes med_pub med_exp
log "tools: $tools; images: ${names[*]}; runs: $runs; work: $work"
for tool in $tools; do
  bl=(); pl=(); el=()
  for ((r = 1; r <= runs; r++)); do
    repo="$work/repo-$tool"
    out="$work/restore-$tool"
    logf="$work/$tool.log"
    rm -rf "$repo" "$out"
    [ "$tool" = borg ] && rm -rf "$BORG_BASE_DIR"
    : >"$logf"
    "${tool}_init" "$repo" >>"$logf" 2>&1 || { tail -n 20 "$logf" >&2; die "$tool: init failed (log: $logf)"; }
    pub=0; declare -A pt=() et=()
    for n in "${names[@]}"; do
      timed "$logf" "${tool}_publish" "$repo" "$n"
      pt[$n]=$elapsed; pub=$(fadd "$pub" "$elapsed")
      log "$tool run $r: published $n in ${elapsed}s"
    done
    sync
    bytes=$(bytes_of "$repo")
    mkdir -p "$out"
    exp=0
    for n in "${names[@]}"; do
      timed "$logf" "${tool}_export" "$repo" "$n" "$out"
      et[$n]=$elapsed; exp=$(fadd "$exp" "$elapsed")
      check_restored "$tool" "$out/$n"
      log "$tool run $r: exported $n in ${elapsed}s"
    done
    for n in "${names[@]}"; do
      printf '%s\t%d\t%s\t\t%s\t%s\n' "$tool" "$r" "$n" "${pt[$n]}" "${et[$n]}" >>"$tsv"
    done
    printf '%s\t%d\tALL\t%s\t%s\t%s\n' "$tool" "$r" "$bytes" "$pub" "$exp" >>"$tsv"
    log "$tool run $r: kept $bytes bytes, publish ${pub}s, export ${exp}s"
    bl+=("$bytes"); pl+=("$pub"); el+=("$exp")
    unset pt et
    if [ $keep -eq 0 ] || [ $r -lt $runs ]; then rm -rf "$out"; fi
  done
  med_bytes[$tool]=$(median "${bl[@]}")
  med_pub[$tool]=$(median "${pl[@]}")
  med_exp[$tool]=$(median "${el[@]}")
done

# ------------------------------------------------------------------ report
printf 'tool\truns\tbytes_kept\tpublish_s\texport_s\n' >"$summary"
for tool in $tools; do
  printf '%s\t%d\t%.0f\t%s\t%s\n' "$tool" "$runs" "${med_bytes[$tool]}" "${med_pub[$tool]}" "${med_exp[$tool]}" >>"$summary"
done
printf 'input\t-\t%s\t-\t-\n' "$input_bytes" >>"$summary"
printf 'tars\t-\t%s\t-\t-\n' "$tar_bytes" >>"$summary"

has_osfarm=0; [ ${#osfarm_cmd[@]} -gt 0 ] && has_osfarm=1
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
echo "Repository peers on ${#names[@]} images (${names[*]}); median of $runs run(s); MB = 10^6 bytes."
echo "Input: $(mb "$input_bytes") MB extracted trees, $(mb "$tar_bytes") MB of tars. Caches dropped before every timed command."
echo
if [ $has_osfarm -eq 1 ]; then
  echo "| tool | bytes kept MB | publish s | export s | kept × osfarm | publish × osfarm | export × osfarm |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
else
  echo "| tool | bytes kept MB | publish s | export s |"
  echo "|---|---:|---:|---:|"
fi
for tool in $tools; do
  row="| $tool | $(mb "${med_bytes[$tool]}") | ${med_pub[$tool]} | ${med_exp[$tool]} |"
  if [ $has_osfarm -eq 1 ]; then
    row="$row $(ratio "${med_bytes[$tool]}" "${med_bytes[osfarm]}") | $(ratio "${med_pub[$tool]}" "${med_pub[osfarm]}") | $(ratio "${med_exp[$tool]}" "${med_exp[osfarm]}") |"
  fi
  echo "$row"
done
echo
echo "Raw numbers: $tsv (summary: $summary)"
