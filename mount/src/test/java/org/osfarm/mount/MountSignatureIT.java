package org.osfarm.mount;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.SigningKey;
import org.osfarm.core.testing.Programs;

/** {@code --trust}: a real FUSE mount serves a snapshot only when a trusted key signed it. */
@Tag("slow")
class MountSignatureIT {
  @TempDir static Path dir;
  static Path repoDir;
  static Path trusted;
  static Path stranger;

  @BeforeAll
  static void publish() throws IOException {
    boolean fuse = Files.exists(Path.of("/dev/fuse"));
    if (!fuse && Programs.inCi()) {
      throw new AssertionError("/dev/fuse is missing; CI must run with FUSE available");
    }
    assumeTrue(fuse, "/dev/fuse is absent");
    Programs.require("fusermount3");
    Path tree = Files.createDirectories(dir.resolve("tree/etc"));
    Files.writeString(tree.resolve("motd"), "signed content\n");
    repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      // unsigned first, then a key: the next publish is signed
      repo.publish(
          new DirectorySource(dir.resolve("tree"), ProgressListener.NONE),
          "images/unsigned",
          "unsigned",
          Map.of(),
          ProgressListener.NONE);
      trusted = dir.resolve("trusted.pub");
      Files.writeString(trusted, repo.keys().generate("farm", false).line() + "\n");
      repo.publish(
          new DirectorySource(dir.resolve("tree"), ProgressListener.NONE),
          "images/signed",
          "signed",
          Map.of(),
          ProgressListener.NONE);
    }
    stranger = dir.resolve("stranger.pub");
    Files.writeString(stranger, SigningKey.generate("stranger").publicKey().line() + "\n");
  }

  private static MountOptions.Builder opts(String ref, String name, Path trust) throws IOException {
    Path mp = Files.createDirectories(dir.resolve("mnt-" + name));
    return new MountOptions.Builder(repoDir.toString(), ref, mp)
        .cacheDir(dir.resolve("cache-" + name))
        .trust(trust);
  }

  @Test
  void signedByATrustedKeyMounts() throws Exception {
    MountOptions o = opts("images/signed", "good", trusted).build();
    try (Mount m = Mount.start(o)) {
      assertThat(Files.readString(o.mountpoint().resolve("etc/motd")))
          .isEqualTo("signed content\n");
    }
  }

  @Test
  void unsignedOrUntrustedIsRefusedAndNothingIsMounted() throws Exception {
    MountOptions unsigned = opts("images/unsigned", "unsigned", trusted).build();
    assertThatThrownBy(() -> Mount.start(unsigned).close())
        .hasMessageContaining("refused")
        .hasMessageContaining("is not signed");
    assertThat(MountTable.isMounted(unsigned.mountpoint(), MountTable.FUSE_TYPE)).isFalse();

    MountOptions untrusted = opts("images/signed", "untrusted", stranger).build();
    assertThatThrownBy(() -> Mount.start(untrusted).close()).hasMessageContaining("refused");
    assertThat(MountTable.isMounted(untrusted.mountpoint(), MountTable.FUSE_TYPE)).isFalse();
  }

  @Test
  void aKeyFileWithoutKeysIsAClearError() throws Exception {
    Path empty = Files.writeString(dir.resolve("empty.pub"), "not a key\n");
    assertThatThrownBy(() -> opts("images/signed", "badkey", empty).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("--trust");
  }
}
