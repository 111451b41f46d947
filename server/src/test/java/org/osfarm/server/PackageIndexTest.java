package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Package search over a real index: this machine's dpkg database laid out as a file: mirror. */
class PackageIndexTest {
  @TempDir Path tmp;

  @Test
  void searchesARealIndexRankingNamesFirst() throws Exception {
    Path status = Path.of("/var/lib/dpkg/status");
    assumeTrue(Files.exists(status), "needs a Debian system");
    Path dir = tmp.resolve("mirror/dists/bookworm/main/binary-amd64");
    Files.createDirectories(dir);
    try (OutputStream out =
        new GZIPOutputStream(Files.newOutputStream(dir.resolve("Packages.gz")))) {
      Files.copy(status, out);
    }
    PackageIndex idx = new PackageIndex(tmp.resolve("cache"), Duration.ofHours(1));
    String mirror = tmp.resolve("mirror").toUri().toString();
    List<PackageIndex.Package> all = idx.packages(mirror, "bookworm", "main", "amd64");
    assertThat(all.size()).isGreaterThan(50);
    List<PackageIndex.Package> r = idx.search(mirror, "bookworm", "main", "amd64", "coreutils", 10);
    assertThat(r.getFirst().name()).isEqualTo("coreutils");
    assertThat(r.getFirst().version()).isNotBlank();
    List<PackageIndex.Package> lib = idx.search(mirror, "bookworm", "main", "amd64", "libc", 20);
    assertThat(lib)
        .hasSizeLessThanOrEqualTo(20)
        .allMatch(p -> p.name().contains("libc") || p.description().toLowerCase().contains("libc"));
    assertThat(idx.search(mirror, "bookworm", "main", "amd64", "zzz-no-such-package", 10))
        .isEmpty();
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> idx.packages(mirror, "../../etc", "main", "amd64"))
        .isInstanceOf(Problem.class);
  }
}
