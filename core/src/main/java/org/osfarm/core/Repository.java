package org.osfarm.core;

import com.github.luben.zstd.ZstdOutputStream;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.zip.GZIPOutputStream;
import org.osfarm.core.store.InMemoryObjectStore;
import org.osfarm.core.store.ObjectInfo;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.store.PackObjectStore;

/**
 * The osfarm repository: content-addressed objects, snapshots of image trees, refs with reflogs.
 *
 * <p>Layout (owned by this class): {@code osfarm.conf} (format marker), {@code objects/} (the pack
 * store), {@code refs/}, {@code logs/}, {@code lock} (shared by readers and writers, exclusive for
 * gc). Every operation is safe to run concurrently with others, in this or another process.
 *
 * <p>Thread-safe. Close it to release open files.
 */
public final class Repository implements Closeable {
  static final String CONF = "osfarm.conf";
  private static final String FORMAT_LINE = "format 1";
  private static final int DEFAULT_LEVEL = 3;
  private static final List<PublishHook> HOOKS =
      java.util.ServiceLoader.load(PublishHook.class, Repository.class.getClassLoader()).stream()
          .map(java.util.ServiceLoader.Provider::get)
          .toList();

  private final Path dir;
  private final ObjectStore store;
  private final RefDatabase refs;
  private final RepositoryLock lock;
  private final RepositoryKeys keys = new RepositoryKeys(this);
  private int threads = Math.max(1, Runtime.getRuntime().availableProcessors());

  private Repository(Path dir, ObjectStore store) {
    this.dir = dir;
    this.store = store;
    this.refs = new RefDatabase(dir);
    this.lock = RepositoryLock.forFile(dir.resolve("lock"));
  }

