package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.core.testing.Programs;

/**
 * Real images beyond Debian bookworm/amd64: the core layer (the class's minbase, its smallest
 * variant) of every other built-in class and of i386, from the real mirrors, checked by their
 * os-release and, for i386, by {@code file} on the shell. The .deb cache is shared with the other
 * build tests (CI caches it), so a rerun downloads nothing.
 */
@Tag("slow")
class ClassesIT {
  @TempDir static Path tmp;
  static Repository repo;
  static ImageBuilder builder;

  @BeforeAll
  static void setUp() throws IOException {
    Programs.require("mmdebstrap");
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
    repo = Repository.init(tmp.resolve("repo"));
    Path run = Files.createDirectories(tmp.resolve("cache"));
    Path debs = Files.createDirectories(ImageBuildIT.cacheDir().resolve("debs"));
    Files.createSymbolicLink(run.resolve("debs"), debs);
    builder = new ImageBuilder(repo, ClassRegistry.builtIn(), run);
  }

  @AfterAll
  static void tearDown() {
    if (repo != null) {
      repo.close();
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
    "debian-trixie, amd64, VERSION_CODENAME=trixie, ID=debian",
    "debian-bullseye, amd64, VERSION_CODENAME=bullseye, ID=debian",
    "ubuntu-noble, amd64, VERSION_CODENAME=noble, ID=ubuntu",
    "debian-bookworm, i386, VERSION_CODENAME=bookworm, ID=debian",
  })
  void buildsTheCoreLayer(String className, String arch, String codename, String id)
      throws IOException {
    ImageSpec spec = ImageSpec.builder().className(className).arch(arch).group("core").build();
    long t0 = System.nanoTime();
    BuildResult r =
        builder.build(spec, "images/" + className + "-" + arch, List.of(), BuildListener.NONE);
    System.err.printf(
        "[classes] %s %s core layer: %.1f s%n", className, arch, (System.nanoTime() - t0) / 1e9);
    assertThat(r.plan().layers()).extracting(PlannedLayer::kind).containsExactly(LayerKind.CORE);
    String osRelease = cat(r.snapshot(), "usr/lib/os-release");
    assertThat(osRelease).contains(codename + "\n").containsPattern("(?m)^" + id + "$");
    assertThat(repo.readSnapshot(r.snapshot()).metadata().get("build.packages"))
        .containsPattern("(?m)^dpkg=")
        .containsPattern("(?m)^dash=");
    // the shell is a binary of the class's architecture
    Path sh = tmp.resolve(className + "-" + arch + "-dash");
    Files.writeString(sh, "");
    // merged /usr (bookworm and later, noble) or not (bullseye)
    String dash = "usr/bin/dash";
    try {
      repo.lookupFile(r.snapshot(), utf8(dash));
    } catch (org.osfarm.core.NotFoundException e) {
      dash = "bin/dash";
    }
    try (var in = repo.openContent(repo.lookupFile(r.snapshot(), utf8(dash)))) {
      Files.copy(in, sh, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    String file = Programs.run(tmp, "file", "-b", sh.toString());
    if (arch.equals("i386")) {
      assertThat(file).contains("ELF 32-bit LSB").containsPattern("Intel (80386|i386)");
    } else {
      assertThat(file).contains("ELF 64-bit LSB").contains("x86-64");
    }
  }

  static String cat(Digest snap, String path) throws IOException {
    try (var in = repo.openContent(repo.lookupFile(snap, utf8(path)))) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
