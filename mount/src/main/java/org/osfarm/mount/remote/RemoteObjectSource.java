package org.osfarm.mount.remote;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.RepositoryException;
import org.osfarm.core.store.StoredObject;
import org.osfarm.mount.ObjectSource;
import org.osfarm.transfer.ObjectPack;

/**
 * Objects from an osfarm server ({@code osfarm serve}) over its object protocol under {@code
 * URL/v1}: {@code GET /refs/NAME}, {@code GET /objects/HEX} and {@code POST /objects/pack}.
 *
 * <p>Design. A fixed set of fetch workers, each owning one persistent HTTP/1.1 connection, take
 * work from two queues: objects a reader waits for ({@link #read}) before objects hinted by {@link
 * #prefetch}. A worker takes a share of the queue ({@code ceil(queued / connections)} ids, at most
 * {@link Options#batchSize}): one id goes as a {@code GET} (uncompressed), several as one pack
 * request (zstd-compressed, streamed in order, so the first object is usable before the last has
 * arrived). Several workers keep several requests in flight, so a sequential read that hints far
 * enough ahead keeps the link busy. Every object is hashed on arrival and handed out only when it
 * matches its id.
 *
 * <p>Invariants (all under {@code lock}): an id has at most one {@link Fetch} at a time in {@code
 * fetches}, so concurrent readers of one id share one request. A prefetched object counts against
 * the read-ahead budget ({@link Options#readAhead} objects, each at most {@link
 * ObjectPack#MAX_OBJECT} bytes, in practice chunks of at most 512 KiB) from the hint until a reader
 * claims it, it fails, or it has waited unclaimed for {@link #STALE_NANOS}; a hint beyond the
 * budget is dropped (the reader's later hints repeat it). So memory held for fetched-but-unread
 * objects is bounded.
 *
 * <p>Failures. A transport error (refused connection, reset, timeout, a truncated answer, a 5xx) is
 * retried on a fresh connection up to {@link Options#attempts} times with a short backoff, then
 * reported as an {@link IOException} naming the object and the server; a killed server therefore
 * gives an {@code IOException} (EIO in the file system), never bytes. A failure makes every worker
 * drop its idle connection before its next request (the server may have restarted), and a server
 * that stays silent for a whole read timeout is not asked again for that read. Bytes that do not
 * hash to the requested id give {@link CorruptObjectException} and are dropped; a 404 gives {@link
 * NotFoundException}. Neither is retried.
 *
 * <p>Thread-safe.
 */
public final class RemoteObjectSource implements ObjectSource {
  /**
   * Whether packs are asked for as stored ({@code ?stored=1}); {@code OSFARM_REMOTE_STORED=0} asks
   * for plain zstd packs, as before stored packs existed (for comparing the two).
   */
  static final boolean ASK_STORED = !"0".equals(System.getenv("OSFARM_REMOTE_STORED"));

  /** A prefetched object nobody claimed for this long is dropped. */
  static final long STALE_NANOS = TimeUnit.SECONDS.toNanos(30);

