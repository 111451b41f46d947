package org.osfarm.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.osfarm.core.Digest;
import org.osfarm.core.Progress;
import org.osfarm.core.ProgressListener;

/**
 * Content-Based Transfer of one image file: fetch it from a peer, reading every block it can from
 * local seeds instead.
 *
 * <p>Algorithm (after the CERN paper, with verification): get the file's {@link BlockIndex}; look
 * every block key up in the {@link SeedIndex} of the seeds (and recognise all-zero blocks); ask the
 * peer, in one streamed request, for the blocks found nowhere. The file is assembled in memory, a
 * chunk of {@value #CHUNK_BYTES} bytes at a time, in a window of {@value #WINDOW_BYTES} bytes:
 * local workers read seed blocks into a chunk's buffer (few large positional reads), the network
 * thread reads the peer's blocks into the chunk's second buffer as they arrive, and the side that
 * completes a chunk last hands it to be finished: every group hashed from memory and checked
 * against its SHA-256, then the verified groups written with one write per run. Both sides run at
 * once, so the wall time nears max(s_I/v_d, s_D/v_n) rather than their sum; nothing is read back,
 * and nothing unverified is ever written. A group whose seed blocks turn out wrong (a key
 * collision, a seed changed in place) is fetched again whole; a group made only of the peer's bytes
 * that does not verify means a lying or corrupted peer: the fetch stops.
 *
 * <p>Every 64 MiB written the output is fsynced (writeback overlaps the transfer), and every few
 * seconds the set of verified groups is written to {@code OUT.part.state}; a later fetch of the
 * same content resumes from there. {@code OUT} itself appears (atomic rename) only once every group
 * verified and the file is fsynced.
 */
public final class BlockFetcher {
  /** How to fetch. */
  public record Options(
      int blockSize, List<Path> seeds, SeedIndex seedIndex, Digest expectRoot, int localThreads) {
    public Options {
      BlockIndex.checkBlockSize(blockSize);
      seeds = List.copyOf(seeds);
      localThreads = Math.max(1, localThreads);
    }

    public static Options defaults(List<Path> seeds) {
      return new Options(
          4096,
          seeds,
          new SeedIndex(SeedIndex.defaultDir()),
          null,
          Math.max(1, Runtime.getRuntime().availableProcessors()));
    }
  }

  private static final long NET = -1;
  private static final long ZERO = -2;
  private static final long DONE = -3;
  private static final long STATE_EVERY_NANOS = 3_000_000_000L;

  /** Bytes per unit of local work (at least one group): few, large reads and writes. */
  private static final int CHUNK_BYTES = 4 << 20;

  /** Peer or zero blocks a seed read may span rather than split in two (read, then skipped). */
  private static final int MAX_GAP = 16;

  private static final byte[] ZEROS = new byte[1 << 20];

  /**
   * SHA-256 input per update call. The JIT replaces the compression loop by the CPU's SHA
   * instructions only once the caller is hot; more, smaller calls get there sooner than a few 256
   * KiB ones (measured: the first 16 MiB hash in half the time), at no cost afterwards.
   */
  private static final int HASH_PIECE = 64 * 1024;

  /** At most this much is hashed to warm SHA-256 up (see {@code warmUpSha256}). */
  private static final long WARM_UP_BYTES = 64L << 20;

  /**
   * Bytes written between two fsyncs of the output during the transfer ({@code
   * OSFARM_FETCH_FLUSH_MB}): the kernel would otherwise keep them all dirty until the final fsync,
   * which then waits for the whole file; 0 turns it off.
   */
  private static final long FLUSH_BYTES = envLong("OSFARM_FETCH_FLUSH_MB", 64) << 20;

  /**
   * Bytes of chunks assembled at once: the local side and the network side may be this far apart
   * (at least two chunks; the window's memory is two buffers of a chunk's size per chunk).
   */
  private static final int WINDOW_BYTES = 32 << 20;

  /**
   * One chunk being assembled: the local side reads seed blocks into {@code buf}, the network side
   * reads the peer's blocks into {@code net} at the same offsets (seed reads may cover those
   * offsets in {@code buf}, so the two never share bytes); the side that brings {@code parts} to 0
   * finishes the chunk.
   */
  private static final class Slot {
    int chunk = -1; // guarded by the window's lock
    ByteBuffer buf;
    byte[] net;
    final AtomicInteger parts = new AtomicInteger();
  }

