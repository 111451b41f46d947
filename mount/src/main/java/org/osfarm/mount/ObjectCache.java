package org.osfarm.mount;

import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.osfarm.core.Digest;

/**
 * The mount's disk cache in front of an {@link ObjectSource}: every object the file system reads
 * comes through here.
 *
 * <p>Layout of the cache directory: {@code objects/ab/HEX} holds one object's uncompressed bytes;
 * {@code tmp/} holds writes in progress; {@code index} lists the cached objects, least recently
 * used first ({@code HEX SIZE [pinned]} lines), rewritten every few seconds and on close; {@code
 * lock} is held by the one mount using the directory.
 *
 * <p>Invariants: an object file appears only by an atomic rename of a complete temp file, and every
 * read from disk is verified against its id (a file a crash left damaged is dropped and fetched
 * again); what comes from the source was verified by the source ({@link ObjectSource#read}); so the
 * cache never serves wrong bytes. The sum of cached sizes stays at or below the bound, except that
 * pinned objects are never evicted (pins alone may exceed it). Offline, the source is never asked;
 * a miss is an {@link IOException}.
 *
 * <p>A small in-memory layer keeps the most recently read objects (a chunk is read by the kernel in
 * several 128 KiB pieces). {@link #prefetch} is the read-ahead of a sequential reader: worker
 * threads load the next chunks into that layer (from disk or from the source), so the FUSE request
 * that needs one finds it in memory or joins its load; several loads are in flight at once, which
 * is what keeps the disk or the link busy while the kernel sends one request at a time.
 *
 * <p>Direct mode (a local repository, see {@link #ObjectCache(Path, long, ObjectSource, boolean,
 * boolean)}): objects are read from the source into memory only; pins are still stored on disk.
 * Thread-safe; concurrent reads of one missing object fetch it once.
 */
public final class ObjectCache implements Closeable {
  private static final long HOT_BYTES = 64L << 20;
  private static final boolean TRACE = System.getenv("OSFARM_MOUNT_TRACE") != null;

  private final Path dir;
  private final Path objects;
  private final Path tmp;
  private final ObjectSource source;
  private final long maxBytes;
  private final boolean offline;
  private final boolean direct;
  private final FileChannel lockChannel;
  private final FileLock lock;

  /** Cached objects and their sizes, least recently used first. Guarded by {@code this}. */
  private final LinkedHashMap<Digest, Long> lru = new LinkedHashMap<>(1024, 0.75f, true);

  /**
   * Objects never to evict; marked before they are fetched, so no eviction can slip in. Saved in
   * the index, so a remount (offline, say) keeps them until it has made its own pins.
   */
  private final Set<Digest> pinned = new HashSet<>();

  /** Pins made since this cache opened. */
  private final Set<Digest> sessionPins = new HashSet<>();

  private long cachedBytes;

  /** Recently read objects in memory. Guarded by itself. */
  private final LinkedHashMap<Digest, ByteBuffer> hot = new LinkedHashMap<>(256, 0.75f, true);

  private long hotBytes;

  private final ConcurrentHashMap<Digest, CompletableFuture<ByteBuffer>> inFlight =
      new ConcurrentHashMap<>();

  /**
   * Read-ahead threads: at most one per CPU, since a load is CPU work (a hash, perhaps a zstd
   * decode) once its bytes are local; more only switch between each other and the FUSE threads (2
   * cores, remote 1 Gb/s read: mount CPU 4.2-4.3 s with 4 threads, 3.4-3.7 s with 2, the rate
   * unchanged). {@code -Dosfarm.mount.prefetchThreads=N} overrides.
   */
  static final int PREFETCH_THREADS =
      Integer.getInteger(
          "osfarm.mount.prefetchThreads", Math.min(4, Runtime.getRuntime().availableProcessors()));

  private final ThreadPoolExecutor prefetcher;

