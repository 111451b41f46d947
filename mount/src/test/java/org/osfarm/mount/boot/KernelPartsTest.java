package org.osfarm.mount.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A kernel given as a file: the x86 boot header is checked and the version read from it. */
class KernelPartsTest {
  @TempDir Path dir;

  /**
   * The first bytes of a bzImage: boot flag, "HdrS", the version string's offset and the string.
   */
  static byte[] bzImageHead(String version) {
    byte[] b = new byte[0x4000];
    b[0x1FE] = 0x55;
    b[0x1FF] = (byte) 0xAA;
    b[0x202] = 'H';
    b[0x203] = 'd';
    b[0x204] = 'r';
    b[0x205] = 'S';
    int at = 0x3000;
    int rel = at - 0x200;
    b[0x20E] = (byte) rel;
    b[0x20F] = (byte) (rel >> 8);
    byte[] v = version.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(v, 0, b, at, v.length);
    return b;
  }

  @Test
  void readsTheVersionFromTheBootHeader() {
    assertThat(KernelParts.bzImageVersion(bzImageHead("6.1.192 (osfarm@osfarm) #1 2025-11-26")))
        .isEqualTo("6.1.192");
    assertThat(KernelParts.bzImageVersion(new byte[0x4000])).isNull();
    assertThat(KernelParts.bzImageVersion(new byte[16])).isNull();
  }

  @Test
  void aKernelFileHasNoModules() throws Exception {
    Path k = dir.resolve("bzImage");
    Files.write(k, bzImageHead("6.1.192 (osfarm@osfarm) #1"));
    KernelParts parts = KernelParts.fromFile(k, dir.resolve("out"));
    assertThat(parts.version).isEqualTo("6.1.192");
    assertThat(parts.modules).isEmpty();
    assertThat(parts.vmlinuz).hasSameBinaryContentAs(k);
  }

  @Test
  void aMissingOrWrongKernelFileSaysWhatToGive() throws Exception {
    assertThatThrownBy(() -> KernelParts.fromFile(dir.resolve("none"), dir.resolve("out")))
        .isInstanceOf(BootImageException.class)
        .hasMessageContaining("no kernel file")
        .hasMessageContaining("scripts/tiny-kernel");
    Path elf = dir.resolve("vmlinux");
    Files.write(elf, "\u007fELF not a bzImage".getBytes(StandardCharsets.ISO_8859_1));
    assertThatThrownBy(() -> KernelParts.fromFile(elf, dir.resolve("out")))
        .isInstanceOf(BootImageException.class)
        .hasMessageContaining("is not an x86 Linux kernel image (bzImage)");
  }
}