  /**
   * Tuning and limits.
   *
   * @param connections fetch workers, each with one persistent connection
   * @param batchSize the most ids in one pack request; 1 fetches every object with its own GET
   * @param readAhead the most prefetched objects held or in flight at once
   * @param packLevel the zstd level the server compresses packs with (-7..19)
   * @param connectTimeout how long to wait for a connection
   * @param readTimeout how long an answer may stall before the request fails
   * @param attempts how often one object is tried before its reader gets an error
   * @param token a bearer token sent with every request, or null
   */
  public record Options(
      int connections,
      int batchSize,
      int readAhead,
      int packLevel,
      Duration connectTimeout,
      Duration readTimeout,
      int attempts,
      String token) {
    public Options {
      if (connections < 1 || batchSize < 1 || readAhead < 0 || attempts < 1) {
        throw new IllegalArgumentException("connections, batch size and attempts must be >= 1");
      }
      if (packLevel < -7 || packLevel > 19) {
        throw new IllegalArgumentException("pack level must be -7..19");
      }
      Objects.requireNonNull(connectTimeout);
      Objects.requireNonNull(readTimeout);
    }

    /**
     * The defaults, with the token from {@code OSFARM_TOKEN} and overrides for tuning from {@code
     * OSFARM_REMOTE_CONNECTIONS}, {@code OSFARM_REMOTE_BATCH}, {@code OSFARM_REMOTE_READAHEAD} and
     * {@code OSFARM_REMOTE_PACK_LEVEL}.
     */
    public static Options fromEnvironment() {
      String token = System.getenv("OSFARM_TOKEN");
      return new Options(
          env("OSFARM_REMOTE_CONNECTIONS", 4),
          env("OSFARM_REMOTE_BATCH", 16),
          env("OSFARM_REMOTE_READAHEAD", 64),
          env("OSFARM_REMOTE_PACK_LEVEL", 1),
          Duration.ofSeconds(10),
          Duration.ofSeconds(30),
          3,
          token == null || token.isBlank() ? null : token.trim());
    }

    private static int env(String name, int dflt) {
      String v = System.getenv(name);
      if (v == null || v.isBlank()) {
        return dflt;
      }
      try {
        return Integer.parseInt(v.trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(name + " must be a number, not '" + v + "'");
      }
    }

    public Options withConnections(int n) {
      return new Options(
          n, batchSize, readAhead, packLevel, connectTimeout, readTimeout, attempts, token);
    }

    public Options withBatchSize(int n) {
      return new Options(
          connections, n, readAhead, packLevel, connectTimeout, readTimeout, attempts, token);
    }

    public Options withReadAhead(int n) {
      return new Options(
          connections, batchSize, n, packLevel, connectTimeout, readTimeout, attempts, token);
    }

    public Options withTimeouts(Duration connect, Duration read, int tries) {
      return new Options(connections, batchSize, readAhead, packLevel, connect, read, tries, token);
    }

    public Options withToken(String t) {
      return new Options(
          connections, batchSize, readAhead, packLevel, connectTimeout, readTimeout, attempts, t);
    }
  }

  /** One object being fetched; readers of the same id share it. Fields guarded by {@code lock}. */
  private static final class Fetch {
    final Digest id;
    final CompletableFuture<byte[]> done = new CompletableFuture<>();
    boolean demanded; // a reader waits (or waited) for it
    boolean ahead; // counted in aheadCount
    boolean queued;
    int failures;
    long readyAt;
    int size;

    Fetch(Digest id) {
      this.id = id;
    }
  }

  private final URI base;
  private final String prefix;
  private final Options options;
  private final String authorization;
  private final AtomicLong wire = new AtomicLong();
  private final AtomicLong objects = new AtomicLong();
  private final java.util.concurrent.atomic.AtomicInteger failureEpoch =
      new java.util.concurrent.atomic.AtomicInteger();

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition work = lock.newCondition();
  private final Map<Digest, Fetch> fetches = new HashMap<>();
  private final ArrayDeque<Fetch> demandQueue = new ArrayDeque<>();
  private final ArrayDeque<Fetch> aheadQueue = new ArrayDeque<>();
  private final LinkedHashMap<Digest, Fetch> ready = new LinkedHashMap<>();
  private int aheadCount;
  private long readyBytes;
  private boolean closed;

  private final List<Thread> workers = new ArrayList<>();
  private final List<HttpConnection> connections = new ArrayList<>();
  private final HttpConnection control;

  /** Whether {@code source} names a remote server (an {@code http://} or {@code https://} URL). */
  public static boolean isRemote(String source) {
    String s = source.toLowerCase(Locale.ROOT);
    return s.startsWith("http://") || s.startsWith("https://");
  }

  /** A source for {@code url} with {@link Options#fromEnvironment()}. */
  public static RemoteObjectSource open(String url) {
    return new RemoteObjectSource(URI.create(url), Options.fromEnvironment());
  }

  /**
   * A source for the osfarm server at {@code url} ({@code http://host:port}, optionally with a path
   * prefix; the object protocol is under {@code url/v1}). Connects lazily: a server that is down
   * shows up at the first {@link #resolve} or {@link #read}.
   */
  public RemoteObjectSource(URI url, Options options) {
    String s = url.toString();
    while (s.endsWith("/")) {
      s = s.substring(0, s.length() - 1);
    }
    URI u = URI.create(s);
    if (!isRemote(s) || u.getHost() == null) {
      throw new IllegalArgumentException(
          "a remote source must be an http:// or https:// URL with a host: " + url);
    }
    String path = u.getRawPath() == null ? "" : u.getRawPath();
    this.prefix = path.endsWith("/v1") ? path : path + "/v1";
    this.base = u;
    this.options = options;
    this.authorization = options.token() == null ? null : "Bearer " + options.token();
    this.control = newConnection();
    for (int i = 0; i < options.connections(); i++) {
      HttpConnection c = newConnection();
      connections.add(c);
      workers.add(Thread.ofPlatform().daemon().name("osfarm-fetch-" + i).start(() -> workLoop(c)));
    }
  }

  private HttpConnection newConnection() {
    return new HttpConnection(
        base,
        authorization,
        (int) options.connectTimeout().toMillis(),
        (int) options.readTimeout().toMillis(),
        wire);
  }

  @Override
  public String describe() {
    return base.toString();
  }

  @Override
  public long bytesFetched() {
    return wire.get();
  }

  /** Objects received and verified so far. */
  public long objectsFetched() {
    return objects.get();
  }

  // ---------------------------------------------------------------- resolve

  @Override
  public Digest resolve(String refOrId) throws IOException {
    Objects.requireNonNull(refOrId);
    boolean id = refOrId.length() == Digest.HEX_LENGTH && Digest.isHex(refOrId);
    String path =
        id
            ? prefix + "/objects/" + refOrId.toLowerCase(Locale.ROOT)
            : prefix + "/refs/" + encodeRef(refOrId);
    IOException last = null;
    for (int attempt = 0; attempt < options.attempts(); attempt++) {
      if (attempt > 0) {
        backoff(attempt);
      }
      synchronized (control) {
        ensureOpen();
        try (HttpConnection.Response r = control.request(id ? "HEAD" : "GET", path, null)) {
          int st = r.status();
          if (st == 404) {
            r.text();
            throw new NotFoundException(
                (id ? "no snapshot " + refOrId : "no ref '" + refOrId + "'") + " at " + base);
          }
          checkAuth(r, "GET " + path);
          if (st != 200) {
            throw new IOException(
                base
                    + " answered "
                    + st
                    + " to "
                    + (id ? "HEAD " : "GET ")
                    + path
                    + ": "
                    + r.text());
          }
          if (id) {
            String type = r.header("X-Osfarm-Object-Type");
            r.text();
            if (type != null && !type.equalsIgnoreCase("snapshot")) {
              throw new NotFoundException(
                  refOrId + " at " + base + " is a " + type + " object, not a snapshot");
            }
            return Digest.fromHex(refOrId);
          }
          String hex = r.text();
          if (!Digest.isHex(hex) || hex.length() != Digest.HEX_LENGTH) {
            throw new IOException(
                base + " answered ref '" + refOrId + "' with '" + hex + "', not a snapshot id");
          }
          return Digest.fromHex(hex);
        } catch (AuthException | NotFoundException e) {
          throw e;
        } catch (IOException e) {
          control.close();
          last = e;
        }
      }
    }
    throw new IOException(
        "cannot resolve '"
            + refOrId
            + "' at "
            + base
            + " (is 'osfarm serve' running there?): "
            + last.getMessage(),
        last);
  }

  static String encodeRef(String name) {
    StringBuilder sb = new StringBuilder();
    for (String part : name.split("/", -1)) {
      if (!sb.isEmpty()) {
        sb.append('/');
      }
      sb.append(URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20"));
    }
    return sb.toString();
  }

  // ---------------------------------------------------------------- read and prefetch

  @Override
  public byte[] read(Digest id) throws IOException {
    Objects.requireNonNull(id);
    Fetch f;
    lock.lock();
    try {
      ensureOpen();
      f = fetches.get(id);
      if (f == null) {
        f = new Fetch(id);
        f.demanded = true;
        f.queued = true;
        fetches.put(id, f);
        demandQueue.addLast(f);
        work.signal();
      } else if (!f.demanded) {
        f.demanded = true;
        if (f.queued) {
          // A hinted object a reader now waits for goes before the other hints.
          aheadQueue.remove(f);
          demandQueue.addLast(f);
          work.signal();
        } else if (f.done.isDone()) {
          release(f); // fetched ahead: this reader claims it
        }
      }
    } finally {
      lock.unlock();
    }
    return await(f);
  }

  private byte[] await(Fetch f) throws IOException {
    long limit =
        options.attempts()
                * (options.connectTimeout().toMillis() + options.readTimeout().toMillis() + 2_000)
            + 10_000;
    try {
      return f.done.get(limit, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while fetching " + f.id.hex());
    } catch (TimeoutException e) {
      throw new IOException(
          "no answer from " + base + " for object " + f.id.hex() + " within " + limit + " ms");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw new IOException(io.getMessage(), io);
      }
      if (c instanceof RepositoryException re) {
        throw re;
      }
      throw new IOException("fetching " + f.id.hex() + " from " + base + " failed: " + c, c);
    }
  }

  @Override
  public void prefetch(List<Digest> ids) {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      expireStale(System.nanoTime());
      boolean added = false;
      for (Digest id : ids) {
        if (aheadCount >= options.readAhead()) {
          break;
        }
        if (fetches.containsKey(id)) {
          continue;
        }
        Fetch f = new Fetch(id);
        f.ahead = true;
        f.queued = true;
        aheadCount++;
        fetches.put(id, f);
        aheadQueue.addLast(f);
        added = true;
      }
      if (added) {
        work.signalAll();
      }
    } finally {
      lock.unlock();
    }
  }

  /** Drops prefetched objects nobody claimed in time. Under lock. */
  private void expireStale(long now) {
    Iterator<Fetch> it = ready.values().iterator();
    while (it.hasNext()) {
      Fetch f = it.next();
      if (now - f.readyAt < STALE_NANOS) {
        break;
      }
      it.remove();
      readyBytes -= f.size;
      if (fetches.get(f.id) == f) {
        fetches.remove(f.id);
      }
      if (f.ahead) {
        f.ahead = false;
        aheadCount--;
      }
    }
  }

  /** Forgets a finished fetch and gives back its read-ahead budget. Under lock. */
  private void release(Fetch f) {
    if (fetches.get(f.id) == f) {
      fetches.remove(f.id);
    }
    if (ready.remove(f.id, f)) {
      readyBytes -= f.size;
    }
    if (f.ahead) {
      f.ahead = false;
      aheadCount--;
    }
  }

  private void succeed(Fetch f, byte[] data) {
    objects.incrementAndGet();
    lock.lock();
    try {
      if (f.demanded) {
        release(f);
      } else {
        f.readyAt = System.nanoTime();
        f.size = data.length;
        ready.put(f.id, f);
        readyBytes += data.length;
      }
    } finally {
      lock.unlock();
    }
    f.done.complete(data);
  }

  private void fail(Fetch f, Throwable e) {
    lock.lock();
    try {
      release(f);
    } finally {
      lock.unlock();
    }
    f.done.completeExceptionally(e);
  }

  // ---------------------------------------------------------------- workers

  private void workLoop(HttpConnection conn) {
    int seen = failureEpoch.get();
    while (true) {
      List<Fetch> batch = take();
      if (batch == null) {
        return;
      }
      if (seen != failureEpoch.get()) {
        // Another worker's request failed: the server may have restarted or died, and this
        // worker's idle connection with it. Start afresh rather than find out the slow way.
        seen = failureEpoch.get();
        closeQuietly(conn);
      }
      try {
        if (batch.size() == 1) {
          getOne(conn, batch.getFirst());
        } else {
          getPack(conn, batch);
        }
      } catch (IOException | RuntimeException e) {
        closeQuietly(conn);
        seen = failureEpoch.incrementAndGet();
        int worst = retryOrFail(batch, e);
        if (worst > 0) {
          backoff(worst);
        }
      }
    }
  }

  /** The next share of work, demanded objects first; null when closed. */
  private List<Fetch> take() {
    lock.lock();
    try {
      while (!closed && demandQueue.isEmpty() && aheadQueue.isEmpty()) {
        work.awaitUninterruptibly();
      }
      if (closed) {
        return null;
      }
      ArrayDeque<Fetch> q = demandQueue.isEmpty() ? aheadQueue : demandQueue;
      int share = (q.size() + options.connections() - 1) / options.connections();
      int n = Math.max(1, Math.min(options.batchSize(), share));
      List<Fetch> batch = new ArrayList<>(n);
      while (batch.size() < n && !q.isEmpty()) {
        Fetch f = q.pollFirst();
        f.queued = false;
        batch.add(f);
      }
      return batch;
    } finally {
      lock.unlock();
    }
  }

  /**
   * After a transport failure: requeues the batch's unfinished objects that have tries left (a hint
   * nobody waits for is simply dropped), fails the others. Returns the highest failure count among
   * the requeued, for the backoff.
   */
  private int retryOrFail(List<Fetch> batch, Throwable e) {
    int worst = 0;
    List<Fetch> failed = new ArrayList<>();
    lock.lock();
    try {
      for (int i = batch.size() - 1; i >= 0; i--) {
        Fetch f = batch.get(i);
        if (f.done.isDone()) {
          continue;
        }
        f.failures++;
        // A server silent for a whole read timeout is not asked again: the reader has waited
        // long enough, and the next read starts afresh.
        boolean silent = e instanceof java.net.SocketTimeoutException;
        if (closed || !f.demanded || silent || f.failures >= options.attempts()) {
          failed.add(f);
        } else {
          f.queued = true;
          demandQueue.addFirst(f);
          worst = Math.max(worst, f.failures);
        }
      }
      if (worst > 0) {
        work.signalAll();
      }
    } finally {
      lock.unlock();
    }
    for (Fetch f : failed) {
      fail(
          f,
          new IOException(
              "cannot fetch object "
                  + f.id.hex()
                  + " from "
                  + base
                  + (f.failures > 1 ? " (" + f.failures + " attempts)" : "")
                  + ": "
                  + describe(e),
              e));
    }
    return worst;
  }

  private static String describe(Throwable e) {
    String m = e.getMessage();
    return m == null ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + m;
  }

  private void getOne(HttpConnection conn, Fetch f) throws IOException {
    String path = prefix + "/objects/" + f.id.hex() + (ASK_STORED ? "?stored=1" : "");
    HttpConnection.Response r = conn.request("GET", path, null);
    try (r) {
      int st = r.status();
      if (st == 404) {
        r.text();
        fail(f, new NotFoundException(base + " has no object " + f.id.hex()));
        return;
      }
      if (st != 200) {
        checkAuthFor(r, "GET " + path, List.of(f));
        throw new IOException(base + " answered " + st + " to GET " + path + ": " + r.text());
      }
      long len = r.length();
      byte[] data;
      if (len > ObjectPack.MAX_OBJECT) {
        throw new IOException(base + " announced an object of " + len + " bytes");
      }
      String type = r.header("Content-Type");
      if (type != null && type.toLowerCase(Locale.ROOT).startsWith(ObjectPack.STORED_OBJECT_TYPE)) {
        getStored(r, f, len);
        return;
      }
      if (len >= 0) {
        data = readExactly(r.body(), (int) len, f);
      } else {
        data = r.body().readNBytes(ObjectPack.MAX_OBJECT + 1);
        if (data.length > ObjectPack.MAX_OBJECT) {
          throw new IOException(base + " sent an object of more than 64 MiB");
        }
      }
      verifyAndComplete(f, data);
    }
  }

  /** Reads exactly {@code len} bytes into a new array (one copy, no intermediate buffers). */
  private static byte[] readExactly(InputStream in, int len, Fetch f) throws IOException {
    byte[] data = new byte[len];
    if (in.readNBytes(data, 0, len) != len) {
      throw new IOException("the answer for " + f.id.hex() + " broke off");
    }
    return data;
  }

  /** The answer of {@code GET /objects/HEX?stored=1}: stored bytes, codec and size in headers. */
  private void getStored(HttpConnection.Response r, Fetch f, long len) throws IOException {
    int codec;
    int size;
    try {
      codec = Integer.parseInt(String.valueOf(r.header("X-Osfarm-Codec")));
      size = Integer.parseInt(String.valueOf(r.header("X-Osfarm-Size")));
    } catch (NumberFormatException e) {
      throw new IOException(base + " sent a stored object without a codec or a size");
    }
    if (len < 0 || size < 0 || size > ObjectPack.MAX_OBJECT) {
      throw new IOException(base + " sent a stored object of " + size + " bytes in " + len);
    }
    byte[] stored = readExactly(r.body(), (int) len, f);
    byte[] data;
    try {
      data = StoredObject.decode(f.id, codec, stored, stored.length, size);
    } catch (CorruptObjectException e) {
      fail(f, damaged(f, e.getMessage()));
      return;
    }
    verifyAndComplete(f, data);
  }

  private void getPack(HttpConnection conn, List<Fetch> batch) throws IOException {
    byte[] ids = new byte[batch.size() * Digest.LENGTH];
    LinkedHashMap<Digest, Fetch> pending = new LinkedHashMap<>();
    for (int i = 0; i < batch.size(); i++) {
      batch.get(i).id.copyTo(ids, i * Digest.LENGTH);
      pending.put(batch.get(i).id, batch.get(i));
    }
    // stored=1: servers that know it stream objects as they keep them (no decompress, hash or
    // recompress on their side); older ones ignore it and send a plain zstd pack at this level.
    String path =
        prefix + "/objects/pack?zstd=" + options.packLevel() + (ASK_STORED ? "&stored=1" : "");
    HttpConnection.Response r = conn.request("POST", path, ids);
    try (r) {
      int st = r.status();
      if (st == 404) {
        // Some object is missing: ask for each on its own, so each reader gets its own answer.
        r.text();
        for (Fetch f : batch) {
          getOne(conn, f);
        }
        return;
      }
      if (st != 200) {
        checkAuthFor(r, "POST " + path, batch);
        throw new IOException(base + " answered " + st + " to POST " + path + ": " + r.text());
      }
      String type = r.header("Content-Type");
      boolean stored =
          type != null && type.toLowerCase(Locale.ROOT).startsWith(ObjectPack.STORED_TYPE);
      try (ObjectPack.Reader pack =
          stored
              ? ObjectPack.Reader.stored(nonClosing(r.body()))
              : new ObjectPack.Reader(nonClosing(r.body()))) {
        for (ObjectPack.Item it = pack.next(); it != null; it = pack.next()) {
          Fetch f = pending.remove(it.claimedId());
          if (f == null) {
            throw new IOException(
                base
                    + " sent object "
                    + it.claimedId().hex()
                    + " in a pack that did not ask for it");
          }
          if (it.damage() != null) {
            fail(f, damaged(f, it.damage()));
            continue;
          }
          verifyAndComplete(f, it.data());
        }
      } catch (RepositoryException e) {
        // the pack reader's PeerDataException: truncated, corrupt stream, bad framing
        throw new IOException(e.getMessage(), e);
      }
      if (!pending.isEmpty()) {
        throw new IOException(
            base + " sent a pack without " + pending.size() + " of the objects asked for");
      }
    }
  }

  /** The pack reader closes its input; the response is closed (kept alive) by the caller. */
  private static InputStream nonClosing(InputStream in) {
    return new java.io.FilterInputStream(in) {
      @Override
      public void close() {}
    };
  }

  private CorruptObjectException damaged(Fetch f, String why) {
    return new CorruptObjectException(
        "object "
            + f.id.hex()
            + " from "
            + base
            + " is damaged ("
            + why
            + "): the server's copy, or something between, is corrupt; nothing was kept");
  }

  private void verifyAndComplete(Fetch f, byte[] data) {
    Digest got = Digest.of(data);
    if (!got.equals(f.id)) {
      fail(
          f,
          new CorruptObjectException(
              "object "
                  + f.id.hex()
                  + " from "
                  + base
                  + " does not hash to its id (the bytes hash to "
                  + got.hex()
                  + "): the server, or something between, sent wrong bytes; nothing was kept"));
      return;
    }
    succeed(f, data);
  }

  /** A refused token is no transport error: fail at once, without retries. */
  private static final class AuthException extends IOException {
    AuthException(String m) {
      super(m);
    }
  }

  private void checkAuth(HttpConnection.Response r, String what) throws AuthException {
    int st = r.status();
    if (st == 401 || st == 403) {
      String text = r.text();
      throw new AuthException(
          base
              + " refused "
              + what
              + " ("
              + st
              + (text.isEmpty() ? "" : ": " + text)
              + ")"
              + (options.token() == null
                  ? "; set OSFARM_TOKEN to a token of that server"
                  : "; check OSFARM_TOKEN"));
    }
  }

  private void checkAuthFor(HttpConnection.Response r, String what, List<Fetch> batch) {
    try {
      checkAuth(r, what);
    } catch (AuthException e) {
      for (Fetch f : batch) {
        if (!f.done.isDone()) {
          fail(f, e);
        }
      }
    }
  }

  private static void backoff(int failures) {
    try {
      Thread.sleep(Math.min(2_000L, 100L << Math.min(5, failures - 1)));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void closeQuietly(HttpConnection c) {
    try {
      c.close();
    } catch (IOException | RuntimeException ignored) {
      // already broken
    }
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException("the remote source " + base + " is closed");
    }
  }

  /** Stops the workers and fails every fetch still waiting. */
  @Override
  public void close() {
    List<Fetch> pending;
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      pending = new ArrayList<>(fetches.values());
      demandQueue.clear();
      aheadQueue.clear();
      work.signalAll();
    } finally {
      lock.unlock();
    }
    for (HttpConnection c : connections) {
      closeQuietly(c);
    }
    closeQuietly(control);
    for (Fetch f : pending) {
      if (!f.done.isDone()) {
        fail(f, new IOException("the remote source " + base + " was closed"));
      }
    }
    for (Thread t : workers) {
      try {
        t.join(2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