  /**
   * Writes fetched objects to disk off the read path: a reader gets an object as soon as it is
   * verified, and the copy into the cache follows on this thread. Bounded: when it falls behind by
   * {@link #WRITE_QUEUE} objects, the loader writes itself (back-pressure, never an unbounded
   * queue). {@link #close} waits for it.
   */
  private final ThreadPoolExecutor writer;

  private static final int WRITE_QUEUE = 64;

  private final AtomicLong bytesFetched = new AtomicLong();
  private final AtomicLong objectsFetched = new AtomicLong();
  private final AtomicLong cacheHits = new AtomicLong();
  private final AtomicLong evictions = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();
  private volatile boolean indexDirty;

  /**
   * Opens (or creates) the cache in {@code dir}, reusing what an earlier mount left there.
   *
   * @param maxBytes the bound on cached bytes (pinned objects excepted)
   * @param offline never ask {@code source}; serve only what is cached
   * @throws IOException when the directory cannot be used or another mount holds it
   */
  public ObjectCache(Path dir, long maxBytes, ObjectSource source, boolean offline)
      throws IOException {
    this(dir, maxBytes, source, offline, false);
  }

  /**
   * As {@link #ObjectCache(Path, long, ObjectSource, boolean)}; with {@code direct}, objects that
   * are not pinned are read from the source into memory only, never stored on disk: for a source
   * that is itself a verified store on this host (a local repository), where a disk copy would only
   * cost a write and a second hash. Pins are still stored, so they keep working offline.
   */
  public ObjectCache(Path dir, long maxBytes, ObjectSource source, boolean offline, boolean direct)
      throws IOException {
    this.direct = direct && !offline;
    this.dir = dir;
    this.objects = dir.resolve("objects");
    this.tmp = dir.resolve("tmp");
    this.source = source;
    this.maxBytes = maxBytes;
    this.offline = offline;
    Files.createDirectories(objects);
    Files.createDirectories(tmp);
    lockChannel =
        FileChannel.open(dir.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    FileLock l = lockChannel.tryLock();
    if (l == null) {
      lockChannel.close();
      throw new IOException(
          "the cache "
              + dir
              + " is in use by another mount; unmount it or pass another --cache directory");
    }
    lock = l;
    clearTmp();
    loadIndex();
    evict();
    prefetcher =
        new ThreadPoolExecutor(
            PREFETCH_THREADS,
            PREFETCH_THREADS,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(512),
            r -> {
              Thread t = new Thread(r, "osfarm-prefetch");
              t.setDaemon(true);
              return t;
            },
            new ThreadPoolExecutor.DiscardPolicy());
    prefetcher.allowCoreThreadTimeOut(true);
    writer =
        new ThreadPoolExecutor(
            1,
            1,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(WRITE_QUEUE),
            r -> {
              Thread t = new Thread(r, "osfarm-cache-writer");
              t.setDaemon(true);
              return t;
            },
            new ThreadPoolExecutor.CallerRunsPolicy());
    writer.allowCoreThreadTimeOut(true);
  }

  public ObjectSource source() {
    return source;
  }

  public boolean offline() {
    return offline;
  }

  /**
   * The verified bytes of {@code id}: from memory, from disk, or fetched from the source and
   * cached.
   *
   * @throws IOException when the object is not cached and the source cannot deliver it (or the
   *     cache is offline)
   */
  public byte[] read(Digest id) throws IOException {
    return ObjectSource.bytes(readBuffer(id));
  }

  /**
   * As {@link #read}, as a buffer (position 0 to its limit) that callers only read with absolute
   * gets: for a local repository a view of its mapped pack, so a file read copies each byte once,
   * into the reply.
   */
  public ByteBuffer readBuffer(Digest id) throws IOException {
    ByteBuffer b = hotGet(id);
    if (b != null) {
      cacheHits.incrementAndGet();
      return b;
    }
    CompletableFuture<ByteBuffer> ahead = inFlight.get(id);
    if (ahead != null) { // a read-ahead is loading it
      return await(ahead);
    }
    return load(id);
  }

  /** True if the object is on disk (or being fetched). */
  public synchronized boolean contains(Digest id) {
    return lru.containsKey(id);
  }

  /**
   * Read-ahead for a sequential reader: loads those of {@code ids} that are not in memory on the
   * read-ahead threads, in order, from disk or (online) from the source, verified as every read is.
   * A later {@link #read} of one of them takes it from memory or waits for its load instead of
   * starting its own. Objects neither cached nor fetchable are skipped (the read that needs one
   * reports the error).
   */
  public void prefetch(List<Digest> ids) {
    if (ids.isEmpty()) {
      return;
    }
    List<Digest> load = new ArrayList<>();
    List<Digest> missing = new ArrayList<>();
    synchronized (hot) {
      for (Digest id : ids) {
        if (!hot.containsKey(id) && !inFlight.containsKey(id)) {
          load.add(id);
        }
      }
    }
    if (load.isEmpty()) {
      return;
    }
    synchronized (this) {
      for (Digest id : load) {
        if (!lru.containsKey(id)) {
          missing.add(id);
        }
      }
    }
    if (offline) {
      load.removeAll(missing);
    } else if (!missing.isEmpty()) {
      source.prefetch(missing);
    }
    for (Digest id : load) {
      prefetcher.execute(
          () -> {
            try {
              if (hotGet(id) == null) {
                load(id);
              }
            } catch (IOException | RuntimeException e) {
              // a hint only: the read that needs the object reports the error
            }
          });
    }
  }

  /**
   * Makes sure {@code id} is cached and keeps it from eviction for as long as this cache is open.
   */
  public byte[] pin(Digest id) throws IOException {
    synchronized (this) {
      pinned.add(id);
      sessionPins.add(id);
    }
    // Not through the memory layer: a pinned object must be on disk.
    byte[] b = readDisk(id);
    if (b == null) {
      if (offline) {
        throw new IOException("pinned object " + id + " is not cached and the mount is offline");
      }
      b = ObjectSource.bytes(load(id));
    }
    boolean onDisk;
    synchronized (this) {
      onDisk = lru.containsKey(id);
    }
    if (!onDisk) { // read directly, or stored and evicted by a concurrent load before the pin
      store(id, b);
    }
    return b;
  }

  /** Releases pins an earlier mount left that this one has not made again. */
  public synchronized void releaseEarlierPins() {
    pinned.retainAll(sessionPins);
    indexDirty = true;
    evict();
  }

  /**
   * Loads {@code id} into memory from disk or, when it is not cached, from the source (verified and
   * stored on disk). One load per id at a time: concurrent callers share it.
   */
  private ByteBuffer load(Digest id) throws IOException {
    CompletableFuture<ByteBuffer> mine = new CompletableFuture<>();
    CompletableFuture<ByteBuffer> other = inFlight.putIfAbsent(id, mine);
    if (other != null) {
      return await(other);
    }
    try {
      ByteBuffer b = hotGet(id); // a load may have finished meanwhile
      if (b == null) {
        byte[] onDisk = direct ? null : readDisk(id);
        if (onDisk != null) {
          b = ByteBuffer.wrap(onDisk);
          cacheHits.incrementAndGet();
        } else if (offline) {
          throw new IOException("object " + id + " is not cached and the mount is offline");
        } else {
          long t0 = TRACE ? System.nanoTime() : 0;
          b = direct ? source.readBuffer(id) : ByteBuffer.wrap(source.read(id));
          if (TRACE) {
            System.err.printf(
                "load %s %d %d us%n",
                Thread.currentThread().getName(), b.limit(), (System.nanoTime() - t0) / 1000);
          }
          // Not hashed again here: ObjectSource#read returns bytes verified against the id (the
          // repository reader and the remote source each hash every object they return), and a
          // second SHA-256 of every fetched byte cost about 1 CPU s per GB on the read path.
          bytesFetched.addAndGet(b.limit());
          objectsFetched.incrementAndGet();
          if (!direct) {
            byte[] verified = b.array();
            writer.execute(() -> storeQuietly(id, verified));
          }
        }
        hotPut(id, b);
      }
      mine.complete(b);
      return b;
    } catch (IOException | RuntimeException e) {
      errors.incrementAndGet();
      mine.completeExceptionally(e);
      throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
    } finally {
      inFlight.remove(id, mine);
    }
  }

  private static ByteBuffer await(CompletableFuture<ByteBuffer> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io ? io : new IOException(c.getMessage(), c);
    }
  }

