package org.osfarm.mount.boot;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The mount client's Java runtime: only the JDK modules it uses ({@code jdeps}), {@code jlink}ed.
 */
final class JavaRuntime {
  /** Always linked (jdeps prints nothing for a jar that needs only java.base). */
  static final List<String> ALWAYS = List.of("java.base");

  private JavaRuntime() {}

  /** The JDK modules {@code jar} needs, from {@code jdeps --print-module-deps}. */
  static List<String> modules(Path jdk, Path jar) throws IOException {
    String out =
        Tools.run(
            List.of(
                jdk.resolve("bin/jdeps").toString(),
                "-q",
                "--ignore-missing-deps",
                "--multi-release",
                "25",
                "--print-module-deps",
                jar.toString()),
            null,
            null);
    TreeSet<String> mods = new TreeSet<>(ALWAYS);
    for (String m : out.strip().split(",")) {
      if (!m.isBlank()) {
        mods.add(m.strip());
      }
    }
    return new ArrayList<>(mods);
  }

  /**
   * Files of the linked runtime the mount client never uses: the CDS class list (only read when
   * dumping an archive), the jrt file system for other JDKs' tools, keytool, the signal-chaining
   * library, and the AVX-512 sort library (optional: HotSpot sorts without it).
   */
  static final String EXCLUDED_FILES =
      "glob:/java.base/lib/classlist,glob:/java.base/lib/jrt-fs.jar,glob:/java.base/bin/keytool,"
          + "glob:/java.base/lib/**/libjsig.so,glob:/java.base/lib/libsimdsort.so";

  /**
   * Links {@code modules} into {@code out}: no debug symbols, man pages, headers or the files of
   * {@link #EXCLUDED_FILES}, and no compression of its own: the initramfs is compressed as a whole,
   * which packs the classes far better than jlink's per-resource zip (measured: 5.4 MB xz over
   * plain classes against 12.5 MB zip-9 for java.base with three more modules). Then the native
   * libraries lose their symbol tables ({@code strip --strip-unneeded}; {@code jlink
   * --strip-native-debug-symbols} does nothing for a JDK without jmods): libjvm.so goes from 29.8
   * to 24.8 MB, 0.9 MB less after xz. Without the symbols a JVM crash report shows addresses
   * instead of function names.
   */
  static void link(Path jdk, List<String> modules, Path out) throws IOException {
    Tools.run(
        List.of(
            jdk.resolve("bin/jlink").toString(),
            "--add-modules",
            String.join(",", modules),
            "--strip-debug",
            "--no-man-pages",
            "--no-header-files",
            "--compress=zip-0",
            "--exclude-files=" + EXCLUDED_FILES,
            "--output",
            out.toString()),
        null,
        null);
    List<String> strip = new ArrayList<>(List.of("strip", "--strip-unneeded"));
    try (Stream<Path> s = Files.walk(out)) {
      s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
          .filter(p -> p.getFileName().toString().endsWith(".so"))
          .sorted()
          .forEach(p -> strip.add(p.toString()));
    }
    Tools.run(strip, null, null);
  }
}
