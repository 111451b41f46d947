package org.osfarm.bench.catalog;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.FindQuery;
import org.osfarm.catalog.Match;
import org.osfarm.catalog.PackageSpec;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;

/**
 * How much the benchmark queries return (snapshots matched, entries listed), and the catalog's
 * size, for the report next to the timings. Run: {@code java -cp bench/target/benchmarks.jar
 * org.osfarm.bench.catalog.CatalogQuerySizes DIR}.
 */
public final class CatalogQuerySizes {
  private CatalogQuerySizes() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    List<String> paths = Files.readAllLines(dir.resolve("keys-paths.txt"));
    List<String> digests = Files.readAllLines(dir.resolve("keys-digests.txt"));
    List<String> packages = Files.readAllLines(dir.resolve("keys-packages.txt"));
    try (Repository repo = Repository.open(dir.resolve("repo"));
        Catalog c = Catalog.open(repo)) {
      c.sync();
      FindQuery.Builder p = FindQuery.builder();
      paths.forEach(p::path);
      report("path, 1 key", c.find(FindQuery.builder().path(paths.get(0)).build()));
      report("path, 1000 keys", c.find(p.build()));
      FindQuery.Builder d = FindQuery.builder();
      digests.forEach(h -> d.digest(Digest.fromHex(h)));
      report(
          "digest, 1 key",
          c.find(FindQuery.builder().digest(Digest.fromHex(digests.get(0))).build()));
      report("digest, 1000 keys", c.find(d.build()));
      long snaps = 0;
      long entries = 0;
      for (int i = 0; i < 1000; i++) {
        List<Match> m =
            c.find(
                FindQuery.builder()
                    .pkg(PackageSpec.parse(packages.get(i % packages.size())))
                    .build());
        snaps += m.size();
        entries += m.stream().mapToLong(x -> x.entries().size()).sum();
      }
      System.out.printf(
          "package, 1000 lookups (%d distinct names): %d snapshot matches, %d entries%n",
          packages.size(), snaps, entries);
      System.out.printf(
          "snapshots: %d; catalog.db: %d bytes; repository objects: %d bytes%n",
          c.find(FindQuery.builder().path("etc").build()).size(),
          Files.size(dir.resolve("repo").resolve(Catalog.DB_FILE)),
          repo.store().storedBytes());
    }
  }

  private static void report(String what, List<Match> m) {
    System.out.printf(
        "%s: %d snapshots, %d entries%n",
        what, m.size(), m.stream().mapToLong(x -> x.entries().size()).sum());
  }
}
