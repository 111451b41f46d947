package org.osfarm.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.FeatureTree;
import org.osfarm.core.testing.TestImages;

/** Pull and push between two real repositories over real HTTP on loopback. */
class ObjectTransferTest {
  @TempDir Path tmp;
  Repository server;
  Repository client;
  TransferServer http;
  URI uri;

  @BeforeEach
  void setUp() throws IOException {
    server = Repository.init(tmp.resolve("server"));
    client = Repository.init(tmp.resolve("client"));
    http = startServer(server, true);
    uri = URI.create("http://127.0.0.1:" + http.address().getPort());
  }

  static TransferServer startServer(Repository repo, boolean push) throws IOException {
    return new TransferServer(
        new InetSocketAddress("127.0.0.1", 0), new ObjectProtocol(repo, push), null);
  }

  @AfterEach
  void tearDown() {
    http.close();
    server.close();
    client.close();
  }

  private Digest publish(Repository repo, Path tar, String ref) throws IOException {
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

  private static List<String> manifest(Repository r, Digest snap) {
    List<String> lines = new ArrayList<>();
    r.manifest(snap, lines::add);
    return lines;
  }

  /** POSTs ids to the pack route; returns the content type and the body. */
  private Map.Entry<String, byte[]> postPack(String query, List<Digest> ids)
      throws IOException, InterruptedException {
    byte[] body = new byte[ids.size() * Digest.LENGTH];
    for (int i = 0; i < ids.size(); i++) {
      ids.get(i).copyTo(body, i * Digest.LENGTH);
    }
    try (java.net.http.HttpClient c = java.net.http.HttpClient.newHttpClient()) {
      java.net.http.HttpResponse<byte[]> r =
          c.send(
              java.net.http.HttpRequest.newBuilder(uri.resolve("/v1/objects/pack" + query))
                  .POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(body))
                  .build(),
              java.net.http.HttpResponse.BodyHandlers.ofByteArray());
      assertThat(r.statusCode()).isEqualTo(200);
      return Map.entry(r.headers().firstValue("Content-Type").orElse(""), r.body());
    }
  }

  @Test
  void storedPackCarriesEveryObjectAsStoredAndAPlainPackIsUnchanged() throws Exception {
    Digest snap = publish(server, featureTar(), "images/f");
    List<Digest> ids = new ArrayList<>();
    server.store().forEach(i -> ids.add(i.id()));
    Map<Digest, byte[]> want = new java.util.HashMap<>();
    int compressed = 0;
    try (org.osfarm.core.store.ObjectStore.Reader rd = server.store().newReader()) {
      for (Digest id : ids) {
        org.osfarm.core.store.ObjectType t = server.store().info(id).orElseThrow().type();
        want.put(id, rd.read(id, t));
        if (rd.readStored(id, t).codec() == org.osfarm.core.store.StoredObject.ZSTD) {
          compressed++;
        }
      }
    }
    assertThat(compressed).as("objects stored compressed").isPositive();
    for (String q : List.of("?stored=1", "", "?zstd=3")) {
      Map.Entry<String, byte[]> got = postPack(q, ids);
      boolean stored = q.contains("stored");
      assertThat(got.getKey())
          .isEqualTo(stored ? ObjectPack.STORED_TYPE : "application/x-osfarm-pack");
      java.io.InputStream in = new java.io.ByteArrayInputStream(got.getValue());
      int n = 0;
      try (ObjectPack.Reader r =
          stored ? ObjectPack.Reader.stored(in) : new ObjectPack.Reader(in)) {
        for (ObjectPack.Item it = r.next(); it != null; it = r.next(), n++) {
          assertThat(it.claimedId()).isEqualTo(ids.get(n));
          assertThat(it.damage()).isNull();
          assertThat(it.data()).isEqualTo(want.get(it.claimedId()));
          assertThat(Digest.of(it.data())).isEqualTo(it.claimedId());
        }
      }
      assertThat(n).isEqualTo(ids.size());
      if (stored) {
        // cut anywhere before the trailer: a clear truncation error, never a short success
        byte[] cut = java.util.Arrays.copyOf(got.getValue(), got.getValue().length / 2);
        assertThatThrownBy(
                () -> {
                  try (ObjectPack.Reader r =
                      ObjectPack.Reader.stored(new java.io.ByteArrayInputStream(cut))) {
                    while (r.next() != null) {
                      // read on
                    }
                  }
                })
            .isInstanceOf(PeerDataException.class)
            .hasMessageContaining("truncated");
      }
    }
    assertThat(snap).isNotNull();
  }

