package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.osfarm.cli.CliTest.run;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
 * prints the mount client's fetch report.
 */
@Tag("slow")
class BootimageCommandIT {
  @TempDir static Path dir;

  /** Debian's kernel package (linux-image-amd64), only extracted: kernel and modules. */
  static Path kernelPackage() throws IOException {
    String env = System.getenv("OSFARM_TEST_IMAGES");
    Path images =
        env != null
            ? Path.of(env)
            : Path.of(System.getProperty("user.home"), ".cache", "osfarm", "test-images");
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

  @Test
  void bootsASnapshotOverHttpAndReportsWhatItFetched() throws Exception {
    for (String p : List.of("qemu-system-x86_64", "mke2fs", "debugfs", "xz", "busybox")) {
      Programs.require(p);
    }
    Path jar = Path.of("..", "mount", "target", "osfarm-mount.jar").toAbsolutePath().normalize();
    assertThat(jar).as("the mount client is packaged before cli's tests run").exists();
    Path repoDir = dir.resolve("repo");
    Path minbase = TestImages.bookwormMinbase();
    String r = "--repo=" + repoDir;
    assertThat(run(r, "publish", "--ref", "kernels/bookworm", kernelPackage().toString()).exit())
        .isZero();
    assertThat(run(r, "publish", "--ref", "images/minbase", minbase.toString()).exit()).isZero();

    try (Repository repo = Repository.open(repoDir);
        TransferServer server =
            new TransferServer(
                new InetSocketAddress("127.0.0.1", 0), new ObjectProtocol(repo, false), null)) {
      Digest id = repo.resolve("images/minbase");
      int port = server.address().getPort();
      Path image = dir.resolve("boot.img");
      CliTest.Result made =
          run(
              r,
              "bootimage",
              "-o",
              image.toString(),
              "--kernel-from",
              "kernels/bookworm",
              "--mount-jar",
              jar.toString(),
              // the host's loopback as the guest sees it under QEMU's user networking
              "--url",
              "http://10.0.2.2:" + port,
              "--ref",
              "images/minbase");
      assertThat(made.exit()).as(made.err()).isZero();
      long imageBytes = Files.size(image);

      BootVm.Run boot =
          BootVm.boot(
              image,
              dir.resolve("scratch.img"),
              2L << 30,
              "osfarm.check",
              Duration.ofMinutes(10),
              dir.resolve("vm"),
              System.out::print);
      String console = boot.console();
      assertThat(console).doesNotContain(BootVm.FAILED);
      assertThat(console).contains(BootVm.MARKER + " debian_version=12.").contains("write=upper");
      Matcher m = Pattern.compile(BootVm.STATS + " (\\{.*\\})").matcher(console);
      assertThat(m.find()).as(console).isTrue();
      String stats = m.group(1);
      assertThat(stats).contains("\"snapshot\":\"" + id.hex() + "\"");
      long fetched = number(stats, "bytesFetched");
      long imageContent = number(stats, "imageBytes");
      assertThat(fetched).isPositive();
      // the boot reads /bin/sh, its libraries and a few files, not the image
      assertThat(fetched).isLessThan(imageContent / 10);
      assertThat(boot.poweredOff()).isTrue();

      long tarBytes = Files.size(minbase);
      System.out.printf(
          "%nboot image %d bytes; booted image %d bytes of files (tar %d): %.1f%%;"
              + " boot fetched %d bytes (%.2f%% of the image), %.0f s under %s%n",
          imageBytes,
          imageContent,
          tarBytes,
          100.0 * imageBytes / imageContent,
          fetched,
          100.0 * fetched / imageContent,
          boot.seconds(),
          boot.accel());
    }
  }

  private static long number(String json, String key) {
    Matcher m = Pattern.compile("\"" + key + "\":(\\d+)").matcher(json);
    assertThat(m.find()).as(key + " in " + json).isTrue();
    return Long.parseLong(m.group(1));
  }
}
