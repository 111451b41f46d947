package org.osfarm.core.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs real programs for tests; fails loudly, skips only when a program is absent off CI. */
public final class Programs {
  private Programs() {}

  /** True when running in CI, where a missing program is a failure, never a skip. */
  public static boolean inCi() {
    return System.getenv("CI") != null || System.getenv("OSFARM_CI") != null;
  }

  /** Skips the test (off CI) or fails it (in CI) when {@code program} is not on the PATH. */
  public static void require(String program) {
    boolean found = false;
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(dir, program))) {
        found = true;
        break;
      }
    }
    if (!found && inCi()) {
      throw new AssertionError(program + " is not installed; scripts/setup installs it");
    }
    assumeTrue(found, program + " is not installed");
  }

  /** Runs a command in {@code dir}; returns stdout; throws with stderr if it exits non-zero. */
  public static String run(Path dir, String... command) throws IOException {
    return run(dir, List.of(command));
  }

  public static String run(Path dir, List<String> command) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(command));
    if (dir != null) {
      pb.directory(dir.toFile());
    }
    Path err = Files.createTempFile("osfarm-test", ".err");
    pb.redirectError(err.toFile());
    Process p = pb.start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(30, TimeUnit.MINUTES)) {
        p.destroyForcibly();
        throw new IOException("timed out: " + command);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
    String stderr = Files.readString(err);
    Files.deleteIfExists(err);
    if (p.exitValue() != 0) {
      throw new IOException(command + " exited " + p.exitValue() + ": " + stderr);
    }
    return out;
  }

  /** Runs a shell snippet with bash in {@code dir}. */
  public static String sh(Path dir, String script) throws IOException {
    return run(dir, "bash", "-euo", "pipefail", "-c", script);
  }
}
