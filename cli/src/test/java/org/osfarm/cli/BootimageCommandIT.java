package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.osfarm.cli.CliTest.run;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.mount.boot.BootVm;
import org.osfarm.transfer.ObjectProtocol;
import org.osfarm.transfer.TransferServer;

/**
 * The tiny boot image, end to end: {@code osfarm bootimage} makes it from Debian's kernel package
 * and the real mount client ({@code mount/target/osfarm-mount.jar}); a real Debian image is served
 * over the object protocol on 127.0.0.1; QEMU boots the image, which mounts that snapshot lazily
 * over HTTP as its root (writable overlay on a scratch disk), runs the image's own /bin/sh and
 * prints the mount client's fetch report. Twice: with Debian's kernel and its modules, and with the
 * tiny kernel of {@code scripts/tiny-kernel} (built once per machine), whose boot image must be at
 * most a tenth of the image it boots.
 */
@Tag("slow")
class BootimageCommandIT {
  @TempDir static Path dir;

  /** Debian's kernel package (linux-image-amd64), only extracted: kernel and modules. */
  static Path kernelPackage() throws IOException {
    Path images = testImages();
    Path out = images.resolve("bookworm-linux-image-extract.tar");
    if (Files.exists(out)) {
      return out;
    }
    Programs.require("mmdebstrap");
    Files.createDirectories(images);
    Path tmp = images.resolve("partial-" + ProcessHandle.current().pid() + "-linux-image.tar");
    Programs.run(
        null,
        List.of(
            "mmdebstrap",
            "--quiet",
            "--variant=extract",
            "--include=linux-image-amd64",
            "bookworm",
            tmp.toString(),
            "http://deb.debian.org/debian"));
    Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
    return out;
  }

  static Path jar;
  static Path minbase;
  static Path repoDir;
  static Repository repo;
  static TransferServer server;
  static Digest minbaseId;

  /** Publishes minbase and serves it on 127.0.0.1 for both boots. */
  @BeforeAll
  static void serveMinbase() throws Exception {
    for (String p : List.of("qemu-system-x86_64", "mke2fs", "debugfs", "xz", "busybox")) {
      Programs.require(p);
    }
    jar = Path.of("..", "mount", "target", "osfarm-mount.jar").toAbsolutePath().normalize();
    assertThat(jar).as("the mount client is packaged before cli's tests run").exists();
    repoDir = dir.resolve("repo");
    minbase = TestImages.bookwormMinbase();
    String r = "--repo=" + repoDir;
    assertThat(run(r, "publish", "--ref", "images/minbase", minbase.toString()).exit()).isZero();
    repo = Repository.open(repoDir);
    minbaseId = repo.resolve("images/minbase");
    server =
        new TransferServer(
            new InetSocketAddress("127.0.0.1", 0), new ObjectProtocol(repo, false), null);
  }

  @AfterAll
  static void stopServing() throws Exception {
    if (server != null) {
      server.close();
    }
    if (repo != null) {
      repo.close();
    }
  }

  @Test
  void bootsASnapshotOverHttpAndReportsWhatItFetched() throws Exception {
    String r = "--repo=" + repoDir;
    assertThat(run(r, "publish", "--ref", "kernels/bookworm", kernelPackage().toString()).exit())
        .isZero();
    Booted b = makeAndBoot("debian", "--kernel-from", "kernels/bookworm");
    assertThat(b.made().err()).contains("kernel modules: ").contains("virtio_net");
  }

  /**
   * The kernel {@code scripts/tiny-kernel} builds (everything built in, no modules) boots the same
   * snapshot, and makes the boot image at most a tenth of the image it boots (issue 7).
   */
  @Test
  void bootsWithTheTinyKernelAtMostATenthOfTheImage() throws Exception {
    Path bzImage = tinyKernel();
    Booted b = makeAndBoot("tiny", "--kernel", bzImage.toString());
    assertThat(b.made().err()).contains("kernel modules: none");
    assertThat(b.imageBytes())
        .as("boot image against the booted image's files (%d bytes)", b.imageContent())
        .isLessThanOrEqualTo(b.imageContent() / 10);
  }

