package org.osfarm.transfer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.store.ObjectInfo;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.StoredObject;

/**
 * The server side of the object protocol: serves a repository to other osfarm hosts.
 *
 * <p>Routes (below the mount point, usually {@code /v1}):
 *
 * <ul>
 *   <li>{@code GET /refs} — {@code hex name} lines; {@code GET /refs/NAME} — the id.
 *   <li>{@code GET /objects/HEX} — one object's uncompressed bytes; immutable and cacheable, type
 *       in {@code X-Osfarm-Object-Type}. With {@code ?stored=1}: the bytes as stored, content type
 *       {@link #STORED_OBJECT_TYPE}, codec in {@code X-Osfarm-Codec}, size in {@code X-Osfarm-Size}
 *       (an older server ignores the parameter and answers the plain bytes).
 *   <li>{@code POST /objects/missing} — body: 32-byte ids; answer: those this repository lacks.
 *   <li>{@code POST /objects/pack} — body: 32-byte ids; answer: an {@link ObjectPack} streaming
 *       them. With {@code ?stored=1} (servers since the stored pack; older ones ignore it and send
 *       a plain pack, so a client tells them apart by the content type {@link
 *       ObjectPack#STORED_TYPE}): a stored pack, each object as the repository keeps it (raw or
 *       zstd) with its codec, neither decompressed, hashed nor recompressed here.
 *   <li>{@code POST /objects} — body: a pack to store (push; only with push allowed). Every object
 *       is verified, and an object that refers to others is accepted only when they are present.
 *   <li>{@code POST /refs/NAME} — body {@code old new} (hex, {@code -} for none): compare-and-swap,
 *       only to a snapshot that is present with everything it reaches (push only).
 * </ul>
 *
 * <p>Thread-safe; every request is independent.
 */
public final class ObjectProtocol implements ProtocolHandler {
  /** The most ids one batched request may carry. */
  static final int MAX_BATCH = 1 << 16;

  private final Repository repo;
  private final boolean allowPush;

  /**
   * @param repo the repository to serve (stays owned by the caller)
   * @param allowPush whether peers may store objects and move refs
   */
  public ObjectProtocol(Repository repo, boolean allowPush) {
    this.repo = repo;
    this.allowPush = allowPush;
  }

  @Override
  public ProtocolResponse handle(ProtocolRequest r) throws IOException {
    String p = r.path();
    boolean get = r.method().equals("GET") || r.method().equals("HEAD");
    boolean post = r.method().equals("POST");
    if (get && p.equals("/refs")) {
      return refs();
    }
    if (p.startsWith("/refs/")) {
      String name = p.substring("/refs/".length());
      if (get) {
        Digest id =
            repo.refs().get(name).orElseThrow(() -> new NotFoundException("no ref '" + name + "'"));
        return ProtocolResponse.text(200, id.hex() + "\n");
      }
      if (post) {
        return updateRef(name, r.body());
      }
    }
    if (post && p.equals("/objects/missing")) {
      return missing(r.body());
    }
    if (post && p.equals("/objects/pack")) {
      if ("1".equals(r.query().get("stored"))) {
        return storedPack(r.body());
      }
      return pack(r.body(), level(r.query()));
    }
    if (post && p.equals("/objects")) {
      return receive(r.body());
    }
    if (get && p.startsWith("/objects/")) {
      if ("1".equals(r.query().get("stored"))) {
        return storedObject(p.substring("/objects/".length()));
      }
      return object(p.substring("/objects/".length()));
    }
    return ProtocolResponse.text(404, "no such route: " + r.method() + " " + p + "\n");
  }

  private static int level(Map<String, String> q) {
    String l = q.get("zstd");
    if (l == null) {
      return 1;
    }
    int v = Integer.parseInt(l);
    if (v < -7 || v > 19) {
      throw new IllegalArgumentException("zstd level must be -7..19");
    }
    return v;
  }

