# Sourced by the osfarm launcher and the benchmarks (so that they measure what users run):
# osfarm_jvm_options ARGS... prints the JVM options the launcher adds for that command line's
# subcommand, space-separated (nothing for most).
#
# fetch and mount run C1 alone (-XX:TieredStopAtLevel=1): their byte work is native (SHA-256 by
# libcrypto, zstd, copies, the kernel), and a fetch lives a second or two, a mount's first read
# about as long, so C2's compiles cost more CPU than its code returns (docs/benchmarks.md: paired
# runs on 2 cores). Everything else (publish's chunking, build, serve) keeps tiered compilation.
osfarm_jvm_options() {
  local cmd=""
  while [ $# -gt 0 ]; do
    case $1 in
      --repo) [ $# -ge 2 ] || break; shift 2 ;;
      -*) shift ;;
      *) cmd=$1; break ;;
    esac
  done
  case $cmd in
    fetch | mount) osfarm_native_sha256 && echo "-XX:TieredStopAtLevel=1" ;;
  esac
  return 0
}

# True if osfarm will hash with libcrypto (docs/repository.md, "Hashing"): without it, SHA-256
# needs C2 (C1 alone hashes at a tenth of the speed), so C1 alone is not chosen.
osfarm_native_sha256() {
  case " ${OSFARM_JAVA_OPTS:-} " in *" -Dosfarm.nativeSha256=false "*) return 1 ;; esac
  local d
  for d in /lib/*-linux-gnu /usr/lib/*-linux-gnu /lib64 /usr/lib64 /usr/local/lib; do
    [ -e "$d/libcrypto.so.3" ] && return 0
  done
  return 1
}