  @Test
  void pullCopiesEverythingExactlyAndASecondPullSendsNothing() throws IOException {
    Digest id = publish(server, featureTar(), "images/feature");

    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/feature", "mirror/feature", ProgressListener.NONE);

    assertThat(r.snapshot()).isEqualTo(id);
    assertThat(r.ref()).isEqualTo(RefUpdate.CREATED);
    assertThat(r.objectsSent()).isGreaterThan(10);
    assertThat(client.refs().get("mirror/feature")).contains(id);
    assertThat(manifest(client, id)).isEqualTo(manifest(server, id));
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();

    TransferResult again =
        ObjectTransfer.pull(client, uri, id.hex(), "mirror/other", ProgressListener.NONE);
    assertThat(again.objectsSent()).isZero();
    assertThat(again.wireBytes()).isLessThan(1000);
  }

  @Test
  void pushSendsOnlyWhatTheServerLacksAndMovesItsRef() throws IOException {
    Digest id = publish(client, featureTar(), "images/feature");

    TransferResult r =
        ObjectTransfer.push(client, "images/feature", uri, "in/feature", ProgressListener.NONE);
    assertThat(r.ref()).isEqualTo(RefUpdate.CREATED);
    assertThat(server.refs().get("in/feature")).contains(id);
    assertThat(server.fsck(ProgressListener.NONE).problems()).isEmpty();
    assertThat(manifest(server, id)).isEqualTo(manifest(client, id));

    TransferResult again =
        ObjectTransfer.push(client, "images/feature", uri, "in/copy", ProgressListener.NONE);
    assertThat(again.objectsSent()).isZero();
    assertThat(server.refs().get("in/copy")).contains(id);
  }

  @Test
  void pushIsRefusedUnlessAllowed() throws IOException {
    publish(client, featureTar(), "images/feature");
    try (TransferServer ro = startServer(server, false)) {
      URI u = URI.create("http://127.0.0.1:" + ro.address().getPort());
      assertThatThrownBy(
              () -> ObjectTransfer.push(client, "images/feature", u, "x", ProgressListener.NONE))
          .isInstanceOf(TransferException.class)
          .hasMessageContaining("--allow-push");
    }
    assertThat(server.refs().list()).isEmpty();
  }

  @Test
  void missingRemoteRefIsAClearError() {
    assertThatThrownBy(() -> ObjectTransfer.pull(client, uri, "nope", "x", ProgressListener.NONE))
        .isInstanceOf(NotFoundException.class)
        .hasMessageContaining("no ref 'nope'");
  }

  @Test
  void lyingPeerIsDetectedAndNothingUnverifiedIsKept() throws IOException {
    Digest id = publish(server, featureTar(), "images/feature");
    try (TamperingProxy proxy = new TamperingProxy(uri)) {
      proxy.route = "/objects/pack";
      proxy.rewrite =
          pack ->
              TamperingProxy.rewritePack(
                  pack,
                  b -> {
                    byte[] c = b.clone();
                    if (c.length > 0) {
                      c[c.length / 2] ^= 1;
                    }
                    return c;
                  });
      assertThatThrownBy(
              () ->
                  ObjectTransfer.pull(
                      client, proxy.uri(), "images/feature", "m", ProgressListener.NONE))
          .isInstanceOf(PeerDataException.class)
          .hasMessageContaining("corrupted or lying peer");
    }
    assertThat(client.refs().get("m")).isEmpty();
    long[] n = new long[1];
    client.store().refresh();
    client.store().forEach(o -> n[0]++);
    assertThat(n[0]).isZero();
    assertThat(client.store().contains(id)).isFalse();
  }

  @Test
  void lyingPusherIsRejectedByTheServer() throws IOException {
    publish(client, featureTar(), "images/feature");
    // A client that sends a tree whose files it never sends: the server must refuse the tree.
    Digest snap = client.resolve("images/feature");
    Digest tree = client.readSnapshot(snap).tree();
    RemoteRepository rr = new RemoteRepository(uri);
    assertThatThrownBy(
            () ->
                rr.receivePack(
                    w -> {
                      try (var rd = client.store().newReader()) {
                        w.write(
                            org.osfarm.core.store.ObjectType.TREE,
                            tree,
                            rd.read(tree, org.osfarm.core.store.ObjectType.TREE));
                      }
                    }))
        .isInstanceOf(TransferException.class)
        .hasMessageContaining("neither sent before it nor stored here");
    assertThat(server.store().contains(tree)).isFalse();
    assertThatThrownBy(() -> rr.updateRef("x", null, snap))
        .isInstanceOf(TransferException.class)
        .hasMessageContaining("push its objects first");
  }