  private static long envLong(String name, long dflt) {
    try {
      String v = System.getenv(name);
      return v == null || v.isBlank() ? dflt : Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return dflt;
    }
  }

  /**
   * libcrypto hashes a direct buffer where it lies; the JDK's digest would copy it through a small
   * array, so it gets one group's copy on the heap instead.
   */
  private static final boolean NATIVE_SHA = Digest.isNativeSha256();

  /** With OSFARM_FETCH_TRACE set, phase times go to stderr. */
  private static final boolean TRACE = System.getenv("OSFARM_FETCH_TRACE") != null;

  private BlockFetcher() {}

  /**
   * The URL of an image's protocol routes: {@code http://host:port/NAME} and {@code
   * http://host:port/v1/images/NAME} both name image NAME of the server at host:port.
   */
  static URI imageUri(URI url) {
    String s = url.toString();
    while (s.endsWith("/")) {
      s = s.substring(0, s.length() - 1);
    }
    if (s.contains("/v1/images/")) {
      return URI.create(s);
    }
    int i = s.lastIndexOf('/');
    if (i < "http://x".length()) {
      throw new IllegalArgumentException("give the image as URL/NAME, not " + url);
    }
    return URI.create(s.substring(0, i) + "/v1/images" + s.substring(i));
  }

  /**
   * Fetches the image at {@code url} into {@code out}.
   *
   * @throws PeerDataException if the peer's data does not verify (verified groups are kept in
   *     {@code OUT.part} for a resume; {@code OUT} is not created)
   */
  public static FetchResult fetch(URI url, Path out, Options o, ProgressListener l)
      throws IOException {
    return new Run(imageUri(url), out, o, l).run();
  }

  /** The seeds' indexes and the lookup over them. */
  private record SeedsLoaded(List<SeedIndex.Entry> seeds, SeedIndex.Lookup lookup) {}

  private static final class Run {
    final URI base;
    final Path out;
    final Path part;
    final Path state;
    final Options o;
    final ProgressListener l;
    HttpClient http; // only for https; plain http goes through PlainHttp
    final AtomicLong wire = new AtomicLong();
    final AtomicLong reused = new AtomicLong();
    final AtomicLong zeros = new AtomicLong();
    final AtomicLong fetched = new AtomicLong();
    final AtomicLong written = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();
    final AtomicLong readNanos = new AtomicLong();
    final AtomicLong hashNanos = new AtomicLong();
    final AtomicLong writeNanos = new AtomicLong();
    BlockIndex idx;
    int bs;
    long[] plan;
    BitSet done;
    final Object doneLock = new Object();
    final List<Integer> refetch = new ArrayList<>();
    FileChannel outCh;
    FileChannel[] seedCh;
    boolean fresh;

    /** SHA-256 of a group of zeros; computed by the warm-up thread first. */
    final java.util.concurrent.CompletableFuture<byte[]> zeroGroupHash =
        new java.util.concurrent.CompletableFuture<>();

    volatile long lastState = System.nanoTime();
    long netWaitNanos;
    long traceStart;

    // ---- the window of chunks being assembled (see Slot) ----
    int chunkBlocks;
    int chunks;
    boolean[] chunkLocal; // the chunk has seed or zero blocks to place
    boolean[] chunkNet; // the chunk has peer blocks to place
    boolean[] completed; // guarded by windowLock
    int lo; // the first chunk not completed; guarded by windowLock
    Slot[] slots; // slot of chunk c: c % slots.length
    final Object windowLock = new Object();

    Run(URI base, Path out, Options o, ProgressListener l) {
      this.base = base;
      this.out = out;
      this.part = out.resolveSibling(out.getFileName() + ".part");
      this.state = out.resolveSibling(out.getFileName() + ".part.state");
      this.o = o;
      this.l = l;
    }

