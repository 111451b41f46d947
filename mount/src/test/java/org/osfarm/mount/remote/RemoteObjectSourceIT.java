package org.osfarm.mount.remote;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.Entry;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.store.ObjectInfo;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.TestImages;
import org.osfarm.transfer.ObjectPack;
import org.osfarm.transfer.ObjectProtocol;
import org.osfarm.transfer.ProtocolHandler;
import org.osfarm.transfer.ProtocolRequest;
import org.osfarm.transfer.ProtocolResponse;
import org.osfarm.transfer.TransferServer;

/**
 * The remote source against a real repository holding a real Debian image, served by the transfer
 * module's real server on loopback; misbehaving servers are real servers whose handler lies, stalls
 * or dies.
 */
@Tag("slow")
class RemoteObjectSourceIT {
  @TempDir static Path tmp;
  static Repository repo;
  static Digest image;
  static Digest big;
  static List<Digest> bigChunks;
  static byte[] bigBytes;
  static TransferServer server;
  static URI url;

  @BeforeAll
  static void publish() throws IOException {
    // The JDK server leaves Nagle on by default: each small answer would wait for a delayed ACK.
    // (osfarm serve runs on Jetty, which sets TCP_NODELAY.)
    System.setProperty("sun.net.httpserver.nodelay", "true");
    repo = Repository.init(tmp.resolve("repo"));
    try (TarSource s = TarSource.open(TestImages.bookwormMinbase())) {
      image = repo.publish(s, "images/min", "test", Map.of(), ProgressListener.NONE).snapshot();
    }
    Path dir = Files.createDirectories(tmp.resolve("big"));
    bigBytes = new byte[24 << 20];
    new Random(7).nextBytes(bigBytes);
    Files.write(dir.resolve("random.bin"), bigBytes);
    big =
        repo.publish(
                new DirectorySource(dir, ProgressListener.NONE),
                "images/big",
                "test",
                Map.of(),
                ProgressListener.NONE)
            .snapshot();
    Entry e = repo.lookupFile(big, "random.bin".getBytes());
    assertThat(e.chunked()).isTrue();
    try (ObjectStore.Reader r = repo.store().newReader()) {
      bigChunks = new ArrayList<>();
      for (ObjectCodec.Chunk c :
          ObjectCodec.decodeChunkList(e.content(), r.read(e.content(), ObjectType.CHUNKLIST))
              .chunks()) {
        bigChunks.add(c.id());
      }
    }
    server = start(new ObjectProtocol(repo, false));
    url = uri(server);
  }

  @AfterAll
  static void stop() {
    server.close();
    repo.close();
  }

  static TransferServer start(ProtocolHandler h) throws IOException {
    return new TransferServer(new InetSocketAddress("127.0.0.1", 0), h, null);
  }

  static URI uri(TransferServer s) {
    return URI.create("http://127.0.0.1:" + s.address().getPort());
  }

