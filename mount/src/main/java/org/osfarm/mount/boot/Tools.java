package org.osfarm.mount.boot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/** Runs the external programs the boot image is made with, with errors that name them. */
final class Tools {
  private Tools() {}

  /**
   * Runs {@code cmd}; its stdout goes to {@code stdout} (or is returned when null), stderr is kept
   * for the error message.
   *
   * @throws BootImageException if the program is missing or fails
   */
  static String run(List<String> cmd, Path stdout, Path dir) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd);
    if (dir != null) {
      pb.directory(dir.toFile());
    }
    Path err = java.nio.file.Files.createTempFile("osfarm-boot-", ".err");
    pb.redirectError(err.toFile());
    if (stdout != null) {
      pb.redirectOutput(stdout.toFile());
    }
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new BootImageException(
          "cannot run " + cmd.get(0) + " (" + hint(cmd.get(0)) + "): " + e.getMessage(), e);
    }
    try {
      p.getOutputStream().close();
      String out =
          stdout == null
              ? new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
              : "";
      int rc = p.waitFor();
      String e = java.nio.file.Files.readString(err);
      if (rc != 0) {
        throw new BootImageException(
            String.join(" ", cmd.subList(0, Math.min(cmd.size(), 6)))
                + (cmd.size() > 6 ? " ..." : "")
                + " failed (exit "
                + rc
                + "): "
                + e.strip());
      }
      return out;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new BootImageException("interrupted while running " + cmd.get(0), e);
    } finally {
      java.nio.file.Files.deleteIfExists(err);
    }
  }

  static String hint(String program) {
    return switch (program) {
      case "mke2fs", "debugfs", "resize2fs", "e2fsck" -> "apt-get install e2fsprogs";
      case "xz" -> "apt-get install xz-utils";
      case "strip" -> "apt-get install binutils";
      case "zstd" -> "apt-get install zstd";
      case "qemu-system-x86_64" -> "apt-get install qemu-system-x86";
      case "ldd" -> "apt-get install libc-bin";
      default -> "is it installed?";
    };
  }
}
