package org.osfarm.bench.catalog;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Installer;
import org.osfarm.catalog.Overlay;
import org.osfarm.core.Digest;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;

/**
 * Memoized install and overlay cost on the {@code min} benchmark image (Debian bookworm minbase):
 * for each package set, the first install (apt-get from deb.debian.org in the user namespace) into
 * the image, then the same set into a per-host clone of it (answered from the memo); and the
 * storage of 100 per-host overlays. Needs network. Run: {@code java -cp bench/target/benchmarks.jar
 * org.osfarm.bench.catalog.InstallMemoBench WORKDIR [IMAGE.tar]}.
 */
public final class InstallMemoBench {
  private InstallMemoBench() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Path image =
        args.length > 1
            ? Path.of(args[1])
            : Path.of(System.getProperty("user.home"), ".cache/osfarm/bench-images/min.tar");
    Files.createDirectories(dir);
    Path repoDir = Files.createTempDirectory(dir, "repo-");
    try (Repository repo = Repository.init(repoDir);
        Catalog catalog = Catalog.open(repo)) {
      Digest min;
      try (TarSource s = TarSource.open(image)) {
        min = repo.publish(s, "images/min", "min", Map.of(), ProgressListener.NONE).snapshot();
      }
      long before = repo.store().storedBytes();
      Digest clone = null;
      for (int i = 0; i < 100; i++) {
        Path motd = dir.resolve("motd");
        Files.writeString(motd, "node " + i + "\n");
        clone =
            Overlay.create(
                    catalog,
                    min,
                    "hosts/node" + i,
                    new Overlay.Spec(Map.of("etc/motd", motd), List.of(), "node" + i, null))
                .snapshot();
      }
      repo.store().refresh();
      System.out.printf(
          "| 100 per-host overlays (hostname, hosts, motd) of min | %d bytes stored in total |%n",
          repo.store().storedBytes() - before);
      for (List<String> pkgs : List.of(List.of("hello"), List.of("curl"), List.of("python3"))) {
        long t0 = System.nanoTime();
        Installer.Result a =
            Installer.install(catalog, min, pkgs, "images/min-" + pkgs.get(0), false, null);
        double first = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        Installer.Result b =
            Installer.install(catalog, clone, pkgs, "hosts/node99-" + pkgs.get(0), false, null);
        double memo = (System.nanoTime() - t0) / 1e9;
        if (a.memoized() || !b.memoized()) {
          throw new IllegalStateException("expected a first run and a memo hit");
        }
        System.out.printf(
            "| install %s: first (apt) %.2f s, memoized into a clone %.3f s | %.0fx |%n",
            String.join(" ", pkgs), first, memo, first / memo);
      }
    }
  }
}
