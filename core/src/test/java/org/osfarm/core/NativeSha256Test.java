package org.osfarm.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * libcrypto's SHA-256 against the JDK's on the same inputs, fed every way a {@link MessageDigest}
 * can be fed: arrays in random pieces, heap, direct, read-only and mapped buffers, clones taken
 * mid-stream, digests into caller buffers, resets. Under CI (OSFARM_CI=1) libcrypto must be in use.
 */
class NativeSha256Test {
  @TempDir Path tmp;

  @BeforeEach
  void needsLibcrypto() {
    if (System.getenv("OSFARM_CI") != null) {
      assertThat(NativeSha256.UNAVAILABLE_BECAUSE).as("why libcrypto is not used").isNull();
    }
    assumeTrue(
        NativeSha256.AVAILABLE, () -> "libcrypto not used: " + NativeSha256.UNAVAILABLE_BECAUSE);
  }

  private static MessageDigest jdk() throws GeneralSecurityException {
    return MessageDigest.getInstance("SHA-256", "SUN");
  }

  private static String hex(byte[] b) {
    return HexFormat.of().formatHex(b);
  }

  @Test
  void knownAnswers() {
    MessageDigest md = Digest.newMessageDigest();
    assertThat(md).isInstanceOf(NativeSha256.class);
    assertThat(hex(md.digest()))
        .isEqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assertThat(hex(md.digest("abc".getBytes(StandardCharsets.US_ASCII))))
        .isEqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    byte[] a = new byte[1_000_000];
    java.util.Arrays.fill(a, (byte) 'a');
    assertThat(hex(md.digest(a)))
        .isEqualTo("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }

  @Test
  void randomPiecesOfArraysMatchTheJdk() throws Exception {
    Random rnd = new Random(7);
    for (int round = 0; round < 200; round++) {
      byte[] data = new byte[rnd.nextInt(300_000)];
      rnd.nextBytes(data);
      MessageDigest ours = Digest.newMessageDigest();
      MessageDigest theirs = jdk();
      int pos = 0;
      while (pos < data.length) {
        int n = Math.min(data.length - pos, rnd.nextInt(3) == 0 ? 1 : rnd.nextInt(70_000));
        if (n == 1 && rnd.nextBoolean()) {
          ours.update(data[pos]);
        } else {
          ours.update(data, pos, n);
        }
        theirs.update(data, pos, n);
        pos += n;
      }
      assertThat(hex(ours.digest()))
          .as("round %d, %d bytes", round, data.length)
          .isEqualTo(hex(theirs.digest()));
    }
  }

  @Test
  void everyKindOfBufferMatchesTheJdkAndIsConsumed() throws Exception {
    byte[] data = new byte[200_003];
    new Random(3).nextBytes(data);
    byte[] want = jdk().digest(java.util.Arrays.copyOfRange(data, 5, 200_000));
    ByteBuffer direct = ByteBuffer.allocateDirect(data.length).put(data).flip();
    for (ByteBuffer b :
        new ByteBuffer[] {
          ByteBuffer.wrap(data),
          ByteBuffer.wrap(data).asReadOnlyBuffer(),
          direct,
          direct.asReadOnlyBuffer(),
          ByteBuffer.wrap(data).slice(0, data.length)
        }) {
      b.position(5).limit(200_000);
      MessageDigest md = Digest.newMessageDigest();
      md.update(b);
      assertThat(b.position()).as("consumed: %s", b).isEqualTo(200_000);
      assertThat(hex(md.digest())).as("%s", b).isEqualTo(hex(want));
    }
    Path f = tmp.resolve("mapped");
    Files.write(f, data);
    try (FileChannel ch = FileChannel.open(f)) {
      ByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, data.length);
      mapped.position(5).limit(200_000);
      assertThat(Digest.of(mapped).toString()).isEqualTo(hex(want));
      assertThat(mapped.position()).as("Digest.of leaves the buffer as it is").isEqualTo(5);
    }
  }

  @Test
  void clonesDigestsIntoBuffersAndResets() throws Exception {
    byte[] a = "the first half, ".getBytes(StandardCharsets.UTF_8);
    byte[] b = "and the second".getBytes(StandardCharsets.UTF_8);
    MessageDigest md = Digest.newMessageDigest();
    md.update(a);
    MessageDigest copy = (MessageDigest) md.clone();
    md.update(b);
    byte[] whole = new byte[40];
    assertThat(md.digest(whole, 8, 32)).isEqualTo(32);
    assertThat(hex(java.util.Arrays.copyOfRange(whole, 8, 40)))
        .isEqualTo(
            hex(
                jdk()
                    .digest(
                        (new String(a, StandardCharsets.UTF_8)
                                + new String(b, StandardCharsets.UTF_8))
                            .getBytes(StandardCharsets.UTF_8))));
    assertThat(hex(copy.digest()))
        .as("the clone did not see the second half")
        .isEqualTo(hex(jdk().digest(a)));
    assertThat(hex(md.digest())).as("digest() resets").isEqualTo(hex(jdk().digest()));
    md.update(a);
    md.reset();
    assertThat(hex(md.digest(b))).isEqualTo(hex(jdk().digest(b)));
    assertThatThrownBy(() -> md.digest(new byte[31], 0, 31)).isInstanceOf(DigestException.class);
  }

  @Test
  void digestOfMatchesForEveryEntryPoint() throws IOException {
    byte[] data = new byte[77_777];
    new Random(11).nextBytes(data);
    Digest d = Digest.of(data);
    assertThat(Digest.of(data, 0, data.length)).isEqualTo(d);
    assertThat(Digest.of(ByteBuffer.wrap(data))).isEqualTo(d);
    assertThat(Digest.of(ByteBuffer.allocateDirect(data.length).put(data).flip())).isEqualTo(d);
  }
}
