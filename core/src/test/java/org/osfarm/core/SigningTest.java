package org.osfarm.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.FeatureTree;
import org.osfarm.core.testing.Programs;

/**
 * Ed25519 signatures embedded in snapshots, on real trees: signing on every write path of the
 * repository, verification against trusted keys, tampering on disk and by re-hashing, the policy
 * setting, and channels promoted by compare-and-swap.
 */
class SigningTest {
  @TempDir static Path shared;
  static Path tar;

  @BeforeAll
  static void makeFeatureTree() throws Exception {
    Path tree = Files.createDirectories(shared.resolve("tree"));
    FeatureTree.create(tree);
    tar = shared.resolve("features.tar");
    FeatureTree.tar(tree, tar);
  }

  private static Digest publish(Repository repo, String ref) throws IOException {
    try (TarSource s = TarSource.open(tar)) {
      return repo.publish(s, ref, "features", Map.of(), ProgressListener.NONE).snapshot();
    }
  }

  private static void setting(Path repoDir, String line) throws IOException {
    Files.writeString(repoDir.resolve("osfarm.conf"), line + "\n", StandardOpenOption.APPEND);
  }

  private static byte[] raw(Repository repo, Digest id) {
    try (ObjectStore.Reader r = repo.store().newReader()) {
      return r.read(id, ObjectType.SNAPSHOT);
    }
  }

  // ---------------------------------------------------------------- format

  @Test
  void unsignedSnapshotsEncodeAsBeforeAndSignaturesAreATrailingField(@TempDir Path dir)
      throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest unsigned = publish(repo, "plain");
      Snapshot s = repo.readSnapshot(unsigned);
      assertThat(s.signatures()).isEmpty();
      byte[] plain = raw(repo, unsigned);
      assertThat(ObjectCodec.encodeSnapshot(s)).isEqualTo(plain);

      SigningKey a = SigningKey.generate("a");
      SigningKey b = SigningKey.generate("b");
      Snapshot signed = Signatures.sign(Signatures.sign(s, a), b);
      byte[] enc = ObjectCodec.encodeSnapshot(signed);
      // The unsigned encoding is a prefix: the signatures only append.
      assertThat(Arrays.copyOf(enc, plain.length)).isEqualTo(plain);
      assertThat(enc.length - plain.length).isEqualTo(1 + 2 * (1 + 1 + 8 + 1 + 64));
      Snapshot back = ObjectCodec.decodeSnapshot(Digest.of(enc), enc);
      assertThat(back).isEqualTo(signed);
      assertThat(back.signatures()).hasSize(2);
      assertThat(ObjectCodec.encodeSnapshot(back)).isEqualTo(enc);

      // Either key alone verifies; signing again with a key replaces its signature.
      assertThat(Signatures.verify(enc, TrustedKeys.of(List.of(a.publicKey()))).name())
          .isEqualTo("a");
      assertThat(Signatures.verify(enc, TrustedKeys.of(List.of(b.publicKey()))).name())
          .isEqualTo("b");
      assertThat(Signatures.sign(signed, a).signatures()).hasSize(2);

