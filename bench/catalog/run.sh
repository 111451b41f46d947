#!/usr/bin/env bash
# Catalog benchmarks (docs/catalog.md, issue 6):
#   1. queries: a repository of 1000 snapshots (the eight bench images + 992 per-host overlays),
#      find by path, digest and package, 1 key and 1000 keys (JMH, CatalogQueryBenchmark);
#   2. what those queries return, and the catalog's size (CatalogQuerySizes);
#   3. memoized install (first vs memoized, three package sets) and 100 overlays' storage
#      (InstallMemoBench; needs network to deb.debian.org).
# Usage: bench/catalog/run.sh [WORKDIR]   (default /tmp/osfarm-bench-catalog)
# Images: ~/.cache/osfarm/bench-images/{min,base,wiki,dev,min-i386,min-bullseye,batch1,batch2}.tar
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/tmp/osfarm-bench-catalog}
JAVA_HOME=$("$here/scripts/java-home")
export JAVA_HOME
java=("$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx3g)
(cd "$here" && ./mvnw -B -q -DskipTests -Dspotless.check.skip=true package -pl bench -am >&2)
jar="$here/bench/target/benchmarks.jar"
"${java[@]}" -cp "$jar" org.osfarm.bench.catalog.CatalogBenchRepository "$W"
"${java[@]}" -jar "$jar" CatalogQuery -jvmArgsAppend "-Dosfarm.bench.catalog=$W"
"${java[@]}" -cp "$jar" org.osfarm.bench.catalog.CatalogQuerySizes "$W"
"${java[@]}" -cp "$jar" org.osfarm.bench.catalog.InstallMemoBench "$W/install"
