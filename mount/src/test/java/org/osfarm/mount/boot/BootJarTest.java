package org.osfarm.mount.boot;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mount client as the boot image carries it: trimmed to linux-amd64, stored, checked. */
class BootJarTest {
  @TempDir Path dir;

  @Test
  void leavesOutOtherPlatformsStoresEverythingAndFixesServiceFiles() throws Exception {
    Path jar = dir.resolve("in.jar");
    Map<String, String> entries = new TreeMap<>();
    entries.put("org/cryptomator/jfuse/linux/amd64/LinuxFuseBuilder.class", "amd64 ".repeat(100));
    entries.put("org/cryptomator/jfuse/linux/aarch64/LinuxFuseBuilder.class", "arm");
    entries.put("org/cryptomator/jfuse/mac/MacFuseBuilder.class", "mac");
    entries.put("org/cryptomator/jfuse/win/WinFuseBuilder.class", "win");
    entries.put("linux/amd64/libzstd-jni.so", "x86 code");
    entries.put("linux/aarch64/libzstd-jni.so", "arm code");
    entries.put("org/osfarm/mount/boot/BootImage.class", "builder");
    entries.put("org/osfarm/mount/MountMain.class", "main");
    entries.put("META-INF/maven/org.osfarm/osfarm-mount/pom.xml", "<project/>");
    entries.put(
        "META-INF/services/org.cryptomator.jfuse.api.FuseBuilder",
        "# providers\norg.cryptomator.jfuse.linux.aarch64.LinuxFuseBuilder\n"
            + "org.cryptomator.jfuse.linux.amd64.LinuxFuseBuilder\n"
            + "org.cryptomator.jfuse.mac.MacFuseBuilder\n");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(jar))) {
      for (Map.Entry<String, String> e : entries.entrySet()) {
        z.putNextEntry(new ZipEntry(e.getKey())); // deflated
        z.write(e.getValue().getBytes(StandardCharsets.UTF_8));
        z.closeEntry();
      }
    }
    Path out = dir.resolve("out.jar");
    assertThat(BootJar.write(jar, out)).isEqualTo(6);

    Map<String, String> read = new TreeMap<>();
    try (ZipFile z = new ZipFile(out.toFile())) {
      for (ZipEntry e : z.stream().toList()) {
        assertThat(e.getMethod()).as(e.getName()).isEqualTo(ZipEntry.STORED);
        try (InputStream in = z.getInputStream(e)) {
          read.put(e.getName(), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
      }
    }
    assertThat(read.keySet())
        .containsExactly(
            "META-INF/services/org.cryptomator.jfuse.api.FuseBuilder",
            "linux/amd64/libzstd-jni.so",
            "org/cryptomator/jfuse/linux/amd64/LinuxFuseBuilder.class",
            "org/osfarm/mount/MountMain.class");
    assertThat(read.get("org/cryptomator/jfuse/linux/amd64/LinuxFuseBuilder.class"))
        .isEqualTo("amd64 ".repeat(100));
    assertThat(read.get("META-INF/services/org.cryptomator.jfuse.api.FuseBuilder"))
        .isEqualTo("# providers\norg.cryptomator.jfuse.linux.amd64.LinuxFuseBuilder\n");
  }

  @Test
  void jdepsFindsTheClassesAJarUsesButLacks() throws Exception {
    Path jdk = Path.of(System.getProperty("java.home"));
    if (!Files.isExecutable(jdk.resolve("bin/jdeps"))) {
      return; // a JRE: BootImage refuses it anyway (it needs jlink)
    }
    Path partial = dir.resolve("partial.jar");
    jar(partial, List.of(BootJar.class));
    assertThat(BootJar.missingClasses(jdk, partial))
        .anySatisfy(m -> assertThat(m).startsWith("org.osfarm.mount.boot.Tools (used by"));

    Path whole = dir.resolve("whole.jar");
    jar(whole, List.of(BootJar.class, Tools.class, BootImageException.class));
    assertThat(BootJar.missingClasses(jdk, whole)).isEmpty();
  }

  private static void jar(Path jar, List<Class<?>> classes) throws IOException {
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(jar))) {
      for (Class<?> c : classes) {
        String name = c.getName().replace('.', '/') + ".class";
        z.putNextEntry(new ZipEntry(name));
        try (InputStream in = c.getClassLoader().getResourceAsStream(name)) {
          z.write(in.readAllBytes());
        }
        z.closeEntry();
      }
    }
  }
}
