package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.build.OutputFormat;
import org.osfarm.core.Digest;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;

class DownloadsTest {
  @TempDir Path tmp;

  private static Digest publish(Repository repo, Path tree, String name, int seed)
      throws Exception {
    Files.createDirectories(tree.resolve("etc"));
    Files.writeString(tree.resolve("etc/hostname"), name + "\n");
    byte[] b = new byte[200 * 1024];
    new Random(seed).nextBytes(b); // incompressible, so each tar export is over 200 KiB
    Files.write(tree.resolve("blob"), b);
    return repo.publish(
            new DirectorySource(tree, ProgressListener.NONE),
            "images/" + name,
            name,
            Map.of(),
            ProgressListener.NONE)
        .snapshot();
  }

  @Test
  void exportsStayUnderTheLimitAndTheLeastRecentlyServedGoFirst() throws Exception {
    try (Repository repo = Repository.init(tmp.resolve("repo"))) {
      Digest a = publish(repo, tmp.resolve("a"), "a", 1);
      Digest b = publish(repo, tmp.resolve("b"), "b", 2);
      Digest c = publish(repo, tmp.resolve("c"), "c", 3);
      Path exports = tmp.resolve("exports");
      ServerMetrics metrics = new ServerMetrics();
      // room for two exports of about 210 KiB, not three
      Downloads d =
          new Downloads(
              exports, tmp.resolve("work"), 1, 4, Duration.ofMinutes(1), 500 * 1024, metrics);

      Downloads.Prepared pa = d.export(repo, a, OutputFormat.TAR);
      String shaA = pa.sha256();
      Downloads.Prepared pb = d.export(repo, b, OutputFormat.TAR);
      assertThat(Files.size(pa.file()) + Files.size(pb.file())).isLessThan(500 * 1024);
      assertThat(Files.size(pa.file())).isGreaterThan(200 * 1024);
      // a was made first but served again after b: b is the least recently served
      Files.setLastModifiedTime(pa.file(), FileTime.from(Instant.now().minusSeconds(60)));
      Files.setLastModifiedTime(pb.file(), FileTime.from(Instant.now().minusSeconds(30)));
      assertThat(d.export(repo, a, OutputFormat.TAR).file()).isEqualTo(pa.file());
      assertThat(metrics.exportsWritten.count()).isEqualTo(2.0);

      Downloads.Prepared pc = d.export(repo, c, OutputFormat.TAR);
      assertThat(pc.file()).exists();
      assertThat(pa.file()).exists();
      assertThat(pb.file()).doesNotExist();
      assertThat(exports.resolve(pb.file().getFileName() + ".sha256")).doesNotExist();
      assertThat(metrics.exportsEvicted.count()).isEqualTo(1.0);

      // an evicted export is made again on demand, byte for byte the same
      Downloads.Prepared again = d.export(repo, b, OutputFormat.TAR);
      assertThat(again.sha256()).isEqualTo(pb.sha256());
      assertThat(metrics.exportsWritten.count()).isEqualTo(4.0);
      long total;
      try (var s = Files.list(exports)) {
        total =
            s.filter(p -> !p.getFileName().toString().endsWith(".sha256"))
                .mapToLong(
                    p -> {
                      try {
                        return Files.size(p);
                      } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                      }
                    })
                .sum();
      }
      assertThat(total).isLessThanOrEqualTo(500 * 1024);
      assertThat(d.export(repo, a, OutputFormat.TAR).sha256()).isEqualTo(shaA);
    }
  }

  @Test
  void anExportLargerThanTheLimitIsStillServed() throws Exception {
    try (Repository repo = Repository.init(tmp.resolve("repo"))) {
      Digest a = publish(repo, tmp.resolve("a"), "a", 1);
      ServerMetrics metrics = new ServerMetrics();
      Downloads d =
          new Downloads(
              tmp.resolve("exports"), tmp.resolve("work"), 1, 4, Duration.ofMinutes(1), 0, metrics);
      Downloads.Prepared p = d.export(repo, a, OutputFormat.TAR);
      assertThat(p.file()).exists();
      assertThat(metrics.exportsEvicted.count()).isZero();
    }
  }
}