  /**
   * A setting from {@code osfarm.conf} ({@code key value} lines after the format line), for this
   * module and the ones above it (e.g. {@code catalog-on-publish yes}).
   */
  public Optional<String> setting(String key) {
    try {
      List<String> lines = Files.readAllLines(dir.resolve(CONF), StandardCharsets.UTF_8);
      for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
        String[] kv = line.trim().split("\\s+", 2);
        if (kv.length == 2 && kv[0].equals(key)) {
          return Optional.of(kv[1]);
        }
      }
      return Optional.empty();
    } catch (java.nio.file.NoSuchFileException e) {
      return Optional.empty(); // an in-memory repository
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Creates a repository in {@code dir} (which may exist and be empty), or opens the one there. */
  public static Repository init(Path dir) {
    try {
      Files.createDirectories(dir);
      Path conf = dir.resolve(CONF);
      if (!Files.exists(conf)) {
        try (var s = Files.list(dir)) {
          if (s.anyMatch(p -> !p.getFileName().toString().startsWith("."))) {
            throw new RepositoryException(
                dir + " is not empty and not an osfarm repository; choose an empty directory");
          }
        }
        Path tmp = dir.resolve(CONF + ".tmp");
        Files.writeString(tmp, FORMAT_LINE + "\n", StandardCharsets.US_ASCII);
        Files.move(tmp, conf, StandardCopyOption.ATOMIC_MOVE);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a repository in " + dir, e);
    }
    return open(dir);
  }

  /** Opens an existing repository. */
  public static Repository open(Path dir) {
    Path conf = dir.resolve(CONF);
    if (!Files.isRegularFile(conf)) {
      throw new NotFoundException(
          "no osfarm repository at " + dir + " (run 'osfarm init' or pass --repo)");
    }
    int level = DEFAULT_LEVEL;
    try {
      List<String> lines = Files.readAllLines(conf, StandardCharsets.US_ASCII);
      String format = lines.isEmpty() ? "" : lines.get(0).trim();
      if (!format.equals(FORMAT_LINE)) {
        throw new RepositoryException(
            "repository at "
                + dir
                + " has format '"
                + format
                + "'; this osfarm reads '"
                + FORMAT_LINE
                + "'");
      }
      for (String line : lines.subList(1, lines.size())) {
        String[] kv = line.trim().split("\\s+", 2);
        if (kv.length == 2 && kv[0].equals("compression-level")) {
          try {
            level = Integer.parseInt(kv[1]);
          } catch (NumberFormatException e) {
            throw new RepositoryException(
                conf + ": compression-level must be a number (0 = none, 1-19 zstd)");
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new Repository(dir, new PackObjectStore(dir.resolve("objects"), level));
  }

  /**
   * A repository whose objects live in memory (refs in {@code metaDir}), for tests and scratch
   * work.
   */
  public static Repository inMemory(Path metaDir) {
    return new Repository(metaDir, new InMemoryObjectStore(DEFAULT_LEVEL));
  }

  public Path directory() {
    return dir;
  }

  public ObjectStore store() {
    return store;
  }

  public RefDatabase refs() {
    return refs;
  }

  /** The repository's signing key, trusted keys and signature policy. */
  public RepositoryKeys keys() {
    return keys;
  }

  /**
   * The encoding of a new snapshot this repository is about to store: signed with its signing key
   * if it has one. Every writer of snapshot objects goes through here (or {@link #publish}).
   *
   * @throws RepositoryException if the signing key is broken, or signatures are required and there
   *     is no key; call before inserting other objects so that nothing is written
   */
  public byte[] encodeSnapshot(Snapshot s) {
    return ObjectCodec.encodeSnapshot(keys.sign(s, keys.keyForWriting()));
  }

  /**
   * Verifies the signature of a stored snapshot against {@code trusted}.
   *
   * @return the trusted key that signed it
   * @throws SignatureException if it is unsigned, signed by no trusted key, or altered after
   *     signing
   * @throws CorruptObjectException if the stored object does not hash to its id
   */
  public SignerKey verifySignature(Digest snapshot, TrustedKeys trusted) {
    byte[] b;
    try (ObjectStore.Reader r = store.newReader()) {
      b = r.read(snapshot, ObjectType.SNAPSHOT);
    }
    return Signatures.verify(b, trusted);
  }

  /**
   * Holds the repository lock shared, as publish does, until the returned handle is closed: objects
   * inserted meanwhile survive a concurrent gc until a ref names them. For writers outside this
   * class (the transfer module's pull and receive-pack).
   */
  public Lease holdSharedLock() {
    RepositoryLock.Held held = lock.shared();
    store.refresh(); // forget objects a gc in another process removed before we held the lock
    return held::close;
  }

  /** A held lock; close to release it. */
  public interface Lease extends AutoCloseable {
    @Override
    void close();
  }

  /** Sets how many worker threads publish uses (default: the number of processors). */
  public void setThreads(int threads) {
    this.threads = Math.max(1, threads);
  }

  @Override
  public void close() {
    try {
      store.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ---------------------------------------------------------------- reading

  /**
   * Resolves a ref name, a full snapshot id, or a unique id prefix of at least 8 hex digits.
   *
   * @throws NotFoundException if nothing matches, or the prefix is ambiguous
   */
  public Digest resolve(String spec) {
    if (spec == null || spec.isEmpty()) {
      throw new NotFoundException("empty ref");
    }
    boolean validName = true;
    try {
      RefDatabase.validateName(spec);
    } catch (IllegalArgumentException e) {
      validName = false;
    }
    if (validName) {
      Optional<Digest> r = refs.get(spec);
      if (r.isPresent()) {
        return r.get();
      }
    }
    String lower = spec.toLowerCase(java.util.Locale.ROOT);
    if (Digest.isHex(lower)) {
      Digest d = Digest.fromHex(lower);
      Optional<ObjectInfo> info = store.info(d);
      if (info.isEmpty()) {
        store.refresh();
        info = store.info(d);
      }
      if (info.isPresent() && info.get().type() == ObjectType.SNAPSHOT) {
        return d;
      }
      throw new NotFoundException("no snapshot " + d);
    }
    if (lower.length() >= 8 && lower.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
      List<Digest> matches = new ArrayList<>();
      store.forEach(
          o -> {
            if (o.type() == ObjectType.SNAPSHOT && o.id().startsWith(lower)) {
              matches.add(o.id());
            }
          });
      if (matches.size() == 1) {
        return matches.get(0);
      }
      if (matches.size() > 1) {
        throw new NotFoundException(
            "snapshot id prefix '"
                + spec
                + "' is ambiguous ("
                + matches.size()
                + " snapshots); give more digits");
      }
    }
    throw new NotFoundException(
        "no ref or snapshot '" + spec + "' (see 'osfarm refs'; ids need at least 8 hex digits)");
  }

  public Snapshot readSnapshot(Digest id) {
    try (ObjectStore.Reader r = store.newReader()) {
      return ObjectCodec.decodeSnapshot(id, r.read(id, ObjectType.SNAPSHOT));
    }
  }

  public List<Entry> readTree(Digest id) {
    try (ObjectStore.Reader r = store.newReader()) {
      return ObjectCodec.decodeTree(id, r.read(id, ObjectType.TREE));
    }
  }

  /** Opens a regular file's content (verified object by object as it is read). */
  public InputStream openContent(Entry file) {
    if (file.type() != EntryType.FILE) {
      throw new IllegalArgumentException(file + " is not a regular file");
    }
    return new ContentStream(store.newReader(), file);
  }

  /**
   * The entry at {@code path} in a snapshot (the root entry for an empty path). Hard links are
   * returned as they are; use {@link #lookupFile} to follow them.
   */
  public Entry lookup(Digest snapshot, byte[] path) {
    return lookup(readSnapshot(snapshot), Bytes.split(path));
  }

  private Entry lookup(Snapshot snapshot, List<byte[]> parts) {
    Entry cur = snapshot.root();
    for (int i = 0; i < parts.size(); i++) {
      if (cur.type() != EntryType.DIR) {
        throw new NotFoundException(
            "'" + Bytes.escape(Bytes.join(parts.subList(0, i))) + "' is not a directory");
      }
      Entry found = find(readTree(cur.content()), parts.get(i));
      if (found == null) {
        throw new NotFoundException(
            "no such path in the snapshot: '" + Bytes.escape(Bytes.join(parts)) + "'");
      }
      cur = found;
    }
    return cur;
  }

  /** Like {@link #lookup}, but a hard link resolves to the file holding its content. */
  public Entry lookupFile(Digest snapshot, byte[] path) {
    Entry e = lookup(snapshot, path);
    if (e.type() == EntryType.HARDLINK) {
      return lookup(snapshot, e.link());
    }
    return e;
  }

  private static Entry find(List<Entry> tree, byte[] name) {
    int lo = 0;
    int hi = tree.size() - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1;
      int c = Arrays.compareUnsigned(tree.get(mid).name(), name);
      if (c == 0) {
        return tree.get(mid);
      }
      if (c < 0) {
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return null;
  }

  /** Visits every entry of a snapshot depth first, children sorted by name, with its path. */
  public void walk(Digest snapshot, java.util.function.BiConsumer<byte[], Entry> visitor) {
    Snapshot s = readSnapshot(snapshot);
    try (ObjectStore.Reader r = store.newReader()) {
      walkTree(r, s.tree(), new byte[0], visitor);
    }
  }

  private void walkTree(
      ObjectStore.Reader r,
      Digest tree,
      byte[] prefix,
      java.util.function.BiConsumer<byte[], Entry> v) {
    for (Entry e : ObjectCodec.decodeTree(tree, r.read(tree, ObjectType.TREE))) {
      byte[] path = child(prefix, e.name());
      v.accept(path, e);
      if (e.type() == EntryType.DIR) {
        walkTree(r, e.content(), path, v);
      }
    }
  }

  static byte[] child(byte[] prefix, byte[] name) {
    if (prefix.length == 0) {
      return name;
    }
    byte[] p = Arrays.copyOf(prefix, prefix.length + 1 + name.length);
    p[prefix.length] = '/';
    System.arraycopy(name, 0, p, prefix.length + 1, name.length);
    return p;
  }

  /** The snapshot history of a ref or id: it, its first parent, and so on. */
  public List<Map.Entry<Digest, Snapshot>> history(Digest start, int max) {
    List<Map.Entry<Digest, Snapshot>> out = new ArrayList<>();
    Digest cur = start;
    Set<Digest> seen = new HashSet<>();
    while (cur != null && out.size() < max && seen.add(cur)) {
      Snapshot s = readSnapshot(cur);
      out.add(Map.entry(cur, s));
      cur = s.parents().isEmpty() ? null : s.parents().get(0);
      if (cur != null && !store.contains(cur)) {
        break; // history beyond a pruned parent
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- publish

  /**
   * Publishes a source as a new snapshot and moves {@code ref} to it (compare-and-swap against the
   * value the ref had when the publish started; the old value becomes the snapshot's parent).
   *
   * @throws InvalidInputException if the source is malformed or hostile; nothing is stored
   * @throws RefConflictException if the ref moved during the publish
   */
  public PublishResult publish(
      EntrySource source,
      String ref,
      String message,
      Map<String, String> metadata,
      ProgressListener listener)
      throws IOException {
    RefDatabase.validateName(ref);
    Optional<SigningKey> signingKey = keys.keyForWriting(); // a broken key fails before any write
    long t0 = System.nanoTime();
    try (RepositoryLock.Held held = lock.shared();
        ObjectStore.Inserter ins = store.newInserter()) {
      // Another process's gc may have removed objects since this store last looked: deduplicating
      // against them would name objects that are gone. Under the lock the view stays exact.
      store.refresh();
      Optional<Digest> old = refs.get(ref);
      Importer.Result r = new Importer(ins, threads, listener).run(source);
      Map<String, String> meta = new TreeMap<>(metadata);
      meta.put("source", source.kind());
      if (r.dotPrefix()) {
        meta.put("tar.prefix", "./");
      }
      if (r.rootImplicit()) {
        meta.put("tar.root", "implicit");
      }
      Snapshot snap =
          new Snapshot(
              r.root(),
              old.map(List::of).orElse(List.of()),
              Instant.now(),
              message == null ? "" : message,
              meta);
      byte[] enc = ObjectCodec.encodeSnapshot(keys.sign(snap, signingKey));
      Digest id = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
      ins.flush(); // objects durable before any ref names them
      RefUpdate u =
          refs.compareAndSet(
              ref, old.orElse(null), id, "publish: " + (message == null ? "" : message));
      if (u == RefUpdate.REJECTED_CHANGED) {
        throw new RefConflictException(
            "ref '"
                + ref
                + "' changed while publishing; snapshot "
                + id
                + " is stored but not named: "
                + "run 'osfarm tag "
                + ref
                + " "
                + id.shortHex(12)
                + "' or publish again");
      }
      for (PublishHook hook : HOOKS) {
        try {
          hook.published(this, ref, id);
        } catch (RuntimeException e) {
          listener.warning("after publishing " + id.shortHex(12) + ": " + e.getMessage());
        }
      }
      return new PublishResult(
          id,
          u,
          r.entries(),
          r.logicalBytes(),
          ins.writtenObjects(),
          ins.writtenBytes(),
          (System.nanoTime() - t0) / 1e9);
    }
  }

  // ---------------------------------------------------------------- export

  /** Exports a snapshot (or only {@code paths} and their subtrees) as a tar stream. */
  public long exportTar(
      Digest snapshot,
      List<byte[]> paths,
      ExportFormat format,
      OutputStream out,
      ProgressListener l)
      throws IOException {
    if (format == ExportFormat.DIR) {
      throw new IllegalArgumentException("use exportDirectory for dir");
    }
    Snapshot s = readSnapshot(snapshot);
    OutputStream os = new BufferedOutputStream(out, 1 << 20);
    if (format == ExportFormat.TAR_GZ) {
      os = new GZIPOutputStream(os, 1 << 16);
    } else if (format == ExportFormat.TAR_ZST) {
      os = new ZstdOutputStream(os, 3);
    }
    boolean dot = "./".equals(s.metadata().get("tar.prefix"));
    try (TarSink sink =
        new TarSink(os, dot, paths.isEmpty(), "dir".equals(s.metadata().get("source")))) {
      long n = export(s, paths, sink, l);
      sink.finish();
      os.flush();
      if (os instanceof GZIPOutputStream g) {
        g.finish();
      } else if (os instanceof ZstdOutputStream z) {
        z.close();
        return n;
      }
      os.flush();
      return n;
    }
  }

  /**
   * Exports to a file atomically: written to a temporary file beside {@code target}, renamed into
   * place only when complete. {@code dir} format writes into {@code target} (new or empty).
   */
  public long export(
      Digest snapshot, List<byte[]> paths, ExportFormat format, Path target, ProgressListener l)
      throws IOException {
    if (format == ExportFormat.DIR) {
      Snapshot s = readSnapshot(snapshot);
      selection(s, paths); // before the target directory is created
      try (DirSink sink = new DirSink(target, l)) {
        long n = export(s, paths, sink, l);
        sink.finish();
        return n;
      }
    }
    Path abs = target.toAbsolutePath();
    Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName(), ".tmp");
    try {
      long n;
      try (OutputStream out = Files.newOutputStream(tmp)) {
        n = exportTar(snapshot, paths, format, new NonClosing(out), l);
      }
      try (var ch =
          java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
        ch.force(true);
      }
      Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      return n;
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static final class NonClosing extends java.io.FilterOutputStream {
    NonClosing(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
    }

    @Override
    public void close() throws IOException {
      flush();
    }
  }

  private long export(Snapshot s, List<byte[]> paths, ExportSink sink, ProgressListener l)
      throws IOException {
    try (RepositoryLock.Held held = lock.shared();
        ObjectStore.Reader reader = store.newReader()) {
      store.refresh();
      Exporter ex = new Exporter(reader, sink, l, s.root());
      List<List<byte[]>> selection = selection(s, paths);
      sink.root(s.root());
      ex.run(s.root().content(), new byte[0], selection, 0);
      return ex.entries;
    }
  }

  /** Parses export paths and checks they exist, so a bad path fails before anything is written. */
  private List<List<byte[]>> selection(Snapshot s, List<byte[]> paths) {
    List<List<byte[]>> selection = new ArrayList<>();
    for (byte[] p : paths) {
      List<byte[]> parts = Bytes.split(p);
      for (byte[] part : parts) {
        if (part.length == 2 && part[0] == '.' && part[1] == '.') {
          throw new NotFoundException("'..' is not allowed in export paths");
        }
      }
      if (parts.isEmpty()) {
        return List.of(); // the root: everything
      }
      lookup(s, parts);
      selection.add(parts);
    }
    return selection;
  }

  /** Depth-first export of a tree, optionally restricted to selected subtrees. */
  private final class Exporter {
    final ObjectStore.Reader reader;
    final ExportSink sink;
    final ProgressListener l;
    final Entry root;
    final Map<ByteBuffer, byte[]> writtenAs = new HashMap<>(); // file path -> path written
    long entries;
    long bytes;
    long lastReport;

    Exporter(ObjectStore.Reader reader, ExportSink sink, ProgressListener l, Entry root) {
      this.reader = reader;
      this.sink = sink;
      this.l = l;
      this.root = root;
    }

    List<Entry> tree(Digest id) {
      return ObjectCodec.decodeTree(id, reader.read(id, ObjectType.TREE));
    }

    /**
     * @param selection selected paths (component lists); empty means everything
     * @param depth how many components of {@code prefix} are already matched
     */
    void run(Digest tree, byte[] prefix, List<List<byte[]>> selection, int depth)
        throws IOException {
      for (Entry e : tree(tree)) {
        List<List<byte[]>> sub = narrow(selection, depth, e.name());
        if (sub == null) {
          continue;
        }
        byte[] path = child(prefix, e.name());
        if (e.type() == EntryType.DIR) {
          sink.enter(path, e);
          run(e.content(), path, sub, depth + 1);
          sink.leave(path, e);
        } else {
          emit(path, e);
        }
        entries++;
        long now = System.nanoTime();
        if (now - lastReport > 200_000_000L) {
          lastReport = now;
          l.progress(new Progress("exporting", entries, bytes, -1, 0));
        }
      }
    }

    /**
     * Which selections continue below {@code name}: null if none (skip it), an empty list if one
     * selection ends at or above it (export all of it).
     */
    List<List<byte[]>> narrow(List<List<byte[]>> selection, int depth, byte[] name) {
      if (selection.isEmpty()) {
        return selection;
      }
      List<List<byte[]>> out = new ArrayList<>();
      for (List<byte[]> sel : selection) {
        if (Arrays.equals(sel.get(depth), name)) {
          if (sel.size() == depth + 1) {
            return List.of();
          }
          out.add(sel);
        }
      }
      return out.isEmpty() ? null : out;
    }

    void emit(byte[] path, Entry e) throws IOException {
      if (e.type() == EntryType.FILE) {
        writeFile(path, e);
        return;
      }
      if (e.type() == EntryType.HARDLINK) {
        byte[] written = writtenAs.get(ByteBuffer.wrap(e.link()));
        if (written != null) {
          sink.entry(
              path,
              new Entry(
                  e.name(),
                  EntryType.HARDLINK,
                  e.mode(),
                  e.uid(),
                  e.gid(),
                  e.uname(),
                  e.gname(),
                  e.mtimeSeconds(),
                  e.mtimeNanos(),
                  0,
                  null,
                  null,
                  written,
                  0,
                  0,
                  e.xattrs(),
                  e.extras(),
                  e.flags()),
              null);
          return;
        }
        // The first name lies outside the selection: this name carries the content.
        Entry target = lookupIn(e.link());
        if (target.type() != EntryType.FILE) {
          throw new CorruptObjectException(
              "hard link '"
                  + Bytes.escape(path)
                  + "' names '"
                  + Bytes.escape(e.link())
                  + "', not a file");
        }
        writtenAs.put(ByteBuffer.wrap(e.link()), path);
        sink.entry(path, target.withName(e.name()), new ContentStream(reader, target));
        bytes += target.size();
        return;
      }
      sink.entry(path, e, null);
    }

    private void writeFile(byte[] path, Entry e) throws IOException {
      writtenAs.putIfAbsent(ByteBuffer.wrap(path), path);
      sink.entry(path, e, new ContentStream(reader, e));
      bytes += e.size();
    }

    Entry lookupIn(byte[] path) {
      Entry cur = root;
      for (byte[] part : Bytes.split(path)) {
        Entry next = cur.type() == EntryType.DIR ? find(tree(cur.content()), part) : null;
        if (next == null) {
          throw new CorruptObjectException(
              "hard link target '" + Bytes.escape(path) + "' is missing");
        }
        cur = next;
      }
      return cur;
    }
  }

  // ---------------------------------------------------------------- refs

  /**
   * Points {@code name} at the snapshot {@code target} resolves to (creating or moving it).
   *
   * @throws SignatureException if {@code name} is a channel ({@code channels/...}), the repository
   *     requires signatures and the snapshot is not signed by a trusted key; nothing changed
   */
  public RefUpdate tag(String name, String target) {
    // Under the shared lock, a gc cannot remove the snapshot between resolving and naming it.
    try (RepositoryLock.Held held = lock.shared()) {
      store.refresh();
      return tagLocked(name, target);
    }
  }

  private RefUpdate tagLocked(String name, String target) {
    Digest id = resolve(target);
    if (name.startsWith(Channels.PREFIX) && keys.requiresSignatures()) {
      // the same rule as promote: a channel of a repository that requires signatures only ever
      // names a snapshot signed by a trusted key
      try {
        verifySignature(id, keys.trusted());
      } catch (SignatureException e) {
        throw new SignatureException(
            e.reason(),
            "not tagged "
                + name
                + ": this repository requires signatures for channels; "
                + e.getMessage(),
            e);
      }
    }
    for (int attempt = 0; attempt < 10; attempt++) {
      Digest old = refs.get(name).orElse(null);
      RefUpdate u = refs.compareAndSet(name, old, id, "tag: " + target);
      if (u != RefUpdate.REJECTED_CHANGED) {
        return u;
      }
    }
    throw new RefConflictException("ref '" + name + "' keeps changing; try again");
  }

  /** Deletes a ref; its reflog stays, so gc keeps its snapshots until the log expires. */
  public RefUpdate deleteRef(String name) {
    Digest old = refs.get(name).orElseThrow(() -> new NotFoundException("no ref '" + name + "'"));
    RefUpdate u = refs.compareAndSet(name, old, null, "delete");
    if (u == RefUpdate.REJECTED_CHANGED) {
      throw new RefConflictException("ref '" + name + "' changed; not deleted");
    }
    return u;
  }

  // ---------------------------------------------------------------- diff

  /** Differences from snapshot {@code a} to {@code b}; shared subtrees are skipped unread. */
  public List<Change> diff(Digest a, Digest b) {
    Snapshot sa = readSnapshot(a);
    Snapshot sb = readSnapshot(b);
    List<Change> out = new ArrayList<>();
    try (ObjectStore.Reader r = store.newReader()) {
      List<String> rootWhat = changes(sa.root(), sb.root());
      if (!rootWhat.isEmpty()) {
        out.add(new Change('M', new byte[] {'.'}, rootWhat));
      }
      diffTrees(r, sa.tree(), sb.tree(), new byte[0], out);
    }
    return out;
  }

  private void diffTrees(
      ObjectStore.Reader r, Digest ta, Digest tb, byte[] prefix, List<Change> out) {
    if (ta.equals(tb)) {
      return;
    }
    List<Entry> la = ObjectCodec.decodeTree(ta, r.read(ta, ObjectType.TREE));
    List<Entry> lb = ObjectCodec.decodeTree(tb, r.read(tb, ObjectType.TREE));
    int i = 0;
    int j = 0;
    while (i < la.size() || j < lb.size()) {
      int c =
          i >= la.size()
              ? 1
              : j >= lb.size() ? -1 : Arrays.compareUnsigned(la.get(i).name(), lb.get(j).name());
      if (c < 0) {
        removedOrAdded(r, 'D', la.get(i++), prefix, out);
      } else if (c > 0) {
        removedOrAdded(r, 'A', lb.get(j++), prefix, out);
      } else {
        Entry ea = la.get(i++);
        Entry eb = lb.get(j++);
        byte[] path = child(prefix, ea.name());
        if (ea.type() == EntryType.DIR && eb.type() == EntryType.DIR) {
          List<String> what = changes(ea, eb);
          if (!what.isEmpty()) {
            out.add(new Change('M', path, what));
          }
          diffTrees(r, ea.content(), eb.content(), path, out);
        } else if (ea.type() == EntryType.DIR || eb.type() == EntryType.DIR) {
          removedOrAdded(r, 'D', ea, prefix, out);
          removedOrAdded(r, 'A', eb, prefix, out);
        } else {
          List<String> what = changes(ea, eb);
          if (!what.isEmpty()) {
            out.add(new Change('M', path, what));
          }
        }
      }
    }
  }

  private void removedOrAdded(
      ObjectStore.Reader r, char kind, Entry e, byte[] prefix, List<Change> out) {
    byte[] path = child(prefix, e.name());
    out.add(new Change(kind, path, List.of(e.type().label())));
    if (e.type() == EntryType.DIR) {
      for (Entry c : ObjectCodec.decodeTree(e.content(), r.read(e.content(), ObjectType.TREE))) {
        removedOrAdded(r, kind, c, path, out);
      }
    }
  }

  private static List<String> changes(Entry a, Entry b) {
    List<String> w = new ArrayList<>();
    if (a.type() != b.type()) {
      w.add("type " + a.type().label() + "->" + b.type().label());
    }
    if (a.type() == EntryType.FILE
        && b.type() == EntryType.FILE
        && !java.util.Objects.equals(a.fileDigest(), b.fileDigest())) {
      w.add("content (" + a.size() + "->" + b.size() + " bytes)");
    }
    if (a.mode() != b.mode()) {
      w.add(String.format("mode %04o->%04o", a.mode(), b.mode()));
    }
    if (a.uid() != b.uid() || a.gid() != b.gid()) {
      w.add("owner " + a.uid() + ":" + a.gid() + "->" + b.uid() + ":" + b.gid());
    }
    if (!Arrays.equals(a.link(), b.link())) {
      w.add("link " + Bytes.escape(a.link()) + "->" + Bytes.escape(b.link()));
    }
    if (a.devMajor() != b.devMajor() || a.devMinor() != b.devMinor()) {
      w.add(
          "device " + a.devMajor() + "," + a.devMinor() + "->" + b.devMajor() + "," + b.devMinor());
    }
    if (!a.xattrs().equals(b.xattrs())) {
      w.add("xattrs");
    }
    if (a.mtimeSeconds() != b.mtimeSeconds() || a.mtimeNanos() != b.mtimeNanos()) {
      w.add("mtime");
    }
    return w;
  }

  // ---------------------------------------------------------------- reachability, stats, fsck, gc

  /** Every snapshot id named by a ref or a reflog entry. */
  private Set<Digest> rootSnapshots() {
    Set<Digest> roots = new LinkedHashSet<>(refs.list().values());
    for (String name : refs.logNames()) {
      try {
        for (ReflogEntry e : refs.log(name)) {
          if (e.oldId() != null) {
            roots.add(e.oldId());
          }
          if (e.newId() != null) {
            roots.add(e.newId());
          }
        }
      } catch (IllegalArgumentException badName) {
        // a stray file under logs/: not a reflog
      }
    }
    return roots;
  }

  /**
   * Marks everything reachable from refs and reflogs (snapshots, their parents, trees, content).
   * Objects that are missing are skipped here; fsck reports them.
   */
  private Set<Digest> reachable(ObjectStore.Reader r) {
    Set<Digest> seen = new HashSet<>();
    ArrayList<Digest> snaps = new ArrayList<>(rootSnapshots());
    while (!snaps.isEmpty()) {
      Digest id = snaps.remove(snaps.size() - 1);
      if (!store.contains(id) || !seen.add(id)) {
        continue;
      }
      Snapshot s = ObjectCodec.decodeSnapshot(id, r.read(id, ObjectType.SNAPSHOT));
      snaps.addAll(s.parents());
      markTree(r, s.tree(), seen);
    }
    return seen;
  }

  private void markTree(ObjectStore.Reader r, Digest tree, Set<Digest> seen) {
    if (!store.contains(tree) || !seen.add(tree)) {
      return;
    }
    for (Entry e : ObjectCodec.decodeTree(tree, r.read(tree, ObjectType.TREE))) {
      if (e.type() == EntryType.DIR) {
        markTree(r, e.content(), seen);
      } else if (e.type() == EntryType.FILE
          && seen.add(e.content())
          && e.chunked()
          && store.contains(e.content())) {
        ObjectCodec.ChunkList list =
            ObjectCodec.decodeChunkList(e.content(), r.read(e.content(), ObjectType.CHUNKLIST));
        for (ObjectCodec.Chunk c : list.chunks()) {
          seen.add(c.id());
        }
      }
    }
  }

  public RepositoryStats stats() {
    try (RepositoryLock.Held held = lock.shared();
        ObjectStore.Reader r = store.newReader()) {
      Set<Digest> snaps = new HashSet<>();
      Map<Digest, Long> treeBytes = new HashMap<>();
      Set<Digest> contents = new HashSet<>();
      long[] unique = {0};
      long logical = 0;
      ArrayList<Digest> todo = new ArrayList<>(rootSnapshots());
      while (!todo.isEmpty()) {
        Digest id = todo.remove(todo.size() - 1);
        if (!store.contains(id) || !snaps.add(id)) {
          continue;
        }
        Snapshot s = ObjectCodec.decodeSnapshot(id, r.read(id, ObjectType.SNAPSHOT));
        todo.addAll(s.parents());
        logical += treeSize(r, s.tree(), treeBytes, contents, unique);
      }
      long[] objects = {0};
      store.forEach(o -> objects[0]++);
      return new RepositoryStats(
          refs.list().size(), snaps.size(), objects[0], logical, unique[0], store.storedBytes());
    }
  }

  private long treeSize(
      ObjectStore.Reader r,
      Digest tree,
      Map<Digest, Long> memo,
      Set<Digest> contents,
      long[] unique) {
    Long m = memo.get(tree);
    if (m != null) {
      return m;
    }
    long total = 0;
    for (Entry e : ObjectCodec.decodeTree(tree, r.read(tree, ObjectType.TREE))) {
      if (e.type() == EntryType.DIR) {
        total += treeSize(r, e.content(), memo, contents, unique);
      } else if (e.type() == EntryType.FILE) {
        total += e.size();
        if (contents.add(e.fileDigest())) {
          unique[0] += e.size();
        }
      }
    }
    memo.put(tree, total);
    return total;
  }

  /**
   * Verifies every object reachable from refs and reflogs: present, hashing to its id, decoding
   * cleanly, and consistent with what references it (sizes, chunk lists, hard-link targets).
   */
  public FsckReport fsck(ProgressListener l) {
    try (RepositoryLock.Held held = lock.shared();
        ObjectStore.Reader r = store.newReader()) {
      store.refresh();
      Fsck f = new Fsck(r, l);
      for (Digest root : rootSnapshots()) {
        f.snapshot(root, "ref/reflog");
      }
      return new FsckReport(f.snapshots, f.checked.size(), f.problems, f.notes);
    }
  }

  private final class Fsck {
    final ObjectStore.Reader r;
    final ProgressListener l;
    final Set<Digest> checked = new HashSet<>();
    final List<String> problems = new ArrayList<>();
    final List<String> notes = new ArrayList<>();
    final boolean requireSignatures = keys.requiresSignatures();
    TrustedKeys trusted;
    long snapshots;
    long lastReport;

    Fsck(ObjectStore.Reader r, ProgressListener l) {
      this.r = r;
      this.l = l;
    }

    byte[] read(Digest id, ObjectType type, String where) {
      try {
        return r.read(id, type);
      } catch (RepositoryException e) {
        problems.add(e.getMessage() + " (referenced by " + where + ")");
        return null;
      } catch (UncheckedIOException e) {
        problems.add(
            "cannot read "
                + type
                + " "
                + id
                + ": "
                + e.getMessage()
                + " (referenced by "
                + where
                + ")");
        return null;
      }
    }

    void snapshot(Digest id, String where) {
      if (!checked.add(id)) {
        return;
      }
      byte[] b = read(id, ObjectType.SNAPSHOT, where);
      if (b == null) {
        return;
      }
      snapshots++;
      Snapshot s;
      try {
        s = ObjectCodec.decodeSnapshot(id, b);
      } catch (CorruptObjectException e) {
        problems.add(e.getMessage() + " (referenced by " + where + ")");
        return;
      }
      signatures(id, s);
      tree(s.tree(), "snapshot " + id.shortHex(12) + ":/", id, s.root());
      for (Digest p : s.parents()) {
        if (store.contains(p)) {
          snapshot(p, "parent of snapshot " + id.shortHex(12));
        }
      }
    }

    /**
     * A signature by a trusted key that does not match is damage (altered after signing). Unsigned
     * snapshots and ones signed only by untrusted keys are noted, and only where the repository
     * requires signatures.
     */
    void signatures(Digest id, Snapshot s) {
      if (s.signatures().isEmpty() && !requireSignatures) {
        return;
      }
      if (trusted == null) {
        try {
          trusted = keys.trusted();
        } catch (RepositoryException e) {
          problems.add(e.getMessage());
          trusted = TrustedKeys.none();
        }
      }
      try {
        Signatures.verify(id, s, trusted);
      } catch (SignatureException e) {
        if (e.reason() == SignatureException.Reason.BAD_SIGNATURE) {
          problems.add(e.getMessage());
        } else if (requireSignatures) {
          notes.add(e.getMessage());
        }
      }
    }

    void tree(Digest id, String where, Digest snap, Entry root) {
      if (!checked.add(id)) {
        return;
      }
      byte[] b = read(id, ObjectType.TREE, where);
      if (b == null) {
        return;
      }
      List<Entry> entries;
      try {
        entries = ObjectCodec.decodeTree(id, b);
      } catch (CorruptObjectException e) {
        problems.add(e.getMessage() + " (at " + where + ")");
        return;
      }
      long now = System.nanoTime();
      if (now - lastReport > 200_000_000L) {
        lastReport = now;
        l.progress(new Progress("checking", checked.size(), 0, -1, 0));
      }
      for (Entry e : entries) {
        String path = where + (where.endsWith("/") ? "" : "/") + e.nameString();
        switch (e.type()) {
          case DIR -> tree(e.content(), path, snap, root);
          case FILE -> file(e, path);
          case HARDLINK -> {
            if (e.link().length == 0) {
              problems.add("hard link without target at " + path);
            }
          }
          default -> {}
        }
      }
    }

    void file(Entry e, String where) {
      if (!checked.add(e.content())) {
        return;
      }
      if (!e.chunked()) {
        byte[] b = read(e.content(), ObjectType.BLOB, where);
        if (b != null && b.length != e.size()) {
          problems.add(
              "blob "
                  + e.content()
                  + " has "
                  + b.length
                  + " bytes, "
                  + where
                  + " says "
                  + e.size());
        }
        return;
      }
      byte[] lb = read(e.content(), ObjectType.CHUNKLIST, where);
      if (lb == null) {
        return;
      }
      try {
        ObjectCodec.ChunkList list = ObjectCodec.decodeChunkList(e.content(), lb);
        if (list.size() != e.size() || !list.fileDigest().equals(e.fileDigest())) {
          problems.add("chunk list " + e.content() + " does not match " + where);
        }
        java.security.MessageDigest md = Digest.newMessageDigest();
        boolean complete = true;
        for (ObjectCodec.Chunk c : list.chunks()) {
          byte[] cb = read(c.id(), ObjectType.BLOB, where + " (chunk)");
          checked.add(c.id());
          if (cb == null) {
            complete = false;
            continue;
          }
          md.update(cb);
        }
        if (complete && !Digest.of(md).equals(list.fileDigest())) {
          problems.add(
              "chunks of " + where + " do not add up to its content digest " + list.fileDigest());
        }
      } catch (CorruptObjectException ex) {
        problems.add(ex.getMessage() + " (at " + where + ")");
      }
    }
  }

  /**
   * Removes every object no ref or reflog entry reaches, and leftovers of interrupted publishes.
   * Waits for running publishes and exports (the repository lock), and blocks new ones meanwhile.
   */
  public GcReport gc(ProgressListener l) {
    try (RepositoryLock.Held held = lock.exclusive();
        ObjectStore.Reader r = store.newReader()) {
      store.refresh();
      l.progress(new Progress("marking", 0, 0, -1, 0));
      Set<Digest> live = reachable(r);
      l.progress(new Progress("sweeping", live.size(), 0, -1, 0));
      ObjectStore.GcResult res = store.retainOnly(live::contains);
      return new GcReport(live.size(), res.objectsRemoved(), res.bytesFreed());
    }
  }

  /** Expires reflog entries older than {@code before} (current ref values are kept). */
  public int expireReflogs(Instant before) {
    return refs.expireLogs(before);
  }

  /** Iterates the manifest of a snapshot: one line per entry, depth first. */
  public void manifest(Digest snapshot, Consumer<String> line) {
    walk(snapshot, (path, e) -> line.accept(manifestLine(path, e)));
  }

  /**
   * {@code path type mode uid gid size mtime digest} with {@code -} where a field does not apply.
   */
  public static String manifestLine(byte[] path, Entry e) {
    String digest =
        switch (e.type()) {
          case FILE -> e.fileDigest().hex();
          case SYMLINK -> "->" + Bytes.escape(e.link()).replace(" ", "\\x20");
          case HARDLINK -> "=>" + Bytes.escape(e.link()).replace(" ", "\\x20");
          case CHAR, BLOCK -> e.devMajor() + "," + e.devMinor();
          default -> "-";
        };
    return Bytes.escape(path).replace(" ", "\\x20")
        + " "
        + e.type().label()
        + " "
        + String.format("%04o", e.mode())
        + " "
        + e.uid()
        + " "
        + e.gid()
        + " "
        + e.size()
        + " "
        + e.mtimeSeconds()
        + (e.mtimeNanos() != 0 ? String.format(".%09d", e.mtimeNanos()) : "")
        + " "
        + digest;
  }
}