  /** A pull of images/feature into ref m whose pack answers end after {@code cut} bytes fails. */
  private void pullWithPackCut(long cut, long flushBytes) throws IOException {
    try (TamperingProxy proxy = new TamperingProxy(uri)) {
      proxy.route = "/objects/pack";
      proxy.cutAfter = cut;
      assertThatThrownBy(
              () ->
                  ObjectTransfer.pull(
                      client,
                      proxy.uri(),
                      null,
                      "images/feature",
                      "m",
                      ProgressListener.NONE,
                      flushBytes))
          .isInstanceOf(TransferException.class);
    }
  }

  @Test
  void truncatedPackIsDetectedAndTheNextPullResumes() throws IOException {
    publish(server, featureTar(), "images/feature");
    pullWithPackCut(200, PackReceiver.FLUSH_BYTES);
    assertThat(client.refs().get("m")).isEmpty();
    // Cut the contents' pack (the only answer over 1 MB) a third in, with objects made durable
    // every 64 KiB: those received before the cut are kept.
    pullWithPackCut(1_000_000, 64 << 10);
    assertThat(client.refs().get("m")).isEmpty();
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();
    TransferResult full;
    try (Repository fresh = Repository.init(tmp.resolve("fresh"))) {
      full = ObjectTransfer.pull(fresh, uri, "images/feature", "m", ProgressListener.NONE);
    }
    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/feature", "m", ProgressListener.NONE);
    assertThat(client.refs().get("m")).contains(r.snapshot());
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();
    // It resumed: what the cut pull kept is not sent again, and nothing else is skipped.
    assertThat(r.objectsPresent()).isPositive();
    assertThat(r.bytesPresent()).isGreaterThanOrEqualTo(64 << 10);
    assertThat(r.objectsSent()).isLessThan(full.objectsSent());
    assertThat(r.bytesSent()).isLessThan(full.bytesSent() - (64 << 10));
    assertThat(r.objectsSent() + r.objectsPresent()).isEqualTo(full.objectsSent());
    assertThat(r.bytesSent() + r.bytesPresent()).isEqualTo(full.bytesSent());
  }

  @Test
  @Tag("slow")
  void pullOfARealImageSendsOnlyWhatItsSiblingLacks() throws IOException {
    Path minbase = TestImages.bookwormMinbase();
    Path plus = TestImages.bookwormMinbasePlus();
    Digest plusId = publish(server, plus, "images/plus");
    publish(client, minbase, "images/minbase");
    long plusBytes = Files.size(plus);

    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/plus", "images/plus", ProgressListener.NONE);
    assertThat(r.snapshot()).isEqualTo(plusId);
    assertThat(r.bytesPresent()).isGreaterThan(plusBytes / 2);
    assertThat(r.wireBytes()).isLessThan(plusBytes / 10);
    assertThat(manifest(client, plusId)).isEqualTo(manifest(server, plusId));
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();

    // And back: push the client's minbase to the server, which has only its sibling.
    TransferResult p =
        ObjectTransfer.push(client, "images/minbase", uri, "images/minbase", ProgressListener.NONE);
    assertThat(p.bytesPresent()).isGreaterThan(10 * p.bytesSent());
    assertThat(server.fsck(ProgressListener.NONE).problems()).isEmpty();
  }

  @Test
  @Tag("slow")
  void anInterruptedPullOfARealImageResumes() throws IOException {
    Digest id = publish(server, TestImages.bookwormMinbase(), "images/minbase");
    // Cut the 6th large pack answer: the batches before it (over 64 MiB) were verified and flushed.
    try (TamperingProxy proxy = new TamperingProxy(uri)) {
      proxy.route = "/objects/pack";
      proxy.cutAfter = 1_000_000;
      proxy.cutOnHit = 6;
      assertThatThrownBy(
              () ->
                  ObjectTransfer.pull(
                      client, proxy.uri(), "images/minbase", "m", ProgressListener.NONE))
          .isInstanceOf(TransferException.class);
    }
    assertThat(client.refs().get("m")).isEmpty();
    client.store().refresh();
    assertThat(client.store().contains(id)).isFalse();

    TransferResult r =
        ObjectTransfer.pull(client, uri, "images/minbase", "m", ProgressListener.NONE);
    assertThat(r.snapshot()).isEqualTo(id);
    assertThat(r.bytesPresent()).isGreaterThan(PackReceiver.FLUSH_BYTES);
    assertThat(manifest(client, id)).isEqualTo(manifest(server, id));
    assertThat(client.fsck(ProgressListener.NONE).problems()).isEmpty();
  }
}
