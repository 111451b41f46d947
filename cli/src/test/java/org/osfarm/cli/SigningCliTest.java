package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.osfarm.cli.CliTest.ok;
import static org.osfarm.cli.CliTest.osfarm;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.TestImages;

/** {@code osfarm key, verify, promote, channels} and fsck's signature notes on a real image. */
class SigningCliTest {
  private static final String LABELS_REF = "catalog/labels"; // where the catalog keeps labels

  @Test
  @Tag("slow")
  void signPublishVerifyTamperAndPromoteARealImage(@TempDir Path dir) throws Exception {
    Path image = TestImages.bookwormMinbase();
    Path repo = dir.resolve("repo");
    ok(osfarm(repo, "init"));
    // Stored uncompressed, so the test can find the snapshot's bytes in the pack.
    Files.writeString(
        repo.resolve("osfarm.conf"), "compression-level 0\n", StandardOpenOption.APPEND);
    Digest unsigned =
        Digest.fromHex(
            ok(osfarm(repo, "publish", image.toString(), "--ref", "images/old")).lastLine());

    CliTest.Result show = osfarm(repo, "key", "show");
    assertThat(show.exit()).isEqualTo(1);
    assertThat(show.err()).contains("no signing key").contains("osfarm key generate");

    String pub = ok(osfarm(repo, "key", "generate", "--name", "release@site")).lastLine();
    assertThat(pub).matches("ed25519 [A-Za-z0-9+/]{43}= release@site");
    assertThat(Files.getPosixFilePermissions(repo.resolve("keys/signing.key")))
        .isEqualTo(PosixFilePermissions.fromString("rw-------"));
    assertThat(ok(osfarm(repo, "key", "show")).lastLine()).isEqualTo(pub);
    assertThat(osfarm(repo, "key", "generate").err()).contains("exists already");

    String id =
        ok(osfarm(repo, "publish", image.toString(), "--ref", "images/bookworm", "-m", "minbase"))
            .lastLine();
    assertThat(ok(osfarm(repo, "verify", "images/bookworm")).lastLine())
        .isEqualTo(id + " signed by release@site (key " + keyId(repo) + ")");
    CliTest.Result un = osfarm(repo, "verify", "images/old");
    assertThat(un.exit()).isEqualTo(1);
    assertThat(un.err()).contains("is not signed");
    // Snapshots written outside publish are signed too: an overlay, the labels store.
    String overlay =
        ok(osfarm(
                repo, "overlay", "images/bookworm", "--ref", "images/node1", "--hostname", "node1"))
            .lastLine();
    assertThat(ok(osfarm(repo, "verify", overlay)).lastLine()).contains("signed by release@site");
    ok(osfarm(repo, "label", "images/bookworm", "team=ops"));
    assertThat(ok(osfarm(repo, "verify", LABELS_REF)).lastLine())
        .contains("signed by release@site");

    // Another party's trust file that does not list our key.
    Path other = dir.resolve("other");
    ok(osfarm(other, "init"));
    String otherPub = ok(osfarm(other, "key", "generate", "--name", "other")).lastLine();
    CliTest.Result untrusted =
        osfarm(
            repo, "verify", "images/bookworm", "--trust", other.resolve("keys/trusted").toString());
    assertThat(untrusted.exit()).isEqualTo(1);
    assertThat(untrusted.err()).contains("signed only by untrusted key " + keyId(repo));
    ok(osfarm(other, "key", "trust", repo.resolve("keys/signing.key.pub").toString()));
    assertThat(
            ok(osfarm(
                    repo,
                    "verify",
                    "images/bookworm",
                    "--trust",
                    other.resolve("keys/trusted").toString()))
                .lastLine())
        .contains("signed by release@site");
    assertThat(ok(osfarm(repo, "key", "trust", otherPub)).err()).contains("trusted: other");
    assertThat(ok(osfarm(repo, "key", "trust", otherPub)).err()).contains("already trusted");

    // Channels.
    ok(osfarm(repo, "promote", "images/bookworm", "--to", "development"));
    ok(osfarm(repo, "promote", "--from", "development", "--to", "testing", "--expect", "none"));
    CliTest.Result conflict =
        osfarm(repo, "promote", "images/old", "--to", "testing", "--expect", "images/old");
    assertThat(conflict.exit()).isEqualTo(1);
    assertThat(conflict.err())
        .contains("channel testing holds " + id)
        .contains("not the expected " + unsigned.hex())
        .contains("Nothing changed");
    assertThat(osfarm(repo, "promote", "images/old", "--to", "../prod").err())
        .contains("not a valid channel name");
    String channels = ok(osfarm(repo, "channels")).out();
    assertThat(channels)
        .containsPattern("development +" + id.substring(0, 12) + " +\\S+ \\S+ +release@site")
        .containsPattern(
            "testing +" + id.substring(0, 12) + " .*promote: from channels/development")
        .containsPattern("production +- +- +-");

    // require-signatures: fsck notes the unsigned snapshot without failing; promote refuses it.
    Files.writeString(
        repo.resolve("osfarm.conf"), "require-signatures yes\n", StandardOpenOption.APPEND);
    CliTest.Result fsck = ok(osfarm(repo, "fsck"));
    assertThat(fsck.out()).contains("note: snapshot " + unsigned.hex() + " is not signed");
    CliTest.Result refused = osfarm(repo, "promote", "images/old", "--to", "production");
    assertThat(refused.exit()).isEqualTo(1);
    assertThat(refused.err()).contains("not promoted to production").contains("not signed");

    // A forged snapshot (altered, re-hashed, old signature kept): verify and fsck call it damage.
    Digest fid;
    try (Repository r = Repository.open(repo)) {
      Snapshot good = r.readSnapshot(Digest.fromHex(id));
      Map<String, String> meta = new TreeMap<>(good.metadata());
      meta.put("evil", "yes");
      byte[] fb =
          ObjectCodec.encodeSnapshot(
              new Snapshot(
                  good.root(),
                  good.parents(),
                  good.time(),
                  good.message(),
                  meta,
                  good.signatures()));
      try (ObjectStore.Inserter ins = r.store().newInserter()) {
        fid = ins.insert(ObjectType.SNAPSHOT, fb, 0, fb.length);
        ins.flush();
      }
      r.refs().compareAndSet("images/forged", null, fid, "test");
    }
    CliTest.Result forged = osfarm(repo, "verify", "images/forged");
    assertThat(forged.exit()).isEqualTo(Main.EXIT_DAMAGE);
    assertThat(forged.err()).contains("altered after signing");
    CliTest.Result fsck2 = osfarm(repo, "fsck");
    assertThat(fsck2.exit()).isEqualTo(Main.EXIT_DAMAGE);
    assertThat(fsck2.out())
        .contains("damage: snapshot " + fid.hex())
        .contains("altered after signing");
    ok(osfarm(repo, "ref", "delete", "images/forged"));
    ok(osfarm(repo, "gc", "--expire-reflog", "0"));

    // A flipped byte in the stored signed snapshot: verify and fsck report damage.
    byte[] enc;
    try (Repository r = Repository.open(repo);
        ObjectStore.Reader rd = r.store().newReader()) {
      enc = rd.read(Digest.fromHex(id), ObjectType.SNAPSHOT);
    }
    boolean flipped = false;
    try (Stream<Path> s = Files.list(repo.resolve("objects/pack"))) {
      for (Path pack : s.filter(p -> p.toString().endsWith(".pack")).toList()) {
        int at = indexOf(Files.readAllBytes(pack), enc);
        if (at >= 0) {
          flip(pack, at + enc.length - 100); // inside the snapshot, before its signature
          flipped = true;
        }
      }
    }
    assertThat(flipped).isTrue();
    CliTest.Result bad = osfarm(repo, "verify", "images/bookworm");
    assertThat(bad.exit()).isEqualTo(Main.EXIT_DAMAGE);
    assertThat(bad.err()).contains("repository damage").contains(id);
    CliTest.Result fsck3 = osfarm(repo, "fsck");
    assertThat(fsck3.exit()).isEqualTo(Main.EXIT_DAMAGE);
    assertThat(fsck3.out()).contains("damage: ").contains(id);
  }

  private static String keyId(Path repo) throws Exception {
    try (Repository r = Repository.open(repo)) {
      return r.keys().signingKey().orElseThrow().publicKey().keyId();
    }
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static void flip(Path file, long at) throws Exception {
    try (FileChannel ch =
        FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer one = ByteBuffer.allocate(1);
      ch.read(one, at);
      ch.write(ByteBuffer.wrap(new byte[] {(byte) (one.get(0) ^ 0x5a)}), at);
    }
  }
}
