package org.osfarm.bench.catalog;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.FindQuery;
import org.osfarm.catalog.Match;
import org.osfarm.catalog.PackageSpec;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;

/**
 * {@code find} against 1000 snapshots (see {@link CatalogBenchRepository}): one key, and 1000 keys
 * in one query, by path, digest and package (1000 package lookups: one query per key, since
 * --package conditions intersect). Each call returns every matching (snapshot, entry); the key sets
 * are files sampled from the images, so a key typically matches every overlay of its image (about
 * 125 snapshots). Run: {@code bench/catalog/run.sh}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
    value = 1,
    jvmArgs = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class CatalogQueryBenchmark {
  private Repository repo;
  private Catalog catalog;
  private List<String> paths;
  private List<Digest> digests;
  private List<String> packages;
  private int next;

  @Setup(Level.Trial)
  public void open() throws IOException {
    Path dir = Path.of(System.getProperty("osfarm.bench.catalog", "/tmp/osfarm-bench-catalog"));
    if (!Files.exists(dir.resolve("keys-digests.txt"))) {
      throw new IllegalStateException(
          dir + " is not built: run bench/catalog/run.sh (or CatalogBenchRepository)");
    }
    repo = Repository.open(dir.resolve("repo"));
    catalog = Catalog.open(repo);
    catalog.sync();
    paths = Files.readAllLines(dir.resolve("keys-paths.txt"));
    digests = new ArrayList<>();
    for (String h : Files.readAllLines(dir.resolve("keys-digests.txt"))) {
      digests.add(Digest.fromHex(h));
    }
    packages = Files.readAllLines(dir.resolve("keys-packages.txt"));
  }

  @TearDown(Level.Trial)
  public void close() {
    catalog.close();
    repo.close();
  }

  private int nextIndex(int n) {
    next = (next + 7) % n;
    return next;
  }

  @Benchmark
  public List<Match> pathOne() {
    return catalog.find(FindQuery.builder().path(paths.get(nextIndex(paths.size()))).build());
  }

  @Benchmark
  public List<Match> path1000() {
    FindQuery.Builder q = FindQuery.builder();
    paths.forEach(q::path);
    return catalog.find(q.build());
  }

  @Benchmark
  public List<Match> digestOne() {
    return catalog.find(FindQuery.builder().digest(digests.get(nextIndex(digests.size()))).build());
  }

  @Benchmark
  public List<Match> digest1000() {
    FindQuery.Builder q = FindQuery.builder();
    digests.forEach(q::digest);
    return catalog.find(q.build());
  }

  @Benchmark
  public List<Match> packageOne() {
    return catalog.find(
        FindQuery.builder()
            .pkg(PackageSpec.parse(packages.get(nextIndex(packages.size()))))
            .build());
  }

  @Benchmark
  public void package1000(Blackhole bh) {
    for (int i = 0; i < 1000; i++) {
      bh.consume(
          catalog.find(
              FindQuery.builder()
                  .pkg(PackageSpec.parse(packages.get(i % packages.size())))
                  .build()));
    }
  }

  @Benchmark
  public List<Match> pathOneLatest() {
    return catalog.find(
        FindQuery.builder().path(paths.get(nextIndex(paths.size()))).latest(true).build());
  }
}
