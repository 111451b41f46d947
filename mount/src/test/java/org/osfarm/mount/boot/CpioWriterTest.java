package org.osfarm.mount.boot;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.testing.Programs;

/** The initramfs archive, read back by GNU cpio; module dependencies from .modinfo. */
class CpioWriterTest {
  @TempDir Path dir;

  @Test
  void gnuCpioReadsTheArchiveBack() throws Exception {
    Programs.require("cpio");
    Path tree = dir.resolve("tree");
    Files.createDirectories(tree.resolve("etc/osfarm"));
    Files.writeString(tree.resolve("etc/osfarm/boot.conf"), "OSFARM_URL='x'\n");
    Files.writeString(tree.resolve("init"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(
        tree.resolve("init"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.createSymbolicLink(tree.resolve("sh"), Path.of("busybox"));
    Path archive = dir.resolve("a.cpio");
    try (CpioWriter w = new CpioWriter(new BufferedOutputStream(Files.newOutputStream(archive)))) {
      w.directory("dev", 0755);
      w.charDevice("dev/console", 0600, 5, 1);
      w.addTree(tree);
    }
    assertThat(Files.size(archive) % 512).isZero();
    String list = Programs.sh(dir, "cpio -itv --quiet < a.cpio");
    assertThat(list)
        .containsPattern("crw------- +1 root +root +5, +1 .* dev/console")
        .containsPattern("-rwxr-x--- .* init\n")
        .containsPattern("lrwxrwxrwx .* sh -> busybox")
        .contains("etc/osfarm/boot.conf");
    Path out = Files.createDirectories(dir.resolve("out"));
    Programs.sh(out, "cpio -id --quiet --no-absolute-filenames < ../a.cpio 2>/dev/null || true");
    assertThat(Files.readString(out.resolve("etc/osfarm/boot.conf"))).isEqualTo("OSFARM_URL='x'\n");
  }

  @Test
  void moduleDependenciesComeFromModinfo() {
    byte[] ko =
        "\u007fELF...\0license=GPL\0depends=jbd2,mbcache,crc16\0name=ext4\0"
            .getBytes(StandardCharsets.ISO_8859_1);
    assertThat(KernelParts.depends(ko)).containsExactly("jbd2", "mbcache", "crc16");
    assertThat(KernelParts.depends("\0depends=\0name=fuse\0".getBytes(StandardCharsets.US_ASCII)))
        .isEmpty();
    assertThat(KernelParts.moduleName("virtio-net.ko.xz")).isEqualTo("virtio_net");
  }
}
