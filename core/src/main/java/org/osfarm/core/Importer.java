package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.osfarm.core.chunk.FastCdc;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.tar.TarHeader;

/**
 * Turns an {@link EntrySource} into trees in the store.
 *
 * <p>Design: one thread (the caller) reads the source in order and builds an in-memory directory
 * tree of {@link Node}s, validating names as it goes. File content goes to a bounded pool of
 * workers that hash, look up and (only if new) compress and store it; at most {@link #IN_FLIGHT}
 * bytes are buffered, so memory stays flat however large the image. Files of at least {@link
 * FastCdc#MIN_CHUNKED_FILE} bytes are cut into content-defined chunks; their whole-content SHA-256
 * is computed on the reading thread. When the source ends, hard links are resolved (each group's
 * first name in tree order holds the content), trees are written bottom-up and the root returned.
 * Nothing is visible until the caller flushes the inserter; any error leaves the store as it was.
 */
final class Importer {
  private static final long IN_FLIGHT = 64L << 20;

  private final ObjectStore.Inserter inserter;
  private final ProgressListener listener;
  private final ExecutorService pool;
  private final Semaphore budget = new Semaphore((int) (IN_FLIGHT >> 10));
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final AtomicLong pending = new AtomicLong();
  private final FastCdc cdc = new FastCdc();
  private final List<Node> chunkedFiles = new ArrayList<>();
  private final List<Node> hardlinks = new ArrayList<>();
  private final Node root = Node.dir(new byte[0]);
  private boolean rootSeen;
  private boolean dotPrefix;
  private long entries;
  private long logicalBytes;
  private long lastReport;

  /** Mutable entry while the tree is being assembled. */
  static final class Node {
    byte[] name;
    TarHeader header; // null for an implicit directory
    EntryType type;
    TreeMap<byte[], Node> children; // directories only
    Node parent;
    volatile Digest content;
    volatile Digest fileDigest;
    Digest[] chunkIds;
    int[] chunkLens;
    List<Node> chunkSlots;
    long size;
    byte[] link; // symlink target; hard link target path (normalized)
    Node linkTarget;
    long order; // position in tree order, for hard-link primaries

    static Node dir(byte[] name) {
      Node n = new Node();
      n.name = name;
      n.type = EntryType.DIR;
      n.children = new TreeMap<>(Arrays::compareUnsigned);
      return n;
    }

    byte[] path() {
      List<byte[]> parts = new ArrayList<>();
      for (Node n = this; n.parent != null; n = n.parent) {
        parts.add(0, n.name);
      }
      return Bytes.join(parts);
    }
  }

  /** The result: the root entry and facts about the import. */
  record Result(
      Entry root, long entries, long logicalBytes, boolean dotPrefix, boolean rootImplicit) {}

  Importer(ObjectStore.Inserter inserter, int threads, ProgressListener listener) {
    this.inserter = inserter;
    this.listener = listener;
    this.pool =
        Executors.newFixedThreadPool(
            Math.max(1, threads),
            r -> {
              Thread t = new Thread(r, "osfarm-import");
              t.setDaemon(true);
              return t;
            });
  }

  Result run(EntrySource source) throws IOException {
    try {
      TarHeader h;
      while ((h = source.next()) != null) {
        checkFailure();
        add(h, source);
        entries++;
        long now = System.nanoTime();
        if (now - lastReport > 200_000_000L) {
          lastReport = now;
          listener.progress(
              new Progress("reading", entries, source.position(), -1, inserter.writtenBytes()));
        }
      }
      awaitWorkers();
      listener.progress(
          new Progress("writing trees", entries, source.position(), -1, inserter.writtenBytes()));
      resolveHardLinks();
      for (Node n : chunkedFiles) {
        byte[] list = ObjectCodec.encodeChunkList(chunkList(n));
        n.content = inserter.insert(ObjectType.CHUNKLIST, list, 0, list.length);
      }
      Digest tree = writeTree(root);
      Entry rootEntry = toEntry(root, tree, new byte[0]);
      return new Result(rootEntry, entries, logicalBytes, dotPrefix, !rootSeen);
    } finally {
      pool.shutdownNow();
      awaitPool();
    }
  }