      // Malformed trailers are rejected, never misread.
      byte[] empty = Arrays.copyOf(plain, plain.length + 1); // count 0
      assertThatThrownBy(() -> ObjectCodec.decodeSnapshot(Digest.of(empty), empty))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("empty signature list");
      byte[] truncated = Arrays.copyOf(enc, enc.length - 1);
      assertThatThrownBy(() -> ObjectCodec.decodeSnapshot(Digest.of(truncated), truncated))
          .isInstanceOf(CorruptObjectException.class);
      byte[] badAlg = enc.clone();
      badAlg[plain.length + 1] = 7;
      assertThatThrownBy(() -> ObjectCodec.decodeSnapshot(Digest.of(badAlg), badAlg))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("algorithm 7");
      // Two records in the wrong order: not canonical.
      int rec = 1 + 1 + 8 + 1 + 64;
      byte[] swapped = enc.clone();
      System.arraycopy(enc, plain.length + 1, swapped, plain.length + 1 + rec, rec);
      System.arraycopy(enc, plain.length + 1 + rec, swapped, plain.length + 1, rec);
      assertThatThrownBy(() -> ObjectCodec.decodeSnapshot(Digest.of(swapped), swapped))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("not sorted");
    }
  }

  // ---------------------------------------------------------------- keys

  @Test
  void generatedKeyIsPkcs8WithMode0600AndOpensslAgreesOnItsPublicKey(@TempDir Path dir)
      throws Exception {
    Programs.require("openssl");
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      SignerKey pub = repo.keys().generate("ci@example", false);
      Path key = dir.resolve("repo/keys/signing.key");
      assertThat(Files.getPosixFilePermissions(key))
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(Files.readString(key)).startsWith("-----BEGIN PRIVATE KEY-----\n");
      assertThat(pub.line()).matches("ed25519 [A-Za-z0-9+/]{43}= ci@example");
      assertThat(repo.keys().signingKey().orElseThrow().publicKey()).isEqualTo(pub);
      assertThat(repo.keys().trusted().keys()).containsExactly(pub);

      // openssl reads the key and derives the same public key (DER SubjectPublicKeyInfo).
      Path der = dir.resolve("pub.der");
      Programs.run(
          dir,
          "openssl",
          "pkey",
          "-in",
          key.toString(),
          "-pubout",
          "-outform",
          "DER",
          "-out",
          der.toString());
      byte[] spki = Files.readAllBytes(der);
      byte[] rawPub = Arrays.copyOfRange(spki, spki.length - 32, spki.length);
      assertThat(Base64.getEncoder().encodeToString(rawPub)).isEqualTo(pub.line().split(" ")[1]);

      assertThatThrownBy(() -> repo.keys().generate("again", false))
          .isInstanceOf(RepositoryException.class)
          .hasMessageContaining("exists already");
      assertThat(repo.keys().signingKey().orElseThrow().publicKey()).isEqualTo(pub);
    }
  }

  @Test
  void aKeyMadeByOpensslSignsToo(@TempDir Path dir) throws Exception {
    Programs.require("openssl");
    Path repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      Path key = dir.resolve("elsewhere/site.pem");
      Files.createDirectories(key.getParent());
      Programs.run(dir, "openssl", "genpkey", "-algorithm", "ed25519", "-out", key.toString());
      setting(repoDir, "signing-key " + key);
      SignerKey pub = repo.keys().signingKey().orElseThrow().publicKey();
      Digest id = publish(repo, "images/site");
      assertThat(repo.verifySignature(id, TrustedKeys.of(List.of(pub))).sameKey(pub)).isTrue();
    }
  }

  @Test
  void trustedKeyFilesAreParsedStrictly(@TempDir Path dir) throws Exception {
    SignerKey k = SigningKey.generate("site key").publicKey();
    Path f = dir.resolve("trusted");
    Files.writeString(f, "# site keys\n\n" + k.line() + "\n");
    TrustedKeys t = TrustedKeys.load(f);
    assertThat(t.keys()).containsExactly(k);
    assertThat(t.keys().get(0).name()).isEqualTo("site key");
    assertThat(TrustedKeys.load(dir.resolve("absent")).isEmpty()).isTrue();
    Files.writeString(f, k.line() + "\ned25519 AAAA short\n");
    assertThatThrownBy(() -> TrustedKeys.load(f))
        .isInstanceOf(RepositoryException.class)
        .hasMessageContaining(f + ":2")
        .hasMessageContaining("3 bytes");
    Files.writeString(f, "ssh-rsa AAAAB3 x\n");
    assertThatThrownBy(() -> TrustedKeys.load(f)).hasMessageContaining("ed25519 BASE64 name");
  }

  // ---------------------------------------------------------------- signing on write

  @Test
  void everySnapshotTheRepositoryWritesIsSignedOnceItHasAKey(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest before = publish(repo, "images/a");
      assertThatThrownBy(() -> repo.verifySignature(before, repo.keys().trusted()))
          .isInstanceOfSatisfying(
              SignatureException.class,
              e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.UNSIGNED));

      SignerKey pub = repo.keys().generate("repo", false);
      Digest after = publish(repo, "images/a");
      assertThat(repo.readSnapshot(after).parents()).containsExactly(before);
      assertThat(repo.verifySignature(after, repo.keys().trusted())).isEqualTo(pub);
      // Same content, different snapshot: the signature is part of the object and its id.
      assertThat(repo.readSnapshot(after).tree()).isEqualTo(repo.readSnapshot(before).tree());
      assertThat(Signatures.verify(raw(repo, after), repo.keys().trusted())).isEqualTo(pub);

      // Writers outside publish (the catalog's overlays, installs, labels) use encodeSnapshot.
      Snapshot crafted =
          new Snapshot(
              repo.readSnapshot(after).root(),
              List.of(after),
              java.time.Instant.now(),
              "x",
              Map.of());
      byte[] enc = repo.encodeSnapshot(crafted);
      assertThat(Signatures.verify(enc, repo.keys().trusted())).isEqualTo(pub);
      assertThat(repo.fsck(ProgressListener.NONE).clean()).isTrue();
    }
  }

  @Test
  void aMissingOrBrokenKeyFailsThePublishAndWritesNothing(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      publish(repo, "images/a");
    }
    setting(repoDir, "signing-key keys/absent.key");
    Map<String, String> state = state(repoDir);
    try (Repository repo = Repository.open(repoDir)) {
      assertThatThrownBy(() -> publish(repo, "images/a"))
          .isInstanceOf(RepositoryException.class)
          .hasMessageContaining("absent.key does not exist")
          .hasMessageContaining("osfarm key generate");
      assertThat(state(repoDir)).isEqualTo(state);

      Files.createDirectories(repoDir.resolve("keys"));
      Files.writeString(repoDir.resolve("keys/absent.key"), "not a key\n");
      state = state(repoDir);
      assertThatThrownBy(() -> publish(repo, "images/b"))
          .isInstanceOf(RepositoryException.class)
          .hasMessageContaining("not an Ed25519 private key");
      assertThat(state(repoDir)).isEqualTo(state);
    }
  }

  @Test
  void aRepositoryThatRequiresSignaturesRefusesToWriteUnsigned(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    Repository.init(repoDir).close();
    setting(repoDir, "require-signatures yes");
    try (Repository repo = Repository.open(repoDir)) {
      assertThatThrownBy(() -> publish(repo, "images/a"))
          .hasMessageContaining("requires signatures")
          .hasMessageContaining("osfarm key generate");
      assertThat(repo.refs().list()).isEmpty();
      repo.keys().generate("k", false);
      Digest id = publish(repo, "images/a");
      assertThat(repo.verifySignature(id, repo.keys().trusted()).name()).isEqualTo("k");
    }
  }

  // ---------------------------------------------------------------- tampering and trust

  @Test
  void aFlippedByteInAStoredSignedSnapshotIsReported(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    Repository.init(repoDir).close();
    setting(repoDir, "compression-level 0"); // stored as is, so the test can find its bytes
    Digest id;
    byte[] enc;
    try (Repository repo = Repository.open(repoDir)) {
      repo.keys().generate("k", false);
      id = publish(repo, "images/a");
      enc = raw(repo, id);
      assertThat(repo.fsck(ProgressListener.NONE).clean()).isTrue();
    }
    Path pack;
    try (Stream<Path> s = Files.list(repoDir.resolve("objects/pack"))) {
      pack = s.filter(p -> p.toString().endsWith(".pack")).findFirst().orElseThrow();
    }
    byte[] all = Files.readAllBytes(pack);
    int at = indexOf(all, enc);
    assertThat(at).as("snapshot stored uncompressed").isPositive();
    // A byte of the message ("features"), inside what the signature covers.
    int msg = indexOf(Arrays.copyOfRange(all, at, at + enc.length), bytes("features"));
    flip(pack, at + msg + 2);
    try (Repository repo = Repository.open(repoDir)) {
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.clean()).isFalse();
      assertThat(f.problems()).anySatisfy(p -> assertThat(p).contains(id.hex()));
      assertThatThrownBy(() -> repo.verifySignature(id, repo.keys().trusted()))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining(id.hex());
    }
    // The same bytes, received from elsewhere (a mount, a pull), fail the signature.
    byte[] tampered = enc.clone();
    tampered[msg + 2] ^= 0x5a;
    try (Repository repo = Repository.open(repoDir)) {
      assertThatThrownBy(() -> Signatures.verify(tampered, repo.keys().trusted()))
          .isInstanceOfSatisfying(
              SignatureException.class,
              e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.BAD_SIGNATURE))
          .hasMessageContaining("altered after signing");
    }
  }

  @Test
  void aRehashedForgeryFailsItsSignatureInVerifyAndFsck(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      repo.keys().generate("k", false);
      Digest id = publish(repo, "images/a");
      Snapshot good = repo.readSnapshot(id);
      // Forger: same signature, other content, stored under its own (correct) hash.
      Map<String, String> meta = new TreeMap<>(good.metadata());
      meta.put("evil", "yes");
      Snapshot forged =
          new Snapshot(
              good.root(), good.parents(), good.time(), good.message(), meta, good.signatures());
      byte[] fb = ObjectCodec.encodeSnapshot(forged);
      Digest fid;
      try (ObjectStore.Inserter ins = repo.store().newInserter()) {
        fid = ins.insert(ObjectType.SNAPSHOT, fb, 0, fb.length);
        ins.flush();
      }
      repo.refs().compareAndSet("images/a", id, fid, "forged");
      assertThatThrownBy(() -> repo.verifySignature(fid, repo.keys().trusted()))
          .isInstanceOfSatisfying(
              SignatureException.class,
              e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.BAD_SIGNATURE));
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems())
          .singleElement()
          .satisfies(p -> assertThat(p).contains(fid.hex()).contains("altered after signing"));
    }
  }

  @Test
  void untrustedAndUnsignedSnapshotsAreRefusedWhereSignaturesAreRequired(@TempDir Path dir)
      throws Exception {
    Digest unsignedId;
    byte[] unsigned;
    byte[] foreign;
    try (Repository other = Repository.init(dir.resolve("other"))) {
      unsignedId = publish(other, "images/u");
      unsigned = raw(other, unsignedId);
      other.keys().generate("stranger", false);
      foreign = raw(other, publish(other, "images/s"));
    }
    Path repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      // Without the policy, anything enters.
      repo.keys().checkIncoming(unsigned);
      repo.keys().checkIncoming(foreign);
    }
    setting(repoDir, "require-signatures yes");
    try (Repository repo = Repository.open(repoDir)) {
      repo.keys().generate("mine", false);
      assertThatThrownBy(() -> repo.keys().checkIncoming(unsigned))
          .isInstanceOfSatisfying(
              SignatureException.class,
              e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.UNSIGNED));
      assertThatThrownBy(() -> repo.keys().checkIncoming(foreign))
          .isInstanceOfSatisfying(
              SignatureException.class,
              e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.UNKNOWN_KEY))
          .hasMessageContaining("untrusted key");
      SignerKey stranger =
          SignerKey.parse(Files.readString(dir.resolve("other/keys/signing.key.pub")).strip());
      assertThat(repo.keys().trust(stranger)).isTrue();
      assertThat(repo.keys().trust(stranger)).isFalse();
      repo.keys().checkIncoming(foreign);

      // fsck notes (does not fail on) unsigned snapshots when signatures are required.
      Digest signed = publish(repo, "images/mine");
      Snapshot s = repo.readSnapshot(signed).unsigned();
      byte[] plain =
          ObjectCodec.encodeSnapshot(new Snapshot(s.root(), List.of(), s.time(), "u", Map.of()));
      Digest plainId;
      try (ObjectStore.Inserter ins = repo.store().newInserter()) {
        plainId = ins.insert(ObjectType.SNAPSHOT, plain, 0, plain.length);
        ins.flush();
      }
      repo.refs().compareAndSet("images/plain", null, plainId, "test");
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.clean()).isTrue();
      assertThat(f.notes())
          .singleElement()
          .satisfies(n -> assertThat(n).contains(plainId.hex()).contains("not signed"));
    }
  }

  // ---------------------------------------------------------------- channels

  @Test
  void promoteMovesChannelsByCompareAndSwapAndLogsWhereFrom(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      SignerKey pub = repo.keys().generate("release", false);
      Digest a = publish(repo, "images/a");
      Digest b = publish(repo, "images/a");
      Channels ch = new Channels(repo);

      Channels.Promotion p = ch.promote("images/a", "development", null);
      assertThat(p.update()).isEqualTo(RefUpdate.CREATED);
      assertThat(repo.refs().get("channels/development")).contains(b);
      assertThat(ch.promoteFrom("development", "testing", null).to()).isEqualTo(b);
      assertThat(repo.refs().log("channels/testing").get(0).message())
          .isEqualTo("promote: from channels/development (" + b.hex() + ")");
      // A channel name as the source means that channel.
      assertThat(ch.promote("testing", "production", "none").to()).isEqualTo(b);

      // Roll development back to a, with --expect.
      Channels.Promotion back = ch.promote(a.shortHex(12), "development", b.hex());
      assertThat(back.update()).isEqualTo(RefUpdate.UPDATED);
      assertThat(repo.refs().log("channels/development").get(1).message())
          .isEqualTo("promote: from snapshot (" + a.hex() + "), replacing " + b.shortHex(12));

      // A stale --expect is a conflict and changes nothing.
      Map<String, String> before = state(dir.resolve("repo"));
      assertThatThrownBy(() -> ch.promote("images/a", "development", b.hex()))
          .isInstanceOf(RefConflictException.class)
          .hasMessageContaining("channel development holds " + a.hex())
          .hasMessageContaining("not the expected " + b.hex())
          .hasMessageContaining("Nothing changed");
      assertThatThrownBy(() -> ch.promote("images/a", "production", "none"))
          .isInstanceOf(RefConflictException.class);
      assertThat(state(dir.resolve("repo"))).isEqualTo(before);

      assertThatThrownBy(() -> ch.promote("images/a", "../prod", null))
          .isInstanceOf(InvalidInputException.class)
          .hasMessageContaining("not a valid channel name");
      assertThatThrownBy(() -> ch.promoteFrom("staging", "production", null))
          .isInstanceOf(NotFoundException.class)
          .hasMessageContaining("channel 'staging' is empty");
      ch.promote("images/a", "site/cern", null); // other valid ref names are channels too

      List<Channels.ChannelState> list = ch.list();
      assertThat(list)
          .extracting(Channels.ChannelState::name)
          .containsExactly("development", "testing", "production", "site/cern");
      assertThat(list.get(0).snapshot()).isEqualTo(a);
      assertThat(list.get(1).snapshot()).isEqualTo(b);
      assertThat(list.get(1).signer()).isEqualTo(pub.describe());
      assertThat(list.get(1).moved()).isNotNull();
      assertThat(list.get(1).how()).contains("channels/development");
    }
  }

  @Test
  void withRequiredSignaturesOnlySignedSnapshotsArePromoted(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    Digest unsigned;
    try (Repository repo = Repository.init(repoDir)) {
      unsigned = publish(repo, "images/old");
      new Channels(repo).promote("images/old", "production", null);
    }
    setting(repoDir, "require-signatures yes");
    try (Repository repo = Repository.open(repoDir)) {
      repo.keys().generate("release", false);
      Channels ch = new Channels(repo);
      assertThatThrownBy(() -> ch.promote(unsigned.hex(), "testing", null))
          .isInstanceOf(SignatureException.class)
          .hasMessageContaining("not promoted to testing")
          .hasMessageContaining("not signed");
      assertThat(repo.refs().get("channels/testing")).isEmpty();
      // tagging a channel directly obeys the same rule; other refs are not channels
      assertThatThrownBy(() -> repo.tag("channels/testing", unsigned.hex()))
          .isInstanceOf(SignatureException.class)
          .hasMessageContaining("not tagged channels/testing")
          .hasMessageContaining("not signed");
      assertThat(repo.refs().get("channels/testing")).isEmpty();
      assertThat(repo.tag("images/old-again", unsigned.hex())).isEqualTo(RefUpdate.CREATED);
      Digest signed = publish(repo, "images/new");
      assertThat(ch.promote("images/new", "testing", null).signer().name()).isEqualTo("release");
      assertThat(ch.list().get(2).signer()).isEqualTo("unsigned");
      assertThat(repo.refs().get("channels/testing")).contains(signed);
      assertThat(repo.tag("channels/development", "images/new")).isEqualTo(RefUpdate.CREATED);
    }
  }

  // ---------------------------------------------------------------- helpers

  private static Map<String, String> state(Path repo) throws IOException {
    return SafetyTest.repoState(repo);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
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

  private static void flip(Path file, long at) throws IOException {
    try (FileChannel ch =
        FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer one = ByteBuffer.allocate(1);
      ch.read(one, at);
      ch.write(ByteBuffer.wrap(new byte[] {(byte) (one.get(0) ^ 0x5a)}), at);
    }
  }
}
