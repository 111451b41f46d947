package org.osfarm.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.SignatureException;
import org.osfarm.core.SignerKey;
import org.osfarm.core.Snapshot;
import org.osfarm.core.TarSource;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.FeatureTree;
import org.osfarm.core.testing.TestImages;

/**
 * Signed snapshots over real HTTP on loopback: a repository with {@code require-signatures yes}
 * pulls only snapshots signed by a key it trusts and stores nothing of the others, and its server
 * refuses such pushes.
 */
class SignedTransferTest {
  @TempDir Path tmp;
  Repository server;
  Repository client;
  TransferServer http;
  URI uri;

  @BeforeEach
  void setUp() throws IOException {
    server = Repository.init(tmp.resolve("server"));
    Repository.init(tmp.resolve("client")).close();
    Files.writeString(
        tmp.resolve("client/osfarm.conf"), "require-signatures yes\n", StandardOpenOption.APPEND);
    client = Repository.open(tmp.resolve("client"));
    client.keys().generate("client", false);
    http = ObjectTransferTest.startServer(server, true);
    uri = URI.create("http://127.0.0.1:" + http.address().getPort());
  }

  @AfterEach
  void tearDown() {
    http.close();
    server.close();
    client.close();
  }

  private static Digest publish(Repository repo, Path tar, String ref) throws IOException {
    try (TarSource s = TarSource.open(tar)) {
      return repo.publish(s, ref, "test", Map.of(), ProgressListener.NONE).snapshot();
    }
  }

  private Path featureTar() throws IOException {
    Path root = Files.createDirectory(tmp.resolve("tree"));
    FeatureTree.create(root);
    Path tar = tmp.resolve("feature.tar");
    FeatureTree.tar(root, tar);
    return tar;
  }

  private static long objectCount(Repository r) {
    r.store().refresh();
    long[] n = {0};
    r.store().forEach(o -> n[0]++);
    return n[0];
  }