  /**
   * Waits until no worker runs. After a failure a worker may still be storing content; the caller
   * aborts the inserter next, and a worker inserting after that would start a temporary pack that
   * nothing removes (until gc).
   */
  private void awaitPool() {
    boolean interrupted = false;
    while (true) {
      try {
        if (pool.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES)) {
          break;
        }
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  private static ObjectCodec.ChunkList chunkList(Node n) {
    List<ObjectCodec.Chunk> chunks = new ArrayList<>(n.chunkIds.length);
    for (int i = 0; i < n.chunkIds.length; i++) {
      chunks.add(new ObjectCodec.Chunk(n.chunkIds[i], n.chunkLens[i]));
    }
    return new ObjectCodec.ChunkList(n.fileDigest, n.size, chunks);
  }

  private void add(TarHeader h, EntrySource source) throws IOException {
    byte[] raw = h.name();
    if (raw.length > 0 && raw[0] == '/') {
      throw new InvalidInputException("absolute name in archive: '" + Bytes.escape(raw) + "'");
    }
    if (raw.length >= 2 && raw[0] == '.' && raw[1] == '/') {
      dotPrefix = true;
    }
    List<byte[]> parts = components(raw, "name");
    EntryType type = typeOf(h);
    if (parts.isEmpty()) {
      if (type != EntryType.DIR) {
        throw new InvalidInputException("the archive's root entry is not a directory");
      }
      if (rootSeen) {
        throw new InvalidInputException("duplicate entry for the root directory");
      }
      rootSeen = true;
      root.header = h;
      return;
    }
    Node dir = root;
    for (int i = 0; i < parts.size() - 1; i++) {
      Node next = dir.children.get(parts.get(i));
      if (next == null) {
        next = Node.dir(parts.get(i));
        next.parent = dir;
        dir.children.put(next.name, next);
      } else if (next.type != EntryType.DIR) {
        throw new InvalidInputException(
            "'"
                + Bytes.escape(raw)
                + "' is inside '"
                + Bytes.escape(next.path())
                + "', which is not a directory");
      }
      dir = next;
    }
    byte[] leaf = parts.get(parts.size() - 1);
    Node existing = dir.children.get(leaf);
    Node n;
    if (existing != null) {
      if (existing.type == EntryType.DIR && existing.header == null && type == EntryType.DIR) {
        n = existing; // an implicit directory gets its own entry after all
      } else {
        throw new InvalidInputException("duplicate entry in archive: '" + Bytes.escape(raw) + "'");
      }
    } else {
      n = type == EntryType.DIR ? Node.dir(leaf) : new Node();
      n.name = leaf;
      n.type = type;
      n.parent = dir;
      dir.children.put(leaf, n);
    }
    n.header = h;
    switch (type) {
      case FILE -> readContent(n, h.size(), source.content());
      case SYMLINK -> n.link = h.linkName();
      case HARDLINK -> {
        List<byte[]> target = components(h.linkName(), "hard link target");
        if (target.isEmpty() || h.linkName()[0] == '/') {
          throw new InvalidInputException(
              "hard link '"
                  + Bytes.escape(raw)
                  + "' points outside the image: '"
                  + Bytes.escape(h.linkName())
                  + "'");
        }
        n.link = Bytes.join(target);
        hardlinks.add(n);
      }
      default -> {}
    }
  }

  private static List<byte[]> components(byte[] raw, String what) {
    List<byte[]> parts = Bytes.split(raw);
    for (byte[] p : parts) {
      if (p.length == 2 && p[0] == '.' && p[1] == '.') {
        throw new InvalidInputException(
            "'..' in "
                + what
                + " '"
                + Bytes.escape(raw)
                + "': refusing an entry that could escape the image");
      }
      for (byte c : p) {
        if (c == 0) {
          throw new InvalidInputException("NUL byte in " + what);
        }
      }
    }
    return parts;
  }

  private static EntryType typeOf(TarHeader h) {
    return switch (h.typeflag()) {
      case '0' -> EntryType.FILE;
      case '1' -> EntryType.HARDLINK;
      case '2' -> EntryType.SYMLINK;
      case '3' -> EntryType.CHAR;
      case '4' -> EntryType.BLOCK;
      case '5' -> EntryType.DIR;
      case '6' -> EntryType.FIFO;
      default -> throw new InvalidInputException("unsupported entry type " + (char) h.typeflag());
    };
  }

  private void readContent(Node n, long size, InputStream in) throws IOException {
    n.size = size;
    logicalBytes += size;
    if (size < FastCdc.MIN_CHUNKED_FILE) {
      byte[] data = in.readNBytes((int) size);
      if (data.length != size) {
        throw new InvalidInputException(
            "the archive is truncated inside '" + Bytes.escape(n.path()) + "'");
      }
      // Hashing happens in the pool too: the reading thread only parses and copies.
      submit(new Piece(data, 1), n, null);
      return;
    }
    // Large file: cut into chunks while streaming. Each chunk is stored by a worker; the
    // whole-file digest is computed by a FileHasher that takes the chunks in order in the pool.
    FileHasher hasher = new FileHasher(n);
    List<Integer> lens = new ArrayList<>();
    int max = cdc.maxSize();
    byte[] buf = new byte[max * 2];
    int have = 0;
    long left = size;
    List<Node> slots = new ArrayList<>();
    while (left > 0 || have > 0) {
      while (have < buf.length && left > 0) {
        int r = in.read(buf, have, (int) Math.min(buf.length - have, left));
        if (r < 0) {
          throw new InvalidInputException(
              "the archive is truncated inside '" + Bytes.escape(n.path()) + "'");
        }
        have += r;
        left -= r;
      }
      int off = 0;
      while (have - off >= max || (left == 0 && have - off > 0)) {
        int len = cdc.cut(buf, off, have - off);
        Piece piece = new Piece(Arrays.copyOfRange(buf, off, off + len), 2);
        Node slot = new Node();
        slots.add(slot);
        lens.add(len);
        submit(piece, slot, hasher);
        off += len;
      }
      System.arraycopy(buf, off, buf, 0, have - off);
      have -= off;
    }
    hasher.finish();
    n.chunkLens = lens.stream().mapToInt(Integer::intValue).toArray();
    n.chunkIds = new Digest[slots.size()];
    n.chunkSlots = slots;
    chunkedFiles.add(n);
  }

  /** Bytes in flight, counted against the budget until every task using them is done. */
  private final class Piece {
    final byte[] data;
    final java.util.concurrent.atomic.AtomicInteger users;

    Piece(byte[] data, int users) {
      this.data = data;
      this.users = new java.util.concurrent.atomic.AtomicInteger(users);
      budget.acquireUninterruptibly(kb());
    }

    int kb() {
      return (int) Math.max(1, data.length >> 10);
    }

    void release() {
      if (users.decrementAndGet() == 0) {
        budget.release(kb());
      }
    }
  }

  /**
   * Feeds a large file's chunks, in order, to one SHA-256 on pool threads (at most one task at a
   * time per file), so the reading thread never hashes.
   */
  private final class FileHasher {
    private final Node file;
    private final MessageDigest md = Digest.newMessageDigest();
    private final java.util.concurrent.ConcurrentLinkedQueue<Piece> queue =
        new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final java.util.concurrent.atomic.AtomicBoolean running =
        new java.util.concurrent.atomic.AtomicBoolean();
    private volatile Piece end;

    FileHasher(Node file) {
      this.file = file;
    }

    void add(Piece p) {
      taskStarted();
      queue.add(p);
      schedule();
    }

    void finish() {
      taskStarted();
      end = new Piece(new byte[0], 1);
      queue.add(end);
      schedule();
    }

    private void schedule() {
      if (running.compareAndSet(false, true)) {
        pool.execute(this::drain);
      }
    }

    private void drain() {
      while (true) {
        Piece p;
        while ((p = queue.poll()) != null) {
          try {
            if (p == end) {
              file.fileDigest = Digest.of(md);
            } else {
              md.update(p.data);
            }
          } catch (Throwable t) {
            failure.compareAndSet(null, t);
          } finally {
            p.release();
            taskDone();
          }
        }
        running.set(false);
        if (queue.isEmpty() || !running.compareAndSet(false, true)) {
          return;
        }
      }
    }
  }

  private void taskStarted() {
    pending.incrementAndGet();
  }

  private void taskDone() {
    if (pending.decrementAndGet() == 0) {
      synchronized (pending) {
        pending.notifyAll();
      }
    }
  }

  /** Stores a piece as a blob (in the pool); its id goes to {@code slot.content}. */
  private void submit(Piece piece, Node slot, FileHasher hasher) {
    if (hasher != null) {
      hasher.add(piece);
    }
    taskStarted();
    pool.execute(
        () -> {
          try {
            if (failure.get() == null) {
              byte[] data = piece.data;
              Digest id = Digest.of(data);
              inserter.insert(ObjectType.BLOB, id, data, 0, data.length);
              slot.content = id;
              if (hasher == null) {
                slot.fileDigest = id;
              }
            }
          } catch (Throwable t) {
            failure.compareAndSet(null, t);
          } finally {
            piece.release();
            taskDone();
          }
        });
  }

  private void awaitWorkers() throws IOException {
    synchronized (pending) {
      while (pending.get() > 0) {
        try {
          pending.wait(50);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("publish interrupted");
        }
      }
    }
    checkFailure();
    for (Node n : chunkedFiles) {
      for (int i = 0; i < n.chunkIds.length; i++) {
        n.chunkIds[i] = n.chunkSlots.get(i).content;
      }
      n.chunkSlots = null;
    }
  }

  private void checkFailure() throws IOException {
    Throwable t = failure.get();
    if (t instanceof IOException e) {
      throw e;
    }
    if (t instanceof RuntimeException e) {
      throw e;
    }
    if (t instanceof Error e) {
      throw e;
    }
  }

  private void resolveHardLinks() {
    if (hardlinks.isEmpty()) {
      return;
    }
    long[] counter = {0};
    number(root, counter);
    // Group every hard link with the file it names (following chains of links).
    Map<Node, List<Node>> groups = new java.util.IdentityHashMap<>();
    for (Node link : hardlinks) {
      Node t = lookup(link.link, link);
      int guard = 0;
      while (t.type == EntryType.HARDLINK) {
        if (t.linkTarget == null) {
          t.linkTarget = lookup(t.link, t);
        }
        t = t.linkTarget;
        if (++guard > hardlinks.size()) {
          throw new InvalidInputException(
              "hard links form a cycle at '" + Bytes.escape(link.path()) + "'");
        }
      }
      if (t.type != EntryType.FILE) {
        throw new InvalidInputException(
            "hard link '"
                + Bytes.escape(link.path())
                + "' names '"
                + Bytes.escape(link.link)
                + "', which is a "
                + t.type.label()
                + "; only regular files can be hard-linked here");
      }
      link.linkTarget = t;
      groups.computeIfAbsent(t, k -> new ArrayList<>()).add(link);
    }
    for (Map.Entry<Node, List<Node>> g : groups.entrySet()) {
      Node file = g.getKey();
      Node primary = file;
      for (Node l : g.getValue()) {
        if (l.order < primary.order) {
          primary = l;
        }
      }
      if (primary != file) {
        // The first name in tree order holds the content, so exports can write it first.
        primary.type = EntryType.FILE;
        primary.content = file.content;
        primary.fileDigest = file.fileDigest;
        primary.chunkIds = file.chunkIds;
        primary.chunkLens = file.chunkLens;
        primary.size = file.size;
        if (chunkedFiles.remove(file)) {
          chunkedFiles.add(primary);
        }
        file.type = EntryType.HARDLINK;
        file.content = null;
        file.size = 0;
      }
      byte[] path = primary.path();
      for (Node l : g.getValue()) {
        if (l != primary) {
          l.link = path;
          l.type = EntryType.HARDLINK;
        }
      }
      if (primary != file) {
        file.link = path;
      }
    }
  }

  private static void number(Node n, long[] counter) {
    n.order = counter[0]++;
    if (n.children != null) {
      for (Node c : n.children.values()) {
        number(c, counter);
      }
    }
  }

  private Node lookup(byte[] path, Node from) {
    Node n = root;
    for (byte[] part : Bytes.split(path)) {
      Node next = n.children == null ? null : n.children.get(part);
      if (next == null || (n != root && n.type != EntryType.DIR)) {
        throw new InvalidInputException(
            "hard link '"
                + Bytes.escape(from.path())
                + "' names '"
                + Bytes.escape(path)
                + "', which is not in the archive");
      }
      n = next;
    }
    if (n == root) {
      throw new InvalidInputException(
          "hard link '" + Bytes.escape(from.path()) + "' names the root directory");
    }
    return n;
  }

  private Digest writeTree(Node dir) {
    List<Entry> entries = new ArrayList<>(dir.children.size());
    for (Node c : dir.children.values()) {
      Digest content = c.type == EntryType.DIR ? writeTree(c) : c.content;
      entries.add(toEntry(c, content, c.name));
    }
    byte[] enc = ObjectCodec.encodeTree(entries);
    return inserter.insert(ObjectType.TREE, enc, 0, enc.length);
  }

  private static Entry toEntry(Node n, Digest content, byte[] name) {
    TarHeader h = n.header;
    int flags = 0;
    if (h == null) {
      flags |= Entry.IMPLICIT;
    }
    boolean file = n.type == EntryType.FILE;
    if (file && n.chunkIds != null) {
      flags |= Entry.CHUNKED;
    }
    byte[] link = (n.type == EntryType.SYMLINK || n.type == EntryType.HARDLINK) ? n.link : null;
    if (h == null) {
      return new Entry(
          name,
          EntryType.DIR,
          0755,
          0,
          0,
          null,
          null,
          0,
          0,
          0,
          content,
          null,
          null,
          0,
          0,
          List.of(),
          List.of(),
          flags);
    }
    boolean dev = n.type == EntryType.CHAR || n.type == EntryType.BLOCK;
    return new Entry(
        name,
        n.type,
        h.mode(),
        h.uid(),
        h.gid(),
        h.uname(),
        h.gname(),
        h.mtimeSeconds(),
        h.mtimeNanos(),
        file ? n.size : 0,
        (file || n.type == EntryType.DIR) ? content : null,
        file ? n.fileDigest : null,
        link,
        dev ? h.devMajor() : 0,
        dev ? h.devMinor() : 0,
        h.xattrs(),
        h.extras(),
        flags);
  }
}
