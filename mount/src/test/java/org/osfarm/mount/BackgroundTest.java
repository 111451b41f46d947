package org.osfarm.mount;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How the background child is started: as {@code -jar} when the class path is the jar whose
 * manifest names the main class (its manifest then grants native access, as it did to the parent),
 * else {@code -cp} with native access passed on explicitly.
 */
class BackgroundTest {
  @TempDir Path dir;

  private Path jar(String name, String mainClass) throws Exception {
    Manifest m = new Manifest();
    m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    if (mainClass != null) {
      m.getMainAttributes().put(Attributes.Name.MAIN_CLASS, mainClass);
    }
    Path p = dir.resolve(name);
    try (OutputStream out = Files.newOutputStream(p);
        JarOutputStream j = new JarOutputStream(out, m)) {
      j.flush();
    }
    return p;
  }

  @Test
  void theLaunchersJarRunsAsJarSoItsManifestGrantsNativeAccess() throws Exception {
    Path jar = jar("osfarm.jar", "org.osfarm.cli.Main");
    List<String> opts = List.of("-XX:+UseParallelGC", "-Xss4m");
    assertThat(Background.javaArguments("org.osfarm.cli.Main", jar.toString(), opts, true))
        .containsExactly("-XX:+UseParallelGC", "-Xss4m", "-jar", jar.toString());
  }

  @Test
  void anotherMainClassOrAClassPathRunsAsClassPathWithNativeAccessPassedOn() throws Exception {
    Path jar = jar("osfarm.jar", "org.osfarm.cli.Main");
    List<String> opts = List.of("-Xss4m");
    assertThat(Background.javaArguments("org.osfarm.mount.MountMain", jar.toString(), opts, true))
        .containsExactly(
            "-Xss4m",
            "--enable-native-access=ALL-UNNAMED",
            "-cp",
            jar.toString(),
            "org.osfarm.mount.MountMain");
    String cp = dir.resolve("classes") + java.io.File.pathSeparator + jar;
    assertThat(Background.javaArguments("org.osfarm.cli.Main", cp, opts, false))
        .as("no native access here: none passed on")
        .containsExactly("-Xss4m", "-cp", cp, "org.osfarm.cli.Main");
    List<String> flagged = List.of("--enable-native-access=ALL-UNNAMED");
    assertThat(Background.javaArguments("org.osfarm.cli.Main", cp, flagged, true))
        .as("already passed on by the options")
        .containsExactly("--enable-native-access=ALL-UNNAMED", "-cp", cp, "org.osfarm.cli.Main");
    Path noMain = jar("plain.jar", null);
    assertThat(Background.javaArguments("org.osfarm.cli.Main", noMain.toString(), opts, true))
        .contains("-cp", noMain.toString());
  }
}