  private static Map<String, Long> files(Path dir) throws IOException {
    Map<String, Long> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        if (Files.isRegularFile(p) && !p.getFileName().toString().endsWith("lock")) {
          m.put(dir.relativize(p).toString(), Files.size(p));
        }
      }
    }
    return m;
  }

  @Test
  void pullRefusesUnsignedAndUntrustedSnapshotsAndStoresNothing() throws IOException {
    Path tar = featureTar();
    Digest unsigned = publish(server, tar, "images/unsigned");
    SignerKey serverKey = server.keys().generate("server", false);
    Digest signed = publish(server, tar, "images/signed");
    Map<String, Long> before = files(tmp.resolve("client"));

    assertThatThrownBy(
            () -> ObjectTransfer.pull(client, uri, "images/unsigned", "m", ProgressListener.NONE))
        .isInstanceOfSatisfying(
            SignatureException.class,
            e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.UNSIGNED))
        .hasMessageContaining(unsigned.hex());
    assertThatThrownBy(
            () -> ObjectTransfer.pull(client, uri, "images/signed", "m", ProgressListener.NONE))
        .isInstanceOfSatisfying(
            SignatureException.class,
            e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.UNKNOWN_KEY))
        .hasMessageContaining(serverKey.keyId());
    assertThat(files(tmp.resolve("client"))).isEqualTo(before);
    assertThat(objectCount(client)).isZero();

    client.keys().trust(SignerKey.parse(serverKey.line()));
    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/signed", "m", ProgressListener.NONE);
    assertThat(r.snapshot()).isEqualTo(signed);
    assertThat(client.verifySignature(signed, client.keys().trusted()).name()).isEqualTo("server");
    assertThat(client.fsck(ProgressListener.NONE).notes()).isEmpty();
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();
  }

  @Test
  void pullRefusesAForgedSnapshotThatHashesRightButCarriesAnotherSnapshotsSignature()
      throws IOException {
    SignerKey serverKey = server.keys().generate("server", false);
    client.keys().trust(serverKey);
    Digest signed = publish(server, featureTar(), "images/a");
    // A compromised server: alters the metadata, keeps the signature, stores it under its hash.
    Snapshot good = server.readSnapshot(signed);
    Map<String, String> meta = new TreeMap<>(good.metadata());
    meta.put("spec", "evil");
    byte[] forged =
        ObjectCodec.encodeSnapshot(
            new Snapshot(
                good.root(), good.parents(), good.time(), good.message(), meta, good.signatures()));
    Digest fid;
    try (ObjectStore.Inserter ins = server.store().newInserter()) {
      fid = ins.insert(ObjectType.SNAPSHOT, forged, 0, forged.length);
      ins.flush();
    }
    server.refs().compareAndSet("images/a", signed, fid, "forge");

    assertThatThrownBy(
            () -> ObjectTransfer.pull(client, uri, "images/a", "m", ProgressListener.NONE))
        .isInstanceOfSatisfying(
            SignatureException.class,
            e -> assertThat(e.reason()).isEqualTo(SignatureException.Reason.BAD_SIGNATURE))
        .hasMessageContaining("altered after signing");
    assertThat(objectCount(client)).isZero();
    assertThat(client.refs().get("m")).isEmpty();
  }

  @Test
  void aServerThatRequiresSignaturesRefusesUnsignedPushes() throws IOException {
    Digest old = publish(server, featureTar(), "images/old"); // from before the policy
    Files.writeString(
        tmp.resolve("server/osfarm.conf"), "require-signatures yes\n", StandardOpenOption.APPEND);
    try (Repository pusher = Repository.init(tmp.resolve("pusher"))) {
      Digest id = publish(pusher, tmp.resolve("feature.tar"), "images/a");
      assertThatThrownBy(
              () -> ObjectTransfer.push(pusher, "images/a", uri, "in/a", ProgressListener.NONE))
          .isInstanceOf(TransferException.class)
          .hasMessageContaining("refused")
          .hasMessageContaining("not signed");
      server.store().refresh();
      assertThat(server.store().contains(id)).isFalse();
      assertThat(server.refs().get("in/a")).isEmpty();
      // Naming an unsigned snapshot the server holds from before the policy is refused too.
      RemoteRepository rr = new RemoteRepository(uri);
      assertThatThrownBy(() -> rr.updateRef("in/old", null, old))
          .isInstanceOf(TransferException.class)
          .hasMessageContaining("not signed");
      assertThat(server.refs().get("in/old")).isEmpty();

      // Signed by a key the server trusts: accepted.
      SignerKey k = pusher.keys().generate("pusher", false);
      server.keys().trust(k);
      Digest signed = publish(pusher, tmp.resolve("feature.tar"), "images/a");
      ObjectTransfer.push(pusher, "images/a", uri, "in/a", ProgressListener.NONE);
      assertThat(server.refs().get("in/a")).contains(signed);
      assertThat(server.verifySignature(signed, server.keys().trusted()).name())
          .isEqualTo("pusher");
    }
  }

  @Test
  @Tag("slow")
  void aSignedRealImageIsPulledAndVerifiedWithItsSignature() throws IOException {
    SignerKey serverKey = server.keys().generate("release", false);
    Digest id = publish(server, TestImages.bookwormMinbase(), "images/minbase");
    client.keys().trust(serverKey);
    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/minbase", "images/minbase", ProgressListener.NONE);
    assertThat(r.snapshot()).isEqualTo(id);
    assertThat(r.objectsSent()).isGreaterThan(1000);
    var report = client.fsck(ProgressListener.NONE);
    assertThat(report.problems()).isEmpty();
    assertThat(report.notes()).isEmpty();
    assertThat(client.verifySignature(id, client.keys().trusted())).isEqualTo(serverKey);
    assertThat(List.copyOf(client.readSnapshot(id).signatures()))
        .singleElement()
        .satisfies(s -> assertThat(s.keyId()).isEqualTo(serverKey.keyId()));
  }
}
