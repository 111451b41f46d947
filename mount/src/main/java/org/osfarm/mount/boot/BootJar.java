package org.osfarm.mount.boot;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * The mount client as the boot image carries it: {@code osfarm-mount.jar} without what a
 * linux-amd64 guest never loads (jfuse for macOS, Windows and aarch64, zstd-jni's aarch64 library,
 * this boot image builder, Maven metadata), and with every entry stored, not deflated: the
 * initramfs is xz-compressed as a whole, and xz packs plain class files far better than it packs
 * deflate output (measured: the jar as built makes 1.79 MB of xz, trimmed and stored 0.61 MB).
 *
 * <p>Service files ({@code META-INF/services}) lose the lines naming left-out classes, so a {@code
 * ServiceLoader} (jfuse finds its platform's builder that way) never meets a missing provider.
 */
final class BootJar {
  /** Entries under these prefixes are left out. */
  static final List<String> LEFT_OUT =
      List.of(
          "org/cryptomator/jfuse/mac/",
          "org/cryptomator/jfuse/win/",
          "org/cryptomator/jfuse/linux/aarch64/",
          "linux/aarch64/",
          "org/osfarm/mount/boot/",
          "META-INF/maven/");

  private BootJar() {}

  static boolean keep(String name) {
    for (String p : LEFT_OUT) {
      if (name.startsWith(p)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Writes the trimmed, stored copy of {@code jar} to {@code out}.
   *
   * @return the number of entries left out
   */
  static int write(Path jar, Path out) throws IOException {
    int dropped = 0;
    try (ZipFile in = new ZipFile(jar.toFile());
        OutputStream os = Files.newOutputStream(out);
        ZipOutputStream zout = new ZipOutputStream(os)) {
      Set<String> classes = new HashSet<>();
      List<? extends ZipEntry> entries = in.stream().toList();
      for (ZipEntry e : entries) {
        if (keep(e.getName()) && e.getName().endsWith(".class")) {
          classes.add(e.getName().substring(0, e.getName().length() - 6).replace('/', '.'));
        }
      }
      for (ZipEntry e : entries) {
        String name = e.getName();
        if (!keep(name)) {
          dropped++;
          continue;
        }
        byte[] data;
        try (InputStream s = in.getInputStream(e)) {
          data = s.readAllBytes();
        }
        if (name.startsWith("META-INF/services/") && !e.isDirectory()) {
          data = services(data, classes);
        }
        ZipEntry o = new ZipEntry(name);
        o.setMethod(ZipEntry.STORED);
        o.setSize(data.length);
        o.setCompressedSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        o.setCrc(crc.getValue());
        o.setTime(e.getTime());
        zout.putNextEntry(o);
        zout.write(data);
        zout.closeEntry();
      }
    }
    return dropped;
  }

  /**
   * The classes {@code jar}'s classes use that are neither in it nor in the JDK, as {@code jdeps}
   * finds them ({@code -filter:none}: also within a package). Annotations only the compiler reads
   * (JetBrains') do not count.
   */
  static List<String> missingClasses(Path jdk, Path jar) throws IOException {
    String out =
        Tools.run(
            List.of(
                jdk.resolve("bin/jdeps").toString(),
                "-verbose:class",
                "-filter:none",
                "--multi-release",
                "25",
                jar.toString()),
            null,
            null);
    Set<String> missing = new TreeSet<>();
    for (String line : out.split("\n")) {
      // "   a.B$C    -> d.E    not found" (the jar's summary line "x.jar -> not found" has 4 words)
      String[] w = line.strip().split("\\s+");
      if (w.length == 5
          && w[1].equals("->")
          && w[3].equals("not")
          && w[4].equals("found")
          && !w[2].startsWith("org.jetbrains.annotations.")) {
        missing.add(w[2] + " (used by " + w[0] + ")");
      }
    }
    return new ArrayList<>(missing);
  }

  /** A service file without the providers that are not in the jar any more. */
  static byte[] services(byte[] file, Set<String> classes) {
    List<String> kept = new ArrayList<>();
    for (String line : new String(file, StandardCharsets.UTF_8).split("\n")) {
      String provider = line.replaceAll("#.*", "").strip();
      if (provider.isEmpty() || classes.contains(provider)) {
        kept.add(line);
      }
    }
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.writeBytes(String.join("\n", kept).getBytes(StandardCharsets.UTF_8));
    b.write('\n');
    return b.toByteArray();
  }
}