  private ProtocolResponse refs() {
    StringBuilder sb = new StringBuilder();
    repo.refs().list().forEach((n, id) -> sb.append(id.hex()).append(' ').append(n).append('\n'));
    return ProtocolResponse.text(200, sb.toString());
  }

  private ProtocolResponse object(String hex) {
    if (!Digest.isHex(hex)) {
      throw new IllegalArgumentException("not an object id: " + hex);
    }
    Digest id = Digest.fromHex(hex);
    Optional<ObjectInfo> info = info(id);
    if (info.isEmpty()) {
      throw new NotFoundException("no object " + hex);
    }
    byte[] b;
    try (ObjectStore.Reader rd = repo.store().newReader()) {
      b = rd.read(id, info.get().type());
    }
    Map<String, String> h = new HashMap<>(ProtocolResponse.IMMUTABLE);
    h.put("X-Osfarm-Object-Type", info.get().type().name().toLowerCase(java.util.Locale.ROOT));
    h.put("ETag", "\"" + hex + "\"");
    return ProtocolResponse.bytes(200, "application/octet-stream", h, b);
  }

  /** Content type of one object as stored ({@code GET /objects/HEX?stored=1}). */
  public static final String STORED_OBJECT_TYPE = ObjectPack.STORED_OBJECT_TYPE;

  /**
   * One object as the repository keeps it: body = the stored bytes, {@code X-Osfarm-Codec} (0 raw,
   * 1 zstd) and {@code X-Osfarm-Size} (uncompressed size) say how to decode it. Not verified here.
   */
  private ProtocolResponse storedObject(String hex) {
    if (!Digest.isHex(hex)) {
      throw new IllegalArgumentException("not an object id: " + hex);
    }
    Digest id = Digest.fromHex(hex);
    ObjectInfo info = info(id).orElseThrow(() -> new NotFoundException("no object " + hex));
    StoredObject o;
    try (ObjectStore.Reader rd = repo.store().newReader()) {
      o = rd.readStored(id, info.type());
    }
    Map<String, String> h = new HashMap<>(ProtocolResponse.IMMUTABLE);
    h.put("X-Osfarm-Object-Type", info.type().name().toLowerCase(java.util.Locale.ROOT));
    h.put("X-Osfarm-Codec", Integer.toString(o.codec()));
    h.put("X-Osfarm-Size", Integer.toString(o.size()));
    h.put("ETag", "\"" + hex + "-stored\"");
    return ProtocolResponse.bytes(200, STORED_OBJECT_TYPE, h, o.bytes());
  }

  private Optional<ObjectInfo> info(Digest id) {
    Optional<ObjectInfo> i = repo.store().info(id);
    if (i.isEmpty()) {
      repo.store().refresh();
      i = repo.store().info(id);
    }
    return i;
  }

  static List<Digest> readIds(InputStream in) throws IOException {
    List<Digest> ids = new ArrayList<>();
    byte[] b = new byte[Digest.LENGTH];
    while (true) {
      int n = in.readNBytes(b, 0, b.length);
      if (n == 0) {
        return ids;
      }
      if (n != b.length) {
        throw new IllegalArgumentException("id list is not a multiple of 32 bytes");
      }
      if (ids.size() >= MAX_BATCH) {
        throw new IllegalArgumentException("more than " + MAX_BATCH + " ids in one request");
      }
      ids.add(Digest.fromBytes(b, 0));
    }
  }