  /** The tiny kernel, built once per machine into the test images' directory (a few minutes). */
  static Path tinyKernel() throws IOException {
    for (String p : List.of("gcc", "make", "flex", "bison", "bc")) {
      Programs.require(p);
    }
    boolean source = Files.isRegularFile(Path.of("/usr/src/linux-source-6.1.tar.xz"));
    if (!source && Programs.inCi()) {
      throw new AssertionError("linux-source-6.1 is not installed; scripts/setup installs it");
    }
    assumeTrue(source, "linux-source-6.1 is not installed");
    Path script = Path.of("..", "scripts", "tiny-kernel").toAbsolutePath().normalize();
    Path out = testImages().resolve("tiny-kernel");
    Process p =
        new ProcessBuilder(script.toString(), out.toString())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    p.getOutputStream().close();
    String printed = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    try {
      assertThat(p.waitFor(40, TimeUnit.MINUTES)).as("scripts/tiny-kernel finished").isTrue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
    assertThat(p.exitValue()).as("scripts/tiny-kernel exit code").isZero();
    Path bzImage = Path.of(printed);
    assertThat(bzImage).isEqualTo(out.resolve("bzImage")).isRegularFile();
    return bzImage;
  }

  record Booted(CliTest.Result made, long imageBytes, long imageContent) {}

  /** Makes a boot image with {@code kernelArgs}, boots minbase with it and checks the boot. */
  private static Booted makeAndBoot(String name, String... kernelArgs) throws Exception {
    int port = server.address().getPort();
    Path image = dir.resolve(name + ".img");
    List<String> args = new ArrayList<>(List.of("--repo=" + repoDir, "bootimage", "-o"));
    args.add(image.toString());
    args.addAll(List.of(kernelArgs));
    args.addAll(
        List.of(
            "--mount-jar",
            jar.toString(),
            // the host's loopback as the guest sees it under QEMU's user networking
            "--url",
            "http://10.0.2.2:" + port,
            "--ref",
            "images/minbase"));
    CliTest.Result made = run(args.toArray(String[]::new));
    System.out.print(made.err());
    assertThat(made.exit()).as(made.err()).isZero();
    long imageBytes = Files.size(image);

    BootVm.Run boot =
        BootVm.boot(
            image,
            dir.resolve(name + "-scratch.img"),
            2L << 30,
            "osfarm.check",
            Duration.ofMinutes(10),
            dir.resolve(name + "-vm"),
            System.out::print);
    String console = boot.console();
    assertThat(console).doesNotContain(BootVm.FAILED);
    assertThat(console).contains(BootVm.MARKER + " debian_version=12.").contains("write=upper");
    Matcher m = Pattern.compile(BootVm.STATS + " (\\{.*\\})").matcher(console);
    assertThat(m.find()).as(console).isTrue();
    String stats = m.group(1);
    assertThat(stats).contains("\"snapshot\":\"" + minbaseId.hex() + "\"");
    long fetched = number(stats, "bytesFetched");
    long imageContent = number(stats, "imageBytes");
    assertThat(fetched).isPositive();
    // the boot reads /bin/sh, its libraries and a few files, not the image
    assertThat(fetched).isLessThan(imageContent / 10);
    assertThat(boot.poweredOff()).isTrue();

    long tarBytes = Files.size(minbase);
    System.out.printf(
        "%n%s: boot image %d bytes; booted image %d bytes of files (tar %d): %.2f%%;"
            + " boot fetched %d bytes (%.2f%% of the image), %.0f s under %s%n",
        name,
        imageBytes,
        imageContent,
        tarBytes,
        100.0 * imageBytes / imageContent,
        fetched,
        100.0 * fetched / imageContent,
        boot.seconds(),
        boot.accel());
    return new Booted(made, imageBytes, imageContent);
  }

  private static Path testImages() {
    String env = System.getenv("OSFARM_TEST_IMAGES");
    return env != null
        ? Path.of(env)
        : Path.of(System.getProperty("user.home"), ".cache", "osfarm", "test-images");
  }

  private static long number(String json, String key) {
    Matcher m = Pattern.compile("\"" + key + "\":(\\d+)").matcher(json);
    assertThat(m.find()).as(key + " in " + json).isTrue();
    return Long.parseLong(m.group(1));
  }
}
