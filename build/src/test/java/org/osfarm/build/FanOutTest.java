package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The output tee of fresh builds, on real files: every copy gets every byte, in order. */
class FanOutTest {
  @TempDir Path tmp;

  private static FileChannel open(Path p) throws IOException {
    return FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
  }

  @Test
  void everyCopyGetsTheSameBytesAcrossSeveralWritebackStarts() throws IOException {
    // 2.5 × the flush interval, in blocks of uneven sizes, so that starts fall inside blocks
    long total = OutputDelivery.FanOut.FLUSH_EVERY * 5 / 2;
    Random r = new Random(7);
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    java.security.MessageDigest want = sha();
    try (FileChannel ca = open(a);
        FileChannel cb = open(b);
        OutputDelivery.FanOut out = new OutputDelivery.FanOut(List.of(ca, cb), ca)) {
      byte[] buf = new byte[(1 << 20) + 4096];
      for (long n = 0; n < total; ) {
        int len = (int) Math.min(total - n, 1 + r.nextInt(buf.length));
        r.nextBytes(buf);
        out.write(buf, 0, len);
        want.update(buf, 0, len);
        n += len;
      }
      out.finish();
    }
    byte[] digest = want.digest();
    assertThat(Files.size(a)).isEqualTo(total);
    assertThat(Files.size(b)).isEqualTo(total);
    assertThat(sha(a)).isEqualTo(digest);
    assertThat(sha(b)).isEqualTo(digest);
  }

  @Test
  void aFailedWriteFailsTheProducer() throws IOException {
    Path a = tmp.resolve("a");
    FileChannel ro = FileChannel.open(Files.createFile(a), StandardOpenOption.READ);
    try (ro) {
      OutputDelivery.FanOut out = new OutputDelivery.FanOut(List.of(ro), ro);
      assertThatThrownBy(
              () -> {
                byte[] block = new byte[1 << 20];
                for (int i = 0; i < 64; i++) {
                  out.write(block, 0, block.length);
                }
                out.finish();
              })
          .isInstanceOf(IOException.class)
          .hasMessageContaining("writing the output failed");
    }
  }

  private static java.security.MessageDigest sha() {
    try {
      return java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  private static byte[] sha(Path p) throws IOException {
    java.security.MessageDigest md = sha();
    try (var in = Files.newInputStream(p)) {
      byte[] buf = new byte[1 << 20];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return md.digest();
  }
}
