package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A build's work directory gets ext4's top-directory flag ({@link ImageBuilder#spreadInodes}). */
class WorkDirPlacementTest {
  @TempDir Path tmp;

  @Test
  void workDirectoryIsATopDirectory() throws Exception {
    assumeTrue(canFlag(tmp), "the file system under " + tmp + " has no top-directory flag");
    Path work = Files.createDirectory(tmp.resolve("work"));
    assertThat(hasTopFlag(work)).isFalse();
    ImageBuilder.spreadInodes(work);
    assertThat(hasTopFlag(work)).isTrue();
  }

  @Test
  void propertyLeavesItOff() throws Exception {
    assumeTrue(canFlag(tmp), "the file system under " + tmp + " has no top-directory flag");
    Path work = Files.createDirectory(tmp.resolve("work"));
    String before = System.getProperty("osfarm.build.topdir");
    System.setProperty("osfarm.build.topdir", "false");
    try {
      ImageBuilder.spreadInodes(work);
    } finally {
      if (before == null) {
        System.clearProperty("osfarm.build.topdir");
      } else {
        System.setProperty("osfarm.build.topdir", before);
      }
    }
    assertThat(hasTopFlag(work)).isFalse();
  }

  @Test
  void aFileSystemWithoutTheFlagIsNoError() {
    // /proc knows no inode flags: chattr fails, and the build goes on
    assertThatCode(() -> ImageBuilder.spreadInodes(Path.of("/proc/self")))
        .doesNotThrowAnyException();
  }

  private static boolean canFlag(Path dir) throws IOException, InterruptedException {
    Path probe = Files.createDirectory(dir.resolve("probe"));
    Process p =
        new ProcessBuilder("chattr", "+T", probe.toString()).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    return p.waitFor() == 0 && hasTopFlag(probe);
  }

  /** lsattr's flag column of {@code dir} has the T. */
  private static boolean hasTopFlag(Path dir) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder("lsattr", "-d", dir.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException("lsattr -d " + dir + ": " + out);
    }
    return out.strip().split("\\s+")[0].contains("T");
  }
}