    FetchResult run() throws IOException {
      long t0 = System.nanoTime();
      traceStart = t0;
      bs = o.blockSize();
      // The seeds' persistent index loads while the peer's index is in flight.
      AtomicReference<Object> seedsOrError = new AtomicReference<>();
      Thread seedLoader =
          Thread.ofPlatform()
              .name("fetch-seeds")
              .start(
                  () -> {
                    try {
                      List<SeedIndex.Entry> es = new ArrayList<>();
                      for (Path s : SeedIndex.expand(o.seeds())) {
                        if (!s.toAbsolutePath()
                            .normalize()
                            .equals(part.toAbsolutePath().normalize())) {
                          es.add(o.seedIndex().get(s, bs));
                        }
                      }
                      seedsOrError.set(
                          new SeedsLoaded(es, new SeedIndex.Lookup(es))); // off the main thread
                    } catch (Throwable e) {
                      seedsOrError.set(e);
                    }
                  });
      java.util.concurrent.atomic.AtomicBoolean started =
          new java.util.concurrent.atomic.AtomicBoolean();
      Thread.ofPlatform().name("fetch-warm").daemon().start(() -> warmUpSha256(started));
      byte[] ib;
      try {
        ib = get(URI.create(base + "/index?bs=" + bs));
      } finally {
        join(List.of(seedLoader));
      }
      trace("index", t0);
      idx = BlockIndex.decode(ib);
      if (o.expectRoot() != null && !idx.root().equals(o.expectRoot())) {
        throw new PeerDataException(
            "peer offers content " + idx.root().hex() + ", expected " + o.expectRoot().hex());
      }
      done = loadState();
      long resumed = 0;
      for (int g = done.nextSetBit(0); g >= 0; g = done.nextSetBit(g + 1)) {
        resumed += groupLength(g);
      }
      fresh = done.isEmpty();
      Object so = seedsOrError.get();
      if (so instanceof IOException e) {
        throw e;
      } else if (so instanceof RuntimeException e) {
        throw e;
      } else if (so instanceof Error e) {
        throw e;
      }
      List<SeedIndex.Entry> seeds = ((SeedsLoaded) so).seeds();
      SeedIndex.Lookup lookup = ((SeedsLoaded) so).lookup();
      trace("seeds", t0);
      seedCh = new FileChannel[seeds.size()];
      try {
        for (int i = 0; i < seeds.size(); i++) {
          seedCh[i] = FileChannel.open(seeds.get(i).file(), StandardOpenOption.READ);
        }
        outCh =
            FileChannel.open(
                part, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        if (fresh) {
          outCh.truncate(0);
        }
        if (idx.size() > 0 && outCh.size() != idx.size()) {
          outCh.write(ByteBuffer.wrap(new byte[1]), idx.size() - 1); // sparse: holes are zeros
        }
        int n = idx.blocks();
        plan = new long[n];
        long zeroKey = BlockIndex.wireKey(sha256(new byte[bs], bs));

        int[] missing = new int[n];
        int nm = 0;
        for (int b = 0; b < n; b++) {
          int g = b / BlockIndex.GROUP_BLOCKS;
          if (done.get(g)) {
            plan[b] = DONE;
            continue;
          }
          long k = idx.key(b);
          long v = idx.blockLength(b) == bs ? lookup.get(k) : -1;
          if (v >= 0) {
            plan[b] = v;
          } else if (k == zeroKey && idx.blockLength(b) == bs) {
            plan[b] = ZERO;
          } else {
            plan[b] = NET;
            missing[nm++] = b;
          }
        }
        chunkBlocks =
            Math.max(1, CHUNK_BYTES / (BlockIndex.GROUP_BLOCKS * bs)) * BlockIndex.GROUP_BLOCKS;
        chunks = (n + chunkBlocks - 1) / chunkBlocks;
        slots = new Slot[Math.max(2, WINDOW_BYTES / (chunkBlocks * bs))];
        trace("plan", t0);
        started.set(true);
        long[] times = pipeline(missing, nm, t0);
        rethrow();
        // Second round: groups whose seed blocks did not verify, all their blocks from the peer.
        int refetched = refetch.size();
        if (!refetch.isEmpty()) {
          BitSet again = new BitSet();
          refetch.forEach(again::set);
          refetch.clear();
          int na = 0;
          for (int b = 0; b < n; b++) {
            if (again.get(b / BlockIndex.GROUP_BLOCKS)) {
              plan[b] = NET;
              missing[na++] = b;
            } else {
              plan[b] = DONE; // verified and written in the first round
            }
          }
          pipeline(missing, na, t0);
          rethrow();
        }
        synchronized (doneLock) {
          if (done.cardinality() != idx.groups()) {
            throw new PeerDataException(
                (idx.groups() - done.cardinality()) + " groups were never completed");
          }
        }
        outCh.force(true);
        outCh.close();
        trace("fsync", t0);
        Files.move(part, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(state);
        try (FileChannel d =
            FileChannel.open(out.toAbsolutePath().getParent(), StandardOpenOption.READ)) {
          d.force(true); // the rename is durable
        }
        trace("rename", t0);
        return new FetchResult(
            idx.root(),
            idx.size(),
            reused.get(),
            zeros.get(),
            resumed,
            fetched.get(),
            wire.get(),
            (System.nanoTime() - t0) / 1e9,
            times[0] / 1e9,
            times[1] / 1e9,
            refetched);
      } catch (IOException | RuntimeException e) {
        saveStateQuietly();
        throw e;
      } finally {
        if (outCh != null && outCh.isOpen()) {
          outCh.close();
        }
        for (FileChannel c : seedCh) {
          if (c != null) {
            c.close();
          }
        }
      }
    }

    /**
     * One pass over the file by the plan: the network thread, the local workers and the flusher at
     * once, through the window of chunks. Returns the wall time of the local side and of the
     * network side (nanoseconds).
     */
    private long[] pipeline(int[] missing, int nm, long t0) {
      chunkLocal = new boolean[chunks];
      chunkNet = new boolean[chunks];
      for (int b = 0; b < plan.length; b++) {
        if (plan[b] == NET) {
          chunkNet[b / chunkBlocks] = true;
        } else if (plan[b] != DONE) {
          chunkLocal[b / chunkBlocks] = true;
        }
      }
      synchronized (windowLock) {
        completed = new boolean[chunks];
        for (int c = 0; c < chunks; c++) {
          completed[c] = !chunkLocal[c] && !chunkNet[c];
        }
        lo = 0;
        advance();
        for (Slot s : slots) {
          if (s != null) {
            s.chunk = -1;
          }
        }
      }
      long[] times = new long[2];
      Thread net =
          Thread.ofPlatform()
              .name("fetch-net")
              .start(
                  () ->
                      guard(
                          () -> {
                            long s = System.nanoTime();
                            receive(missing, nm);
                            times[1] = System.nanoTime() - s;
                          }));
      long ls = System.nanoTime();
      AtomicInteger cursor = new AtomicInteger();
      List<Thread> workers = new ArrayList<>();
      for (int t = 0; t < o.localThreads(); t++) {
        workers.add(
            Thread.ofPlatform().name("fetch-local-" + t).start(() -> guard(() -> local(cursor))));
      }
      java.util.concurrent.atomic.AtomicBoolean allDone =
          new java.util.concurrent.atomic.AtomicBoolean();
      Thread flusher =
          Thread.ofPlatform().name("fetch-flush").start(() -> guard(() -> flush(allDone)));
      join(workers);
      times[0] = System.nanoTime() - ls;
      trace("local", t0);
      if (TRACE) {
        System.err.printf(
            "fetch: worker time: read %.3f s, hash %.3f s, write %.3f s%n",
            readNanos.get() / 1e9, hashNanos.get() / 1e9, writeNanos.get() / 1e9);
      }
      join(List.of(net));
      allDone.set(true);
      java.util.concurrent.locks.LockSupport.unpark(flusher); // no interrupt: it would close outCh
      join(List.of(flusher));
      trace("net", t0);
      return times;
    }

    interface Work {
      void run() throws IOException, InterruptedException;
    }

    /**
     * Hashes a group of zeros (the hash of an all-zero group), then more zeros, the way {@link
     * Finisher} hashes groups, while the indexes load (until the transfer starts, at most {@value
     * #WARM_UP_BYTES} bytes). SHA-256 runs at about 1.7 GB/s only once the JIT has compiled it to
     * the CPU's SHA instructions; before that, it runs at a few percent of that speed, and at
     * start-up the compiler's queue is long. Measured: the compiled form arrived about 0.4 s into
     * the run, after the first groups were hashed at the slow speed; with this, before the first
     * chunk. With libcrypto's SHA-256 ({@link Digest#isNativeSha256}) only the zero group is
     * hashed.
     */
    private void warmUpSha256(java.util.concurrent.atomic.AtomicBoolean started) {
      MessageDigest md = Digest.newMessageDigest();
      int groupBytes = BlockIndex.GROUP_BLOCKS * bs;
      byte[] b = new byte[Math.min(HASH_PIECE, groupBytes)];
      byte[] h = new byte[32];
      try {
        boolean warm = !Digest.isNativeSha256(); // libcrypto needs no warming up
        for (long n = 0; n == 0 || warm && n < WARM_UP_BYTES && !started.get(); n += groupBytes) {
          for (int x = 0; x < groupBytes; x += b.length) {
            md.update(b, 0, b.length);
          }
          md.digest(h, 0, 32);
          if (n == 0) {
            zeroGroupHash.complete(h.clone());
          }
        }
      } catch (java.security.DigestException | RuntimeException e) {
        zeroGroupHash.completeExceptionally(e);
      }
    }

    private void guard(Work w) {
      try {
        if (failure.get() == null) {
          w.run();
        }
      } catch (Throwable e) {
        failure.compareAndSet(null, e);
        synchronized (windowLock) {
          windowLock.notifyAll(); // threads waiting for the window give up
        }
      }
    }

    private void rethrow() throws IOException {
      Throwable e = failure.get();
      if (e == null) {
        return;
      }
      if (e instanceof IOException io) {
        throw io;
      }
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new IOException(e);
    }

    private static void join(List<Thread> ts) {
      for (Thread t : ts) {
        try {
          t.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new TransferException("interrupted", e);
        }
      }
    }

    private int groupLength(int g) {
      long off = (long) g * BlockIndex.GROUP_BLOCKS * bs;
      return (int) Math.min((long) BlockIndex.GROUP_BLOCKS * bs, idx.size() - off);
    }

    /**
     * The slot of chunk {@code c}, once {@code c} is inside the window (the first chunk not yet
     * completed and the chunks after it that fit the window; both sides work in file order, so the
     * first chunk is always one they can finish); null when the fetch failed meanwhile.
     */
    private Slot acquire(int c) throws InterruptedException {
      synchronized (windowLock) {
        while (c >= lo + slots.length) {
          if (failure.get() != null) {
            return null;
          }
          windowLock.wait();
        }
        if (failure.get() != null) {
          return null;
        }
        Slot s = slots[c % slots.length];
        if (s == null) {
          s = slots[c % slots.length] = new Slot();
        }
        if (s.chunk != c) {
          s.chunk = c;
          s.parts.set((chunkLocal[c] ? 1 : 0) + (chunkNet[c] ? 1 : 0));
          if (s.buf == null) {
            s.buf = ByteBuffer.allocateDirect(chunkBlocks * bs);
          }
          if (chunkNet[c] && s.net == null) {
            s.net = new byte[chunkBlocks * bs];
          }
        }
        return s;
      }
    }

    /** Called with the window's lock: moves the window past the completed chunks. */
    private void advance() {
      while (lo < chunks && completed[lo]) {
        lo++;
      }
      windowLock.notifyAll();
    }

    /**
     * A local worker: takes chunks in file order; reads their seed blocks into the chunk's buffer
     * with as few large reads as the plan allows (a run of blocks consecutive in one seed is one
     * read, gaps of a few peer or zero blocks included: the peer's bytes are placed over them when
     * the chunk is finished). The side that completes a chunk last finishes it.
     */
    private void local(AtomicInteger cursor) throws IOException, InterruptedException {
      Finisher f = new Finisher();
      for (int c = cursor.getAndIncrement(); c < chunks; c = cursor.getAndIncrement()) {
        if (!chunkLocal[c]) {
          continue;
        }
        Slot s = acquire(c);
        if (s == null) {
          return;
        }
        int b0 = c * chunkBlocks;
        int b1 = Math.min(plan.length, b0 + chunkBlocks);
        long tr = System.nanoTime();
        long nLocal = 0;
        for (int i = b0; i < b1; ) {
          long p = plan[i];
          if (p < 0) {
            i++;
            continue;
          }
          int last = i;
          for (int j = i + 1; j < b1 && j - last <= MAX_GAP; j++) {
            long q = plan[j];
            if (q >= 0) {
              if (q != p + (j - i)) {
                break;
              }
              last = j;
            }
          }
          for (int j = i; j <= last; j++) {
            nLocal += plan[j] >= 0 ? 1 : 0;
          }
          int seed = (int) (p >>> 32);
          long sb = (p & 0xffffffffL) * bs;
          ByteBuffer dst = s.buf.slice((i - b0) * bs, (last - i + 1) * bs);
          while (dst.hasRemaining()) {
            if (seedCh[seed].read(dst, sb + dst.position()) < 0) {
              break; // the seed shrank: its groups will not verify and are refetched
            }
          }
          i = last + 1;
        }
        reused.addAndGet(nLocal * bs);
        readNanos.addAndGet(System.nanoTime() - tr);
        if (s.parts.decrementAndGet() == 0) {
          f.finish(c, s);
        }
        progress();
      }
    }

    /**
     * The network thread: requests the missing blocks and reads them, as they arrive, into the
     * chunks' slots. A chunk it completes is finished by another thread, so hashing and writing
     * never stall the socket.
     */
    private void receive(int[] missing, int nm) throws IOException, InterruptedException {
      if (nm == 0) {
        return;
      }
      byte[] req = BlockRanges.encode(missing, nm);
      wire.addAndGet(req.length);
      InputStream body = post(URI.create(base + "/blocks?bs=" + bs), req);
      trace("answer", traceStart);
      int[] netLeft = new int[chunks];
      for (int k = 0; k < nm; k++) {
        netLeft[missing[k] / chunkBlocks]++;
      }
      // Chunks the stream completes are finished (hashed, written) by other threads, one per core,
      // so hashing never stalls the socket.
      java.util.concurrent.LinkedBlockingQueue<Integer> complete =
          new java.util.concurrent.LinkedBlockingQueue<>();
      List<Thread> finishers = new ArrayList<>();
      for (int t = 0; t < o.localThreads(); t++) {
        finishers.add(
            Thread.ofPlatform()
                .name("fetch-verify-" + t)
                .start(
                    () ->
                        guard(
                            () -> {
                              Finisher f = new Finisher();
                              for (int c = complete.take(); c >= 0; c = complete.take()) {
                                f.finish(c, slots[c % slots.length]);
                              }
                            })));
      }
      try (InputStream in = body) {
        int i = 0;
        while (i < nm) {
          if (failure.get() != null) {
            return;
          }
          int c = missing[i] / chunkBlocks;
          long tw0 = System.nanoTime();
          Slot s = acquire(c);
          netWaitNanos += System.nanoTime() - tw0;
          if (s == null) {
            return;
          }
          int j = i + 1;
          while (j < nm && missing[j] == missing[j - 1] + 1 && missing[j] / chunkBlocks == c) {
            j++;
          }
          long off = (long) missing[i] * bs;
          int len = (int) Math.min((long) (j - i) * bs, idx.size() - off);
          int got;
          try {
            got = in.readNBytes(s.net, (missing[i] - c * chunkBlocks) * bs, len);
          } catch (IOException e) {
            throw new PeerDataException(
                "block stream from " + base + " broke off after " + fetched.get() + " bytes: " + e);
          }
          wire.addAndGet(got);
          if (got < len) {
            throw new PeerDataException(
                "block stream from " + base + " broke off after " + fetched.get() + " bytes");
          }
          fetched.addAndGet(len);
          netLeft[c] -= j - i;
          if (netLeft[c] == 0 && s.parts.decrementAndGet() == 0) {
            complete.add(c);
          }
          i = j;
          progress();
        }
        if (in.read() >= 0) {
          throw new PeerDataException("block stream from " + base + " is longer than asked for");
        }
        if (TRACE) {
          System.err.printf("fetch: net waited %.3f s for the window%n", netWaitNanos / 1e9);
        }
      } finally {
        for (int t = 0; t < finishers.size(); t++) {
          complete.add(-1);
        }
        join(finishers);
      }
    }

    /**
     * Finishes a chunk whose blocks are all in its slot: places the peer's and the zero blocks,
     * verifies every group from memory, writes the verified groups (each run of blocks with one
     * write; zero blocks of a fresh, sparse output are not written) and frees the slot. A group
     * that does not verify is never written: with seed blocks in it, it is fetched again whole;
     * made of the peer's blocks alone, it means a corrupted or lying peer and the fetch stops.
     */
    private final class Finisher {
      final MessageDigest md = Digest.newMessageDigest();
      final byte[] arr = NATIVE_SHA ? null : new byte[BlockIndex.GROUP_BLOCKS * bs];
      final byte[] h = new byte[32];
      final boolean[] ok = new boolean[chunkBlocks / BlockIndex.GROUP_BLOCKS];

      void finish(int c, Slot s) throws IOException {
        final int gb = BlockIndex.GROUP_BLOCKS;
        int b0 = c * chunkBlocks;
        int b1 = Math.min(plan.length, b0 + chunkBlocks);
        long th = System.nanoTime();
        for (int i = b0; i < b1; ) {
          if (plan[i] == NET) {
            int j = i + 1;
            while (j < b1 && plan[j] == NET) {
              j++;
            }
            int pos = (i - b0) * bs;
            s.buf.put(
                pos, s.net, pos, (int) Math.min((long) (j - i) * bs, idx.size() - (long) i * bs));
            i = j;
          } else {
            if (plan[i] == ZERO) {
              s.buf.put((i - b0) * bs, ZEROS, 0, bs);
              zeros.addAndGet(bs);
            }
            i++;
          }
        }
        int g0 = b0 / gb;
        int g1 = (b1 + gb - 1) / gb;
        for (int g = g0; g < g1; g++) {
          int gs = g * gb;
          int ge = Math.min(b1, gs + gb);
          ok[g - g0] = false;
          if (plan[gs] == DONE) {
            continue; // verified by an earlier, interrupted fetch or round
          }
          boolean allZero = true;
          boolean hasLocal = false;
          for (int i = gs; i < ge; i++) {
            allZero &= plan[i] == ZERO;
            hasLocal |= plan[i] != NET;
          }
          if (allZero && ge - gs == gb) {
            ok[g - g0] = idx.groupMatches(g, zeroGroupHash.join()); // exactly zeros: a known hash
          } else {
            int glen = groupLength(g);
            if (NATIVE_SHA) {
              md.update(s.buf.slice((gs - b0) * bs, glen)); // hashed where it lies, no copy
            } else {
              s.buf.get((gs - b0) * bs, arr, 0, glen);
              for (int x = 0; x < glen; x += HASH_PIECE) {
                md.update(arr, x, Math.min(HASH_PIECE, glen - x)); // see HASH_PIECE
              }
            }
            try {
              md.digest(h, 0, 32);
            } catch (java.security.DigestException e) {
              throw new IllegalStateException(e);
            }
            ok[g - g0] = idx.groupMatches(g, h);
          }
          if (!ok[g - g0]) {
            if (!hasLocal) {
              throw new PeerDataException(
                  "the peer's blocks of group "
                      + g
                      + " (bytes "
                      + (long) g * gb * bs
                      + "..) do not match its index: corrupted or lying peer; "
                      + "nothing unverified is kept");
            }
            synchronized (doneLock) {
              refetch.add(g);
            }
          }
        }
        long tw = System.nanoTime();
        hashNanos.addAndGet(tw - th);
        for (int i = b0; i < b1; ) {
          if (!writes(i, g0)) {
            i++;
            continue;
          }
          int j = i + 1;
          while (j < b1 && writes(j, g0)) {
            j++;
          }
          int len = (int) Math.min((long) (j - i) * bs, idx.size() - (long) i * bs);
          ByteBuffer w = s.buf.slice((i - b0) * bs, len);
          long pos = (long) i * bs;
          while (w.hasRemaining()) {
            pos += outCh.write(w, pos);
          }
          written.addAndGet(len);
          i = j;
        }
        writeNanos.addAndGet(System.nanoTime() - tw);
        synchronized (doneLock) {
          for (int g = g0; g < g1; g++) {
            if (ok[g - g0]) {
              done.set(g);
            }
          }
        }
        synchronized (windowLock) {
          completed[c] = true;
          advance();
        }
      }

      private boolean writes(int b, int g0) {
        long p = plan[b];
        return ok[b / BlockIndex.GROUP_BLOCKS - g0] && p != DONE && (p != ZERO || !fresh);
      }
    }

    private void progress() {
      l.progress(
          new Progress(
              "fetching",
              0,
              reused.get() + zeros.get() + fetched.get(),
              idx.size(),
              fetched.get()));
    }

    private void trace(String phase, long t0) {
      if (TRACE) {
        System.err.printf("fetch: %-7s %.3f s%n", phase, (System.nanoTime() - t0) / 1e9);
      }
    }

    private HttpClient client() {
      synchronized (this) {
        if (http == null) {
          http = RemoteRepository.newClient();
        }
        return http;
      }
    }

    /** POSTs {@code body}; returns the answer's body stream once the status says 200. */
    private InputStream post(URI u, byte[] body) throws IOException {
      if (PlainHttp.handles(u)) {
        PlainHttp.Response r;
        try {
          r = PlainHttp.send(u, "POST", body, (int) Duration.ofHours(1).toMillis());
        } catch (java.net.ConnectException e) {
          throw new TransferException("cannot connect to " + base, e);
        }
        if (r.status() != 200) {
          String msg = r.text();
          if (r.status() == 404) {
            throw new org.osfarm.core.NotFoundException("peer: " + msg + " (POST " + u + ")");
          }
          throw new TransferException("peer answered " + r.status() + " to POST " + u + ": " + msg);
        }
        return r.body();
      }
      HttpResponse<InputStream> r;
      try {
        r =
            client()
                .send(
                    HttpRequest.newBuilder(u)
                        .timeout(Duration.ofHours(6))
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                        .build(),
                    HttpResponse.BodyHandlers.ofInputStream());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new TransferException("interrupted", e);
      } catch (java.net.ConnectException e) {
        throw new TransferException("cannot connect to " + base, e);
      }
      RemoteRepository.check(r);
      return r.body();
    }

    private byte[] get(URI u) {
      int status;
      byte[] body;
      try {
        if (PlainHttp.handles(u)) {
          try (PlainHttp.Response r =
              PlainHttp.send(u, "GET", null, (int) Duration.ofMinutes(30).toMillis())) {
            status = r.status();
            body = r.body().readAllBytes();
            if (r.length() >= 0 && body.length != r.length()) {
              throw new IOException("answer broke off after " + body.length + " bytes");
            }
          }
        } else {
          HttpResponse<byte[]> r =
              client()
                  .send(
                      HttpRequest.newBuilder(u).timeout(Duration.ofMinutes(30)).build(),
                      HttpResponse.BodyHandlers.ofByteArray());
          status = r.statusCode();
          body = r.body();
        }
      } catch (java.net.ConnectException e) {
        throw new TransferException("cannot connect to " + u, e);
      } catch (IOException e) {
        throw new TransferException("GET " + u + " failed: " + e, e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new TransferException("interrupted", e);
      }
      wire.addAndGet(body.length);
      if (status == 404) {
        throw new org.osfarm.core.NotFoundException(
            "peer: " + new String(body, StandardCharsets.UTF_8).trim());
      }
      if (status != 200) {
        throw new TransferException(
            "peer answered "
                + status
                + " to "
                + u
                + ": "
                + new String(body, StandardCharsets.UTF_8).trim());
      }
      return body;
    }

    // ---- resume state: "OSFR 1", root (32), group count, bitmap of verified groups ----

    private BitSet loadState() {
      try {
        if (!Files.exists(part) || !Files.exists(state) || Files.size(part) != idx.size()) {
          return new BitSet();
        }
        byte[] b = Files.readAllBytes(state);
        ByteBuffer bb = ByteBuffer.wrap(b);
        if (b.length < 40 || bb.getInt() != 0x4f534652 || bb.getInt() != idx.groups()) {
          return new BitSet();
        }
        byte[] root = new byte[32];
        bb.get(root);
        if (!Digest.fromBytes(root, 0).equals(idx.root())) {
          return new BitSet();
        }
        byte[] bits = new byte[bb.remaining()];
        bb.get(bits);
        return BitSet.valueOf(bits);
      } catch (IOException | RuntimeException e) {
        return new BitSet();
      }
    }

    /**
     * The flusher: fsyncs the output whenever FLUSH_BYTES more bytes were written, so writeback
     * overlaps the transfer and the final fsync has little left; every few seconds it records the
     * verified groups for a resume. Neither blocks the network thread.
     */
    private void flush(java.util.concurrent.atomic.AtomicBoolean allDone) throws IOException {
      long flushed = 0;
      while (!allDone.get()) {
        java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
        if (failure.get() != null) {
          return;
        }
        long w = written.get();
        if (FLUSH_BYTES > 0 && w - flushed >= FLUSH_BYTES && !allDone.get()) {
          outCh.force(false);
          flushed = w;
        }
        if (System.nanoTime() - lastState > STATE_EVERY_NANOS) {
          lastState = System.nanoTime();
          saveState();
        }
      }
    }

    private void saveState() throws IOException {
      byte[] bits;
      synchronized (doneLock) {
        bits = done.toByteArray();
      }
      outCh.force(false); // groups in the bitmap are on disk before the bitmap says so
      ByteBuffer bb = ByteBuffer.allocate(40 + bits.length);
      bb.putInt(0x4f534652).putInt(idx.groups()).put(idx.root().toBytes()).put(bits);
      Path tmp = state.resolveSibling(state.getFileName() + ".tmp");
      Files.write(tmp, bb.array());
      Files.move(tmp, state, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private void saveStateQuietly() {
      try {
        if (outCh != null && outCh.isOpen() && idx != null && done != null) {
          saveState();
        }
      } catch (IOException | RuntimeException ignored) {
        // resume is best effort; the fetch error is what matters
      }
    }
  }

  static byte[] sha256(byte[] b, int len) {
    MessageDigest md = Digest.newMessageDigest();
    md.update(b, 0, len);
    return md.digest();
  }

  static UncheckedIOException unchecked(IOException e) {
    return new UncheckedIOException(e);
  }
}
