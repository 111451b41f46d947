package org.osfarm.bench.catalog;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Overlay;
import org.osfarm.catalog.PackageInfo;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.EntryType;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;

/**
 * The repository the query benchmarks run against, built once and kept: the eight benchmark images
 * ({@code ~/.cache/osfarm/bench-images/*.tar}) published, then per-host overlays of them (a
 * hostname, a motd, and for every tenth an extra 64 KiB file) up to {@value #SNAPSHOTS} snapshots,
 * each indexed as it is made. Also writes the keys the benchmarks look up: 1000 paths and 1000
 * digests of files sampled from the images (seed 42), and every package name.
 *
 * <p>Run: {@code java -cp bench/target/benchmarks.jar
 * org.osfarm.bench.catalog.CatalogBenchRepository DIR [IMAGES_DIR]}.
 */
public final class CatalogBenchRepository {
  static final int SNAPSHOTS = 1000;
  static final String[] IMAGES = {
    "min", "base", "wiki", "dev", "min-i386", "min-bullseye", "batch1", "batch2"
  };

  private CatalogBenchRepository() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Path images =
        args.length > 1
            ? Path.of(args[1])
            : Path.of(System.getProperty("user.home"), ".cache", "osfarm", "bench-images");
    build(dir, images);
  }

  static void build(Path dir, Path images) throws IOException {
    if (Files.exists(dir.resolve("keys-digests.txt"))) {
      System.err.println(dir + ": already built");
      return;
    }
    long t0 = System.nanoTime();
    try (Repository repo = Repository.init(dir.resolve("repo"));
        Catalog catalog = Catalog.open(repo)) {
      List<Digest> bases = new ArrayList<>();
      for (String name : IMAGES) {
        long t = System.nanoTime();
        try (TarSource s = TarSource.open(images.resolve(name + ".tar"))) {
          bases.add(
              repo.publish(s, "images/" + name, name, Map.of(), ProgressListener.NONE).snapshot());
        }
        System.err.printf(
            "published %s in %.1f s (indexed by the publish hook)%n",
            name, (System.nanoTime() - t) / 1e9);
      }
      Path tmp = Files.createTempDirectory("osfarm-bench-catalog");
      Random rnd = new Random(42);
      long t = System.nanoTime();
      for (int i = bases.size(); i < SNAPSHOTS; i++) {
        int b = i % bases.size();
        Path motd = tmp.resolve("motd");
        Files.writeString(motd, "node " + i + " of " + IMAGES[b] + "\n");
        Map<String, Path> set = new java.util.LinkedHashMap<>();
        set.put("etc/motd", motd);
        if (i % 10 == 0) {
          byte[] data = new byte[64 * 1024];
          rnd.nextBytes(data);
          Path tool = tmp.resolve("tool");
          Files.write(tool, data);
          set.put("usr/local/bin/tool-" + i, tool);
        }
        Overlay.create(
            catalog,
            bases.get(b),
            "hosts/" + IMAGES[b] + "/node" + i,
            new Overlay.Spec(set, List.of(), "node" + i, null));
      }
      System.err.printf(
          "made %d overlays in %.1f s%n", SNAPSHOTS - bases.size(), (System.nanoTime() - t) / 1e9);

      // keys: files sampled from the eight images
      List<String> paths = new ArrayList<>();
      List<String> digests = new ArrayList<>();
      for (Digest base : bases) {
        List<String[]> files = new ArrayList<>();
        repo.walk(
            base,
            (p, e) -> {
              if (e.type() == EntryType.FILE) {
                files.add(new String[] {Bytes.escape(p), e.fileDigest().hex()});
              }
            });
        Collections.shuffle(files, rnd);
        for (String[] f : files.subList(0, 125)) {
          paths.add(f[0]);
          digests.add(f[1]);
        }
      }
      TreeSet<String> packages = new TreeSet<>();
      for (Digest base : bases) {
        for (PackageInfo p : catalog.packages(base)) {
          packages.add(p.name());
        }
      }
      Files.write(dir.resolve("keys-paths.txt"), paths, StandardCharsets.UTF_8);
      Files.write(
          dir.resolve("keys-packages.txt"), new LinkedHashSet<>(packages), StandardCharsets.UTF_8);
      Files.write(dir.resolve("keys-digests.txt"), digests, StandardCharsets.UTF_8);
    }
    System.err.printf("built %s in %.1f s%n", dir, (System.nanoTime() - t0) / 1e9);
  }
}
