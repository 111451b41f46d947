package org.osfarm.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The training run of the {@code osfarm} launcher's class-data-sharing archive: the launcher runs
 * it with {@code -XX:ArchiveClassesAtExit} after each rebuild of the jar (a stale archive is
 * rejected, and the JVM's {@code -XX:+AutoCreateSharedArchive} does not replace an archive that
 * fails on a changed jar). It touches what start-up and the common commands load: every command's
 * model (help), the class list, a build request that misses the request cache and fails in planning
 * (no network, nothing built), and a detached process start.
 */
final class CdsTraining {
  private CdsTraining() {}

  static void run() throws IOException, InterruptedException {
    PrintWriter none = new PrintWriter(Writer.nullWriter());
    Path tmp = Files.createTempDirectory("osfarm-cds");
    try {
      Main.run(new String[] {"--help"}, none, none);
      Main.run(new String[] {"classes"}, none, none);
      Main.run(new String[] {"build", "--help"}, none, none);
      Main.run(
          new String[] {
            "--repo",
            tmp.resolve("repo").toString(),
            "build",
            "--cache-dir",
            tmp.resolve("cache").toString(),
            "--class",
            "osfarm-cds-training",
            "-g",
            "core",
            "-p",
            "x",
            "-o",
            tmp.resolve("out.tar").toString()
          },
          none,
          none);
      new ProcessBuilder("true")
          .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
          .redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .redirectError(ProcessBuilder.Redirect.DISCARD)
          .start()
          .waitFor();
    } finally {
      try (Stream<Path> s = Files.walk(tmp)) {
        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }
}
