package org.osfarm.core.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Real images shared by every test of a run (and across runs): built once with mmdebstrap from the
 * Debian mirror into {@code $OSFARM_TEST_IMAGES} (default {@code ~/.cache/osfarm/test-images}).
 */
public final class TestImages {
  private TestImages() {}

  private static Path dir() {
    String env = System.getenv("OSFARM_TEST_IMAGES");
    return env != null
        ? Path.of(env)
        : Path.of(System.getProperty("user.home"), ".cache", "osfarm", "test-images");
  }

  /** A minbase Debian bookworm image as a tar (about 160 MB, built on first use). */
  public static synchronized Path bookwormMinbase() throws IOException {
    return build("bookworm-minbase.tar", "--variant=minbase", "bookworm");
  }

  /** A minbase bookworm image with a few more packages: a sibling of {@link #bookwormMinbase}. */
  public static synchronized Path bookwormMinbasePlus() throws IOException {
    return build(
        "bookworm-minbase-plus.tar",
        "--variant=minbase",
        "--include=iputils-ping,less",
        "bookworm");
  }

  private static Path build(String name, String... args) throws IOException {
    Path out = dir().resolve(name);
    if (Files.exists(out)) {
      return out;
    }
    Programs.require("mmdebstrap");
    Files.createDirectories(dir());
    // mmdebstrap picks its output format from the name: keep the .tar suffix on the temp file.
    Path tmp = dir().resolve("partial-" + ProcessHandle.current().pid() + "-" + name);
    java.util.List<String> cmd = new java.util.ArrayList<>();
    cmd.add("mmdebstrap");
    cmd.add("--quiet");
    cmd.addAll(java.util.List.of(args));
    cmd.add(tmp.toString());
    cmd.add("http://deb.debian.org/debian");
    Programs.run(null, cmd);
    Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
    return out;
  }
}