  static RemoteObjectSource.Options fast() {
    return RemoteObjectSource.Options.fromEnvironment()
        .withToken(null)
        .withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(5), 2);
  }

  static byte[] local(Digest id) {
    ObjectInfo i = repo.store().info(id).orElseThrow();
    try (ObjectStore.Reader r = repo.store().newReader()) {
      return r.read(id, i.type());
    }
  }

  /** Every object of the image (trees, blobs, chunk lists, chunks) in walk order. */
  static List<Digest> imageObjects() {
    List<Digest> ids = new ArrayList<>();
    ids.add(image);
    ids.add(repo.readSnapshot(image).tree());
    repo.walk(
        image,
        (p, e) -> {
          if (e.content() != null) {
            ids.add(e.content());
            if (e.chunked()) {
              ids.addAll(
                  ObjectCodec.decodeChunkList(e.content(), local(e.content())).chunks().stream()
                      .map(ObjectCodec.Chunk::id)
                      .toList());
            }
          }
        });
    return ids.stream().distinct().toList();
  }

  @Test
  void resolvesRefsAndIdsAndSaysWhatIsMissing() throws IOException {
    try (RemoteObjectSource src = new RemoteObjectSource(url, fast())) {
      assertThat(src.resolve("images/min")).isEqualTo(image);
      assertThat(src.resolve(image.hex())).isEqualTo(image);
      assertThatThrownBy(() -> src.resolve("images/none"))
          .isInstanceOf(NotFoundException.class)
          .hasMessageContaining("images/none");
      Digest tree = repo.readSnapshot(image).tree();
      assertThatThrownBy(() -> src.resolve(tree.hex()))
          .isInstanceOf(NotFoundException.class)
          .hasMessageContaining("not a snapshot");
      assertThatThrownBy(() -> src.read(Digest.of(new byte[] {1, 2, 3})))
          .isInstanceOf(NotFoundException.class);
      assertThat(src.describe()).isEqualTo(url.toString());
    }
  }

  @Test
  void readsEveryObjectOfARealImageExactlyWithGetsAndWithPacks() throws IOException {
    List<Digest> ids = imageObjects();
    assertThat(ids).hasSizeGreaterThan(1000);
    long total = 0;
    for (Digest id : ids) {
      total += local(id).length;
    }
    for (int batch : new int[] {1, 16}) {
      try (RemoteObjectSource src =
          new RemoteObjectSource(url, fast().withBatchSize(batch).withReadAhead(64))) {
        for (int i = 0; i < ids.size(); i++) {
          if (i % 32 == 0) {
            src.prefetch(ids.subList(i, Math.min(ids.size(), i + 64)));
          }
          assertThat(src.read(ids.get(i))).as("object %s", ids.get(i)).isEqualTo(local(ids.get(i)));
        }
        assertThat(src.objectsFetched()).isEqualTo(ids.size());
        if (batch == 1) {
          // GETs of the stored bytes: what the repository compressed stays compressed
          assertThat(src.bytesFetched()).isLessThan(total * 3 / 4);
        } else {
          // zstd packs: binaries and text compress
          assertThat(src.bytesFetched()).isLessThan(total * 3 / 4);
        }
      }
    }
  }

  @Test
  void sequentialReadWithReadAheadFetchesEachChunkOnce() throws IOException {
    try (RemoteObjectSource src = new RemoteObjectSource(url, fast())) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      for (int i = 0; i < bigChunks.size(); i++) {
        src.prefetch(bigChunks.subList(i + 1, Math.min(bigChunks.size(), i + 1 + 64)));
        out.write(src.read(bigChunks.get(i)));
      }
      assertThat(out.toByteArray()).isEqualTo(bigBytes);
      assertThat(src.objectsFetched()).isEqualTo(bigChunks.size());
      // random data: on the wire about once, never twice
      assertThat(src.bytesFetched()).isBetween((long) bigBytes.length, bigBytes.length * 11L / 10);
    }
  }

  @Test
  void hintsBeyondTheReadAheadBudgetAreDroppedAndUnreadHintsDoNotPile() throws IOException {
    try (RemoteObjectSource src = new RemoteObjectSource(url, fast().withReadAhead(8))) {
      src.prefetch(bigChunks);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (src.objectsFetched() < 8 && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
      sleep(300);
      assertThat(src.objectsFetched()).isEqualTo(8); // only the budget's worth was fetched
      // A reader of a hint beyond the budget is served on demand.
      assertThat(src.read(bigChunks.get(20))).isEqualTo(local(bigChunks.get(20)));
    }
  }

  @Test
  void concurrentReadersOfOneObjectShareOneRequest() throws Exception {
    Map<String, AtomicInteger> gets = new ConcurrentHashMap<>();
    ObjectProtocol real = new ObjectProtocol(repo, false);
    ProtocolHandler slow =
        r -> {
          gets.computeIfAbsent(r.method() + " " + r.path(), k -> new AtomicInteger())
              .incrementAndGet();
          sleep(300); // every reader arrives while the first request is in flight
          return real.handle(r);
        };
    try (TransferServer s = start(slow);
        RemoteObjectSource src = new RemoteObjectSource(uri(s), fast());
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      Digest id = bigChunks.get(3);
      List<Future<byte[]>> fs = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        fs.add(pool.submit(() -> src.read(id)));
      }
      for (Future<byte[]> f : fs) {
        assertThat(f.get()).isEqualTo(local(id));
      }
      assertThat(gets.get("GET /objects/" + id.hex()).get()).isEqualTo(1);
      assertThat(gets).hasSize(1);
    }
  }

  /** Answers object {@code victim} with other bytes, in GETs and in packs. */
  static ProtocolHandler lying(ObjectProtocol real, Digest victim) {
    return r -> {
      if (r.method().equals("GET") && r.path().equals("/objects/" + victim.hex())) {
        byte[] b = local(victim).clone();
        b[b.length / 2] ^= 1;
        return new ProtocolResponse(
            200, "application/octet-stream", Map.of(), b.length, o -> o.write(b));
      }
      if (r.method().equals("POST") && r.path().equals("/objects/pack")) {
        byte[] body = r.body().readAllBytes();
        return new ProtocolResponse(
            200,
            "application/x-osfarm-pack",
            Map.of(),
            -1,
            out -> {
              try (ObjectPack.Writer w = new ObjectPack.Writer(new Unclosed(out), 1)) {
                for (int o = 0; o < body.length; o += Digest.LENGTH) {
                  Digest id = Digest.fromBytes(body, o);
                  byte[] b = local(id);
                  if (id.equals(victim)) {
                    b = b.clone();
                    b[0] ^= 1;
                  }
                  w.write(repo.store().info(id).orElseThrow().type(), id, b);
                }
              }
            });
      }
      return real.handle(r);
    };
  }

  @Test
  void aLyingServerIsRejectedAndNothingIsKept() throws IOException {
    Digest victim = bigChunks.get(5);
    try (TransferServer s = start(lying(new ObjectProtocol(repo, false), victim))) {
      for (int batch : new int[] {1, 16}) {
        try (RemoteObjectSource src = new RemoteObjectSource(uri(s), fast().withBatchSize(batch))) {
          src.prefetch(bigChunks.subList(0, 16));
          for (int i = 0; i < 16; i++) {
            Digest id = bigChunks.get(i);
            if (id.equals(victim)) {
              assertThatThrownBy(() -> src.read(id))
                  .isInstanceOf(CorruptObjectException.class)
                  .hasMessageContaining(id.hex())
                  .hasMessageContaining("does not hash");
            } else {
              assertThat(src.read(id)).isEqualTo(local(id));
            }
          }
          // asked again, it is fetched again (nothing was kept) and rejected again
          assertThatThrownBy(() -> src.read(victim)).isInstanceOf(CorruptObjectException.class);
        }
      }
    }
  }

  @Test
  void aServerKilledMidStreamGivesIOExceptionNeverBytes() throws Exception {
    Digest victim = bigChunks.get(9);
    byte[] real = local(victim);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch sentHalf = new CountDownLatch(1);
    ObjectProtocol proto = new ObjectProtocol(repo, false);
    ProtocolHandler dying =
        r -> {
          if (r.path().equals("/objects/" + victim.hex())) {
            return new ProtocolResponse(
                200,
                "application/octet-stream",
                Map.of(),
                real.length,
                o -> {
                  o.write(real, 0, real.length / 2);
                  o.flush();
                  sentHalf.countDown();
                  try {
                    release.await(20, TimeUnit.SECONDS);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  o.write(real, real.length / 2, real.length - real.length / 2);
                });
          }
          return proto.handle(r);
        };
    TransferServer s = start(dying);
    try (RemoteObjectSource src = new RemoteObjectSource(uri(s), fast());
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      assertThat(src.read(bigChunks.get(0))).isEqualTo(local(bigChunks.get(0)));
      Future<byte[]> reading = pool.submit(() -> src.read(victim));
      assertThat(sentHalf.await(10, TimeUnit.SECONDS)).isTrue();
      Future<?> killing = pool.submit(s::close); // stops listening, drops every connection
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> reading.get(30, TimeUnit.SECONDS))
          .cause()
          .isInstanceOf(IOException.class)
          .hasMessageContaining(victim.hex());
      release.countDown();
      killing.get(30, TimeUnit.SECONDS);
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(20));
      // with the server gone, every further uncached read fails the same way, quickly
      assertThatThrownBy(() -> src.read(bigChunks.get(1)))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("cannot fetch object " + bigChunks.get(1).hex());
      assertThatThrownBy(() -> src.resolve("images/min"))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("osfarm serve");
    } finally {
      release.countDown();
    }
  }

  @Test
  void aPackCutOffMidStreamKeepsTheVerifiedObjectsAndFailsTheRest() throws Exception {
    AtomicLong budget = new AtomicLong(3 * (long) bigBytes.length / bigChunks.size());
    CountDownLatch cut = new CountDownLatch(1);
    ObjectProtocol proto = new ObjectProtocol(repo, false);
    TransferServer[] holder = new TransferServer[1];
    ProtocolHandler cutting =
        r -> {
          ProtocolResponse p = proto.handle(r);
          if (!r.path().equals("/objects/pack")) {
            return p;
          }
          return new ProtocolResponse(
              p.status(),
              p.contentType(),
              p.headers(),
              p.length(),
              out ->
                  p.body()
                      .writeTo(
                          new java.io.FilterOutputStream(out) {
                            @Override
                            public void write(byte[] b, int off, int len) throws IOException {
                              if (budget.addAndGet(-len) < 0) {
                                out.flush();
                                cut.countDown();
                                throw new IOException("killed");
                              }
                              out.write(b, off, len);
                            }
                          }));
        };
    holder[0] = start(cutting);
    try (RemoteObjectSource src =
        new RemoteObjectSource(uri(holder[0]), fast().withBatchSize(16).withConnections(1))) {
      List<Digest> ids = bigChunks.subList(0, 16);
      src.prefetch(ids);
      assertThat(cut.await(10, TimeUnit.SECONDS)).isTrue();
      holder[0].close();
      int ok = 0;
      int failed = 0;
      for (Digest id : ids) {
        try {
          assertThat(src.read(id)).isEqualTo(local(id));
          ok++;
        } catch (IOException e) {
          assertThat(e).isNotInstanceOf(CorruptObjectException.class);
          failed++;
        }
      }
      assertThat(failed).isGreaterThan(0);
      assertThat(ok + failed).isEqualTo(16);
    }
  }

  @Test
  void sendsTheBearerTokenAndExplainsARefusal() throws IOException {
    ObjectProtocol proto = new ObjectProtocol(repo, false);
    HttpServer guarded = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    guarded.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    AtomicInteger refused = new AtomicInteger();
    guarded.createContext(
        "/v1/",
        ex -> {
          try (ex) {
            if (!"Bearer s3cret".equals(ex.getRequestHeaders().getFirst("Authorization"))) {
              refused.incrementAndGet();
              ex.sendResponseHeaders(401, -1);
              return;
            }
            ProtocolResponse p;
            try (InputStream body = ex.getRequestBody()) {
              p =
                  proto.handle(
                      new ProtocolRequest(
                          ex.getRequestMethod(),
                          ex.getRequestURI().getPath().substring(3),
                          new HashMap<>(),
                          body));
            }
            p.headers().forEach((k, v) -> ex.getResponseHeaders().set(k, v));
            ex.sendResponseHeaders(p.status(), p.length() < 0 ? 0 : p.length());
            try (OutputStream o = ex.getResponseBody()) {
              p.body().writeTo(o);
            }
          }
        });
    guarded.start();
    URI u = URI.create("http://127.0.0.1:" + guarded.getAddress().getPort());
    try {
      try (RemoteObjectSource src = new RemoteObjectSource(u, fast())) {
        assertThatThrownBy(() -> src.resolve("images/min"))
            .isInstanceOf(IOException.class)
            .hasMessageContaining("OSFARM_TOKEN");
        assertThatThrownBy(() -> src.read(bigChunks.get(0)))
            .isInstanceOf(IOException.class)
            .hasMessageContaining("OSFARM_TOKEN");
      }
      try (RemoteObjectSource src = new RemoteObjectSource(u, fast().withToken("s3cret"))) {
        assertThat(src.resolve("images/min")).isEqualTo(image);
        src.prefetch(bigChunks.subList(0, 8));
        for (Digest id : bigChunks.subList(0, 8)) {
          assertThat(src.read(id)).isEqualTo(local(id));
        }
      }
      assertThat(refused.get()).isEqualTo(2); // no retries of a refusal
    } finally {
      guarded.stop(0);
    }
  }

  @Test
  void anUnreachableServerIsAClearIOException() throws IOException {
    int port;
    try (java.net.ServerSocket ss = new java.net.ServerSocket(0, 1, null)) {
      port = ss.getLocalPort();
    }
    try (RemoteObjectSource src =
        new RemoteObjectSource(URI.create("http://127.0.0.1:" + port), fast())) {
      assertThatThrownBy(() -> src.resolve("images/min"))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("is 'osfarm serve' running");
      assertThatThrownBy(() -> src.read(bigChunks.get(0)))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("cannot fetch object")
          .hasMessageContaining("2 attempts");
    }
  }

  // ---------------------------------------------------------------- stored packs

  /** Wraps the real protocol, recording the content type of every pack it answers. */
  static ProtocolHandler recording(ProtocolHandler real, List<String> types, boolean oldServer) {
    return r -> {
      ProtocolRequest req = r;
      if (oldServer) {
        // a server from before stored packs: it does not know the parameter
        Map<String, String> q = new HashMap<>(r.query());
        q.remove("stored");
        req = new ProtocolRequest(r.method(), r.path(), q, r.body());
      }
      ProtocolResponse p = real.handle(req);
      if (r.path().equals("/objects/pack")) {
        types.add(p.contentType());
      }
      return p;
    };
  }

  @Test
  void packsComeAsStoredBytesAndAServerWithoutThemStillServes() throws IOException {
    List<Digest> ids = imageObjects();
    for (boolean old : new boolean[] {false, true}) {
      List<String> types = java.util.Collections.synchronizedList(new ArrayList<>());
      try (TransferServer s = start(recording(new ObjectProtocol(repo, false), types, old));
          RemoteObjectSource src =
              new RemoteObjectSource(uri(s), fast().withBatchSize(16).withReadAhead(64))) {
        for (int i = 0; i < ids.size(); i++) {
          if (i % 32 == 0) {
            src.prefetch(ids.subList(i, Math.min(ids.size(), i + 64)));
          }
          assertThat(src.read(ids.get(i))).as("object %s", ids.get(i)).isEqualTo(local(ids.get(i)));
        }
        assertThat(types).isNotEmpty();
        assertThat(types)
            .allMatch(
                t -> t.equals(old ? "application/x-osfarm-pack" : ObjectPack.STORED_TYPE), "type");
      }
    }
  }

  /** A repository of its own (it gets damaged): a random file (raw chunks), a text (zstd ones). */
  static Repository damageable(Path dir, Map<String, List<Digest>> chunks) throws IOException {
    Repository r = Repository.init(dir.resolve("repo"));
    Path files = Files.createDirectories(dir.resolve("files"));
    byte[] random = new byte[4 << 20];
    new Random(11).nextBytes(random);
    Files.write(files.resolve("random.bin"), random);
    StringBuilder text = new StringBuilder();
    for (int i = 0; text.length() < (4 << 20); i++) {
      text.append("line ").append(i).append(" of a text that compresses well\n");
    }
    Files.writeString(files.resolve("text.txt"), text);
    Digest snap =
        r.publish(
                new DirectorySource(files, ProgressListener.NONE),
                "images/d",
                "test",
                Map.of(),
                ProgressListener.NONE)
            .snapshot();
    for (String name : List.of("random.bin", "text.txt")) {
      Entry e = r.lookupFile(snap, name.getBytes());
      try (ObjectStore.Reader rd = r.store().newReader()) {
        chunks.put(
            name,
            ObjectCodec.decodeChunkList(e.content(), rd.read(e.content(), ObjectType.CHUNKLIST))
                .chunks()
                .stream()
                .map(ObjectCodec.Chunk::id)
                .toList());
      }
    }
    return r;
  }

  /** The pack file holding {@code id}, and the offset of its record. */
  static Map.Entry<Path, Long> record(Path repoDir, Digest id) throws IOException {
    byte[] want = id.toBytes();
    try (var files = Files.walk(repoDir)) {
      for (Path p : files.filter(f -> f.toString().endsWith(".pack")).toList()) {
        byte[] b = Files.readAllBytes(p);
        outer:
        for (int i = 0; i + want.length <= b.length; i++) {
          for (int j = 0; j < want.length; j++) {
            if (b[i + j] != want[j]) {
              continue outer;
            }
          }
          return Map.entry(p, (long) i);
        }
      }
    }
    throw new AssertionError("no record of " + id);
  }

  /** Flips a byte in the middle of the stored bytes of {@code id}; returns its codec. */
  static int damage(Path repoDir, Digest id) throws IOException {
    Map.Entry<Path, Long> at = record(repoDir, id);
    try (var ch =
        java.nio.channels.FileChannel.open(
            at.getKey(),
            java.nio.file.StandardOpenOption.READ,
            java.nio.file.StandardOpenOption.WRITE)) {
      java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(42);
      ch.read(h, at.getValue());
      int codec = h.get(33);
      int stored = h.getInt(38);
      long pos = at.getValue() + 42 + stored / 2;
      java.nio.ByteBuffer one = java.nio.ByteBuffer.allocate(1);
      ch.read(one, pos);
      one.put(0, (byte) (one.get(0) ^ 0x5a)).rewind();
      ch.write(one, pos);
      return codec;
    }
  }

  @Test
  void damagedStoredBytesOnTheServerAreRejectedObjectByObject(@TempDir Path dir)
      throws IOException {
    Map<String, List<Digest>> chunks = new HashMap<>();
    try (Repository r = damageable(dir, chunks)) {
      Map<Digest, byte[]> good = new HashMap<>();
      try (ObjectStore.Reader rd = r.store().newReader()) {
        for (List<Digest> l : chunks.values()) {
          for (Digest id : l) {
            good.put(id, rd.read(id, ObjectType.BLOB));
          }
        }
      }
      Digest rawVictim = chunks.get("random.bin").get(2);
      Digest zstdVictim = chunks.get("text.txt").get(2);
      assertThat(damage(dir.resolve("repo"), rawVictim)).isEqualTo(0);
      assertThat(damage(dir.resolve("repo"), zstdVictim)).isEqualTo(1);
      List<String> types = java.util.Collections.synchronizedList(new ArrayList<>());
      try (TransferServer s = start(recording(new ObjectProtocol(r, false), types, false))) {
        for (String name : List.of("random.bin", "text.txt")) {
          List<Digest> ids = chunks.get(name);
          Digest victim = name.equals("random.bin") ? rawVictim : zstdVictim;
          try (RemoteObjectSource src =
              new RemoteObjectSource(uri(s), fast().withBatchSize(16).withConnections(1))) {
            src.prefetch(ids);
            for (Digest id : ids) {
              if (id.equals(victim)) {
                assertThatThrownBy(() -> src.read(id))
                    .as("%s chunk", name)
                    .isInstanceOf(CorruptObjectException.class)
                    .hasMessageContaining(id.hex())
                    .hasMessageContaining("nothing was kept");
              } else {
                // the rest of the same packs is intact and read
                assertThat(src.read(id)).isEqualTo(good.get(id));
              }
            }
            assertThatThrownBy(() -> src.read(victim)).isInstanceOf(CorruptObjectException.class);
          }
        }
      }
      assertThat(types).isNotEmpty().allMatch(ObjectPack.STORED_TYPE::equals);
    }
  }

  @Test
  void aTruncatedPackFileOnTheServerIsAnIOExceptionNeverBytes(@TempDir Path dir)
      throws IOException {
    Map<String, List<Digest>> chunks = new HashMap<>();
    try (Repository r = damageable(dir, chunks)) {
      List<Digest> ids = chunks.get("random.bin");
      Digest last = ids.getLast();
      Map.Entry<Path, Long> at = record(dir.resolve("repo"), last);
      byte[] firstBytes;
      try (ObjectStore.Reader rd = r.store().newReader()) {
        firstBytes = rd.read(ids.getFirst(), ObjectType.BLOB);
      }
      // cut the pack file in the middle of the last chunk's record (its index still lists it)
      try (var ch =
          java.nio.channels.FileChannel.open(at.getKey(), java.nio.file.StandardOpenOption.WRITE)) {
        ch.truncate(at.getValue() + 42 + 1000);
      }
      try (TransferServer s = start(new ObjectProtocol(r, false));
          RemoteObjectSource src =
              new RemoteObjectSource(uri(s), fast().withBatchSize(16).withConnections(1))) {
        src.prefetch(ids);
        assertThat(src.read(ids.getFirst())).isEqualTo(firstBytes);
        assertThatThrownBy(() -> src.read(last))
            .isInstanceOf(IOException.class)
            .hasMessageContaining(last.hex());
      }
    }
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Lets a pack writer finish its stream without closing the response. */
  static final class Unclosed extends java.io.FilterOutputStream {
    Unclosed(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
    }

    @Override
    public void close() throws IOException {
      out.flush();
    }
  }
}
