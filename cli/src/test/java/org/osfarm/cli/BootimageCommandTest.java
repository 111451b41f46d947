package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.osfarm.cli.CliTest.run;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What {@code osfarm bootimage} says about a kernel it cannot use, before making anything. */
class BootimageCommandTest {
  @TempDir Path dir;

  /** {@code osfarm bootimage -o boot.img ARGS}, in this process. */
  private CliTest.Result bootimage(String... args) {
    List<String> all =
        new ArrayList<>(
            List.of(
                "--repo=" + dir.resolve("repo"),
                "bootimage",
                "-o",
                dir.resolve("boot.img").toString()));
    all.addAll(List.of(args));
    return run(all.toArray(String[]::new));
  }

  @Test
  void aKernelFileAndASnapshotAreOneTooMany() {
    CliTest.Result r =
        bootimage("--kernel", dir.resolve("bzImage").toString(), "--kernel-from", "kernels/x");
    assertThat(r.exit()).as(r.toString()).isNotZero();
    assertThat(r.err()).contains("--kernel").contains("--kernel-from").contains("not both");
  }

  @Test
  void aMissingOrWrongKernelFileIsNamed() throws Exception {
    Path jar = Files.writeString(dir.resolve("osfarm-mount.jar"), "stands in for the client");
    CliTest.Result missing =
        bootimage("--kernel", dir.resolve("bzImage").toString(), "--mount-jar", jar.toString());
    assertThat(missing.exit()).as(missing.toString()).isNotZero();
    assertThat(missing.err()).contains("no kernel file").contains("scripts/tiny-kernel");

    Path notAKernel = Files.writeString(dir.resolve("vmlinux"), "\u007fELF, not a bzImage");
    CliTest.Result wrong =
        bootimage("--kernel", notAKernel.toString(), "--mount-jar", jar.toString());
    assertThat(wrong.exit()).as(wrong.toString()).isNotZero();
    assertThat(wrong.err()).contains("is not an x86 Linux kernel image (bzImage)");
    assertThat(dir.resolve("boot.img")).doesNotExist();
  }
}