  private Path file(Digest id) {
    String hex = id.hex();
    return objects.resolve(hex.substring(0, 2)).resolve(hex);
  }

  /** The object from disk, verified; null (and forgotten) when absent or damaged. */
  private byte[] readDisk(Digest id) {
    synchronized (this) {
      if (!lru.containsKey(id)) {
        return null;
      }
      lru.get(id); // touch: most recently used
      indexDirty = true;
    }
    try {
      byte[] b = Files.readAllBytes(file(id));
      if (Digest.of(b).equals(id)) {
        return b;
      }
    } catch (IOException e) {
      // gone or unreadable: forget it below and fetch again
    }
    forget(id);
    return null;
  }

  private synchronized void forget(Digest id) {
    Long size = lru.remove(id);
    if (size != null) {
      cachedBytes -= size;
    }
    try {
      Files.deleteIfExists(file(id));
    } catch (IOException e) {
      // best effort: the index no longer names it
    }
  }

  /** A cache write on the writer thread: a failure leaves the object uncached, not the read. */
  private void storeQuietly(Digest id, byte[] b) {
    try {
      store(id, b);
    } catch (IOException | RuntimeException e) {
      errors.incrementAndGet();
      System.err.println("osfarm mount: cannot cache object " + id + ": " + e.getMessage());
    }
  }

