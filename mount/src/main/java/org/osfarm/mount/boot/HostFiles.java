package org.osfarm.mount.boot;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** Programs and shared libraries the boot image takes from the host's Debian packages. */
final class HostFiles {
  private HostFiles() {}

  /** The host's statically linked busybox (Debian's busybox-static). */
  static Path busybox() throws IOException {
    for (String p : List.of("/bin/busybox", "/usr/bin/busybox")) {
      Path b = Path.of(p);
      if (Files.isRegularFile(b) && isStatic(b)) {
        return b;
      }
    }
    throw new BootImageException(
        "no statically linked busybox on this host (apt-get install busybox-static)");
  }

  /** The first of {@code paths} that exists. */
  static Path find(String what, String... paths) throws IOException {
    for (String p : paths) {
      if (Files.isRegularFile(Path.of(p))) {
        return Path.of(p);
      }
    }
    throw new BootImageException(
        "no "
            + what
            + " on this host (looked at "
            + String.join(", ", paths)
            + "): apt-get install fuse3 libfuse3-3 e2fsprogs");
  }

  /**
   * Copies the shared libraries {@code elves} need (as {@code ldd} resolves them on this host) into
   * {@code root}'s {@code /lib/x86_64-linux-gnu} and the dynamic loader to its usual path;
   * libraries below {@code own} (the Java runtime's own) are left where they are.
   *
   * @return the bytes copied
   */
  static long copyLibraries(List<Path> elves, Path root, Path own) throws IOException {
    Set<String> libs = new TreeSet<>();
    Set<String> ownNames = new TreeSet<>();
    try (var s = Files.walk(own)) {
      s.forEach(p -> ownNames.add(p.getFileName().toString()));
    }
    for (Path elf : elves) {
      String out = Tools.run(List.of("ldd", elf.toString()), null, null);
      for (String line : out.split("\n")) {
        String l = line.strip();
        int arrow = l.indexOf("=> ");
        String path;
        if (arrow >= 0) {
          path = l.substring(arrow + 3);
        } else if (l.startsWith("/")) {
          path = l;
        } else {
          continue; // linux-vdso, "statically linked"
        }
        int paren = path.indexOf(" (");
        if (paren >= 0) {
          path = path.substring(0, paren);
        }
        if (path.equals("not found") && ownNames.contains(l.substring(0, l.indexOf(' ')))) {
          continue; // the runtime's own (libjvm.so), found by the JVM itself
        }
        if (path.equals("not found")) {
          throw new BootImageException(elf + " needs a library this host lacks: " + l);
        }
        Path p = Path.of(path).normalize();
        if (!p.startsWith(own)) {
          libs.add(p.toString());
        }
      }
    }
    long n = 0;
    for (String l : libs) {
      Path from = Path.of(l);
      Path to =
          l.startsWith("/lib64/")
              ? root.resolve(l.substring(1))
              : root.resolve("lib/x86_64-linux-gnu").resolve(from.getFileName());
      BootImage.copyFile(from.toRealPath(), to);
      n += Files.size(to);
    }
    return n;
  }

  /** Whether an ELF program has no interpreter (PT_INTERP), i.e. is statically linked. */
  static boolean isStatic(Path elf) throws IOException {
    byte[] head;
    try (InputStream in = Files.newInputStream(elf)) {
      head = in.readNBytes(4096);
    }
    String s = new String(head, StandardCharsets.ISO_8859_1);
    return s.startsWith("\u007fELF") && !s.contains("/lib64/ld-linux") && !s.contains("ld-linux");
  }
}