  private ProtocolResponse missing(InputStream body) throws IOException {
    List<Digest> ids = readIds(body);
    repo.store().refresh();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Digest d : ids) {
      if (!repo.store().contains(d)) {
        out.write(d.toBytes());
      }
    }
    return ProtocolResponse.bytes(200, "application/octet-stream", Map.of(), out.toByteArray());
  }

  private ProtocolResponse pack(InputStream body, int level) throws IOException {
    List<ObjectInfo> infos = infos(readIds(body));
    return ProtocolResponse.stream(
        "application/x-osfarm-pack",
        out -> {
          try (ObjectStore.Reader rd = repo.store().newReader();
              ObjectPack.Writer w = new ObjectPack.Writer(new NonClosing(out), level)) {
            for (ObjectInfo i : infos) {
              w.write(i.type(), i.id(), rd.read(i.id(), i.type()));
            }
          }
        });
  }

  /**
   * A stored pack: each object's bytes as the repository keeps them, with their codec. The server
   * neither decompresses, nor hashes, nor compresses; the peer verifies every object (a damaged
   * pack file here therefore fails there, as a corrupt object, never as wrong data).
   */
  private ProtocolResponse storedPack(InputStream body) throws IOException {
    List<ObjectInfo> infos = infos(readIds(body));
    return ProtocolResponse.stream(
        ObjectPack.STORED_TYPE,
        out -> {
          try (ObjectStore.Reader rd = repo.store().newReader();
              ObjectPack.StoredWriter w = new ObjectPack.StoredWriter(new NonClosing(out))) {
            for (ObjectInfo i : infos) {
              w.write(i.id(), rd.readStored(i.id(), i.type()));
            }
          }
        });
  }

  /** The ids' infos; the store rescans its packs only when one is not known yet. */
  private List<ObjectInfo> infos(List<Digest> ids) {
    List<ObjectInfo> infos = new ArrayList<>(ids.size());
    for (Digest d : ids) {
      infos.add(info(d).orElseThrow(() -> new NotFoundException("no object " + d.hex())));
    }
    return infos;
  }

  private ProtocolResponse receive(InputStream body) throws IOException {
    if (!allowPush) {
      return ProtocolResponse.text(
          403, "this server does not accept pushes (serve --allow-push)\n");
    }
    PackReceiver.Result res;
    try (Repository.Lease lease = repo.holdSharedLock();
        ObjectStore.Inserter ins = repo.store().newInserter()) {
      PackReceiver rec = new PackReceiver(repo.store(), ins, repo.keys());
      res = rec.receive(body);
      ins.flush();
    }
    return ProtocolResponse.text(200, "objects " + res.objects() + " bytes " + res.bytes() + "\n");
  }

  private ProtocolResponse updateRef(String name, InputStream body) throws IOException {
    if (!allowPush) {
      return ProtocolResponse.text(
          403, "this server does not accept pushes (serve --allow-push)\n");
    }
    RefDatabase.validateName(name);
    String[] parts =
        new String(body.readNBytes(200), StandardCharsets.US_ASCII).trim().split("\\s+");
    if (parts.length != 2) {
      throw new IllegalArgumentException("ref update body must be 'old new'");
    }
    Digest old = parts[0].equals("-") ? null : Digest.fromHex(parts[0]);
    Digest neu = parts[1].equals("-") ? null : Digest.fromHex(parts[1]);
    if (neu != null) {
      Optional<ObjectInfo> i = info(neu);
      if (i.isEmpty() || i.get().type() != org.osfarm.core.store.ObjectType.SNAPSHOT) {
        throw new TransferException(
            "snapshot " + neu.hex() + " is not here; push its objects first");
      }
      if (repo.keys().requiresSignatures()) {
        // A ref may name a snapshot stored before the policy: check it like a pushed one.
        try (ObjectStore.Reader rd = repo.store().newReader()) {
          repo.keys().checkIncoming(rd.read(neu, org.osfarm.core.store.ObjectType.SNAPSHOT));
        } catch (org.osfarm.core.SignatureException e) {
          throw new TransferException(e.getMessage());
        }
      }
    }
    RefUpdate u = repo.refs().compareAndSet(name, old, neu, "push");
    return ProtocolResponse.text(u == RefUpdate.REJECTED_CHANGED ? 409 : 200, u.name() + "\n");
  }

  /** Lets a pack writer close its compressed stream without closing the response. */
  static final class NonClosing extends java.io.FilterOutputStream {
    NonClosing(java.io.OutputStream out) {
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