  /** Waits until every queued cache write is on disk (or failed). */
  void drainWrites() {
    CompletableFuture<Void> marker = new CompletableFuture<>();
    writer.execute(() -> marker.complete(null));
    marker.join();
  }

  private void store(Digest id, byte[] b) throws IOException {
    Path target = file(id);
    Path t = Files.createTempFile(tmp, id.hex().substring(0, 16), ".part");
    try {
      Files.write(t, b);
      Files.createDirectories(target.getParent());
      try {
        Files.move(t, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        throw new IOException("the cache directory must allow atomic renames: " + dir, e);
      }
    } finally {
      Files.deleteIfExists(t);
    }
    synchronized (this) {
      if (lru.put(id, (long) b.length) == null) {
        cachedBytes += b.length;
      }
      indexDirty = true;
      evict();
    }
  }

  private synchronized void evict() {
    if (cachedBytes <= maxBytes) {
      return;
    }
    Iterator<Map.Entry<Digest, Long>> it = lru.entrySet().iterator();
    while (cachedBytes > maxBytes && it.hasNext()) {
      Map.Entry<Digest, Long> e = it.next();
      if (pinned.contains(e.getKey())) {
        continue;
      }
      try {
        Files.deleteIfExists(file(e.getKey()));
      } catch (IOException ex) {
        throw new UncheckedIOException("cannot evict from the cache " + dir, ex);
      }
      cachedBytes -= e.getValue();
      it.remove();
      evictions.incrementAndGet();
      indexDirty = true;
    }
  }

  // ---------------------------------------------------------------- memory layer

  private ByteBuffer hotGet(Digest id) {
    synchronized (hot) {
      return hot.get(id);
    }
  }

  private void hotPut(Digest id, ByteBuffer b) {
    synchronized (hot) {
      if (hot.put(id, b) == null) {
        hotBytes += b.limit();
      }
      Iterator<ByteBuffer> it = hot.values().iterator();
      while (hotBytes > HOT_BYTES && it.hasNext()) {
        hotBytes -= it.next().limit();
        it.remove();
      }
    }
  }

  // ---------------------------------------------------------------- index

  private void clearTmp() throws IOException {
    try (DirectoryStream<Path> s = Files.newDirectoryStream(tmp)) {
      for (Path p : s) {
        Files.deleteIfExists(p);
      }
    }
  }

  private synchronized void loadIndex() throws IOException {
    Path index = dir.resolve("index");
    if (Files.exists(index)) {
      for (String line : Files.readAllLines(index, StandardCharsets.US_ASCII)) {
        String[] f = line.split(" ");
        if (f.length < 2 || !Digest.isHex(f[0])) {
          continue;
        }
        Digest id = Digest.fromHex(f[0]);
        try {
          long size = Files.size(file(id));
          if (size == Long.parseLong(f[1]) && lru.put(id, size) == null) {
            cachedBytes += size;
            if (f.length > 2 && f[2].equals("pinned")) {
              pinned.add(id);
            }
          }
        } catch (NoSuchFileException | NumberFormatException e) {
          // evicted or damaged after the index was written
        }
      }
    }
    // Objects the index does not name (a crash before it was rewritten): oldest use.
    List<Map.Entry<Digest, Long>> extra = new ArrayList<>();
    try (DirectoryStream<Path> fan = Files.newDirectoryStream(objects)) {
      for (Path sub : fan) {
        try (DirectoryStream<Path> s = Files.newDirectoryStream(sub)) {
          for (Path p : s) {
            String name = p.getFileName().toString();
            if (!Digest.isHex(name)) {
              continue;
            }
            Digest id = Digest.fromHex(name);
            if (!lru.containsKey(id)) {
              extra.add(Map.entry(id, Files.size(p)));
            }
          }
        }
      }
    }
    if (!extra.isEmpty()) {
      LinkedHashMap<Digest, Long> old = new LinkedHashMap<>(lru);
      lru.clear();
      for (Map.Entry<Digest, Long> e : extra) {
        lru.put(e.getKey(), e.getValue());
        cachedBytes += e.getValue();
      }
      lru.putAll(old);
    }
    indexDirty = true;
  }

  /** Writes the index (atomically) if it changed since the last write. */
  public void saveIndex() throws IOException {
    if (!indexDirty) {
      return;
    }
    StringBuilder sb = new StringBuilder();
    synchronized (this) {
      indexDirty = false;
      for (Map.Entry<Digest, Long> e : lru.entrySet()) {
        sb.append(e.getKey().hex()).append(' ').append(e.getValue());
        sb.append(pinned.contains(e.getKey()) ? " pinned\n" : "\n");
      }
    }
    Path t = dir.resolve("index.tmp");
    Files.writeString(t, sb, StandardCharsets.US_ASCII);
    Files.move(t, dir.resolve("index"), StandardCopyOption.ATOMIC_MOVE);
  }

  // ---------------------------------------------------------------- stats

  /** What this cache has done since it opened. */
  public record Stats(
      long bytesFetched,
      long objectsFetched,
      long cacheHits,
      long cacheBytes,
      long cacheObjects,
      long pinnedBytes,
      long pinnedObjects,
      long evictions,
      long errors,
      long maxBytes) {}

  public synchronized Stats stats() {
    long pinnedBytes = 0;
    long pinnedObjects = 0;
    for (Map.Entry<Digest, Long> e : lru.entrySet()) { // iterating does not touch the order
      if (pinned.contains(e.getKey())) {
        pinnedBytes += e.getValue();
        pinnedObjects++;
      }
    }
    return new Stats(
        bytesFetched.get(),
        objectsFetched.get(),
        cacheHits.get(),
        cachedBytes,
        lru.size(),
        pinnedBytes,
        pinnedObjects,
        evictions.get(),
        errors.get(),
        maxBytes);
  }

  /** The ids currently on disk (for tests and diagnostics). */
  public Collection<Digest> cachedIds() {
    drainWrites();
    synchronized (this) {
      return List.copyOf(lru.keySet());
    }
  }

  @Override
  public void close() throws IOException {
    prefetcher.shutdownNow();
    writer.shutdown();
    try {
      if (!writer.awaitTermination(60, TimeUnit.SECONDS)) {
        System.err.println("osfarm mount: cache writes still pending at close; dropped");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try {
      saveIndex();
    } finally {
      lock.release();
      lockChannel.close();
    }
  }
}
