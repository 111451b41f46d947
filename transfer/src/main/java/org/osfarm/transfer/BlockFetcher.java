package org.osfarm.transfer;

import java.io.EOFException;
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
import java.util.concurrent.atomic.AtomicIntegerArray;
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
 * peer, in one streamed request, for the blocks found nowhere. Two kinds of threads work at once
 * into {@code OUT.part}: local workers copy seed blocks group by group (positional reads and
 * writes), one network thread writes the incoming blocks. The last of them to finish a group
 * verifies its SHA-256 (a fully local group straight from the worker's buffer). So the wall time
 * nears max(s_I/v_d, s_D/v_n) rather than their sum. A group whose seed blocks turn out wrong (a
 * key collision, a seed changed in place) is fetched again whole; a group made only of the peer's
 * bytes that does not verify means a lying or corrupted peer: the fetch stops.
 *
 * <p>Every few seconds the output is fsynced and the set of verified groups written to {@code
 * OUT.part.state}; a later fetch of the same content resumes from there. {@code OUT} itself appears
 * (atomic rename) only once every group verified and the file is fsynced.
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

  /**
   * How often the output is flushed to disk while local workers copy ({@code
   * OSFARM_FETCH_FLUSH_MS}; default 0: only once, when they are done and blocks still stream in).
   * Measured here: flushing every 100 ms made the workers' writes wait on writeback about as much
   * as it saved from the final fsync (about 0.1 s for 512 MiB on this disk).
   */
  private static final long FLUSH_EVERY_MILLIS = envLong("OSFARM_FETCH_FLUSH_MS", 0);

  private static long envLong(String name, long dflt) {
    try {
      String v = System.getenv(name);
      return v == null || v.isBlank() ? dflt : Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return dflt;
    }
  }

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
    AtomicIntegerArray pending;
    FileChannel outCh;
    FileChannel[] seedCh;
    boolean fresh;
    byte[] zeroGroupHash;
    volatile long lastState = System.nanoTime();

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
                      seedsOrError.set(es);
                    } catch (Throwable e) {
                      seedsOrError.set(e);
                    }
                  });
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
      @SuppressWarnings("unchecked")
      List<SeedIndex.Entry> seeds = (List<SeedIndex.Entry>) so;
      SeedIndex.Lookup lookup = new SeedIndex.Lookup(seeds);
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
        zeroGroupHash =
            sha256(new byte[BlockIndex.GROUP_BLOCKS * bs], BlockIndex.GROUP_BLOCKS * bs);
        int[] missing = new int[n];
        int nm = 0;
        pending = new AtomicIntegerArray(idx.groups());
        int[] netLeft = new int[idx.groups()];
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
            netLeft[g]++;
          }
        }
        for (int g = 0; g < idx.groups(); g++) {
          pending.set(g, done.get(g) ? 0 : 1 + (netLeft[g] > 0 ? 1 : 0));
        }
        // Both sides at once: the network thread and the local workers.
        long[] netTime = new long[1];
        long[] localTime = new long[1];
        int[] missingF = missing;
        int nmF = nm;
        Thread net =
            Thread.ofPlatform()
                .name("fetch-net")
                .start(
                    () ->
                        guard(
                            () -> {
                              long s = System.nanoTime();
                              receive(missingF, nmF, netLeft);
                              netTime[0] = System.nanoTime() - s;
                            }));
        long ls = System.nanoTime();
        AtomicInteger cursor = new AtomicInteger();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < o.localThreads(); t++) {
          workers.add(
              Thread.ofPlatform().name("fetch-local-" + t).start(() -> guard(() -> local(cursor))));
        }
        // Writeback overlaps the copying: the local workers' pages go to disk while they and the
        // network thread still work (the page cache would otherwise hold them all until the final
        // fsync, which then waits for the whole file).
        java.util.concurrent.atomic.AtomicBoolean localDone =
            new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean netDone =
            new java.util.concurrent.atomic.AtomicBoolean();
        Thread flusher =
            Thread.ofPlatform()
                .name("fetch-flush")
                .start(() -> guard(() -> flush(localDone, netDone)));
        join(workers);
        localDone.set(true);
        java.util.concurrent.locks.LockSupport.unpark(flusher);
        localTime[0] = System.nanoTime() - ls;
        trace("local", t0);
        if (TRACE) {
          System.err.printf(
              "fetch: worker time: read %.3f s, hash %.3f s, write %.3f s%n",
              readNanos.get() / 1e9, hashNanos.get() / 1e9, writeNanos.get() / 1e9);
        }
        join(List.of(net));
        netDone.set(true);
        java.util.concurrent.locks.LockSupport.unpark(
            flusher); // no interrupt: it would close outCh
        join(List.of(flusher));
        trace("net", t0);
        rethrow();
        // Second round: groups whose seed blocks did not verify, all their blocks from the peer.
        int refetched = refetch.size();
        if (!refetch.isEmpty()) {
          int[] again = new int[refetch.size() * BlockIndex.GROUP_BLOCKS];
          int na = 0;
          java.util.Arrays.fill(netLeft, 0);
          for (int g : refetch.stream().sorted().toList()) {
            for (int b = g * BlockIndex.GROUP_BLOCKS;
                b < Math.min(n, (g + 1) * BlockIndex.GROUP_BLOCKS);
                b++) {
              plan[b] = NET;
              again[na++] = b;
              netLeft[g]++;
            }
            pending.set(g, 1);
          }
          refetch.clear();
          receive(again, na, netLeft);
          rethrow();
          if (!refetch.isEmpty()) {
            throw new PeerDataException(
                "group " + refetch.get(0) + " does not verify even when fetched whole: lying peer");
          }
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
            localTime[0] / 1e9,
            netTime[0] / 1e9,
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

    interface Work {
      void run() throws IOException, InterruptedException;
    }

    private void guard(Work w) {
      try {
        if (failure.get() == null) {
          w.run();
        }
      } catch (Throwable e) {
        failure.compareAndSet(null, e);
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
     * A local worker: takes chunks of groups (about {@value #CHUNK_BYTES} bytes) in order; reads
     * their seed blocks with as few large reads as the plan allows (a run of blocks consecutive in
     * one seed is one read, gaps of a few peer blocks included), verifies each fully local group
     * from the buffer it was read into, and writes the chunk's local runs with as few writes.
     * Nothing a worker wrote is read back, except to verify a group that also holds peer blocks.
     */
    private void local(AtomicInteger cursor) throws IOException {
      final int gb = BlockIndex.GROUP_BLOCKS;
      final int chunkGroups = Math.max(1, CHUNK_BYTES / (gb * bs));
      ByteBuffer buf = ByteBuffer.allocateDirect(chunkGroups * gb * bs);
      byte[] arr = new byte[gb * bs];
      MessageDigest md = Digest.newMessageDigest();
      byte[] h = new byte[32];
      int groups = idx.groups();
      int blocks = idx.blocks();
      int chunks = (groups + chunkGroups - 1) / chunkGroups;
      boolean[] ok = new boolean[chunkGroups];
      boolean[] local = new boolean[chunkGroups];
      for (int c = cursor.getAndIncrement(); c < chunks; c = cursor.getAndIncrement()) {
        if (failure.get() != null) {
          return;
        }
        int g0 = c * chunkGroups;
        int g1 = Math.min(groups, g0 + chunkGroups);
        int b0 = g0 * gb;
        int b1 = Math.min(blocks, g1 * gb);
        // Reads: runs consecutive in one seed, across gaps of at most MAX_GAP other blocks.
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
          int len = (last - i + 1) * bs;
          ByteBuffer dst = buf.slice((i - b0) * bs, len);
          while (dst.hasRemaining()) {
            if (seedCh[seed].read(dst, sb + dst.position()) < 0) {
              break; // the seed shrank: its groups will not verify and are refetched
            }
          }
          i = last + 1;
        }
        reused.addAndGet(nLocal * bs);
        // Zero blocks (after the reads, which may have crossed them).
        for (int i = b0; i < b1; i++) {
          if (plan[i] == ZERO) {
            buf.put((i - b0) * bs, ZEROS, 0, bs);
            zeros.addAndGet(bs);
          }
        }
        // Verify the fully local groups from the buffer.
        long th = System.nanoTime();
        readNanos.addAndGet(th - tr);
        for (int g = g0; g < g1; g++) {
          int gi = g - g0;
          int gs = g * gb;
          int ge = Math.min(blocks, gs + gb);
          local[gi] = plan[gs] != DONE;
          boolean allZero = true;
          for (int i = gs; i < ge && local[gi]; i++) {
            local[gi] = plan[i] != NET;
            allZero &= plan[i] == ZERO;
          }
          if (local[gi] && allZero && zeroGroupHash != null && ge - gs == gb) {
            // Exactly the bytes written (zeros): their hash is known, no need to compute it.
            ok[gi] = idx.groupMatches(g, zeroGroupHash);
          } else if (local[gi]) {
            int glen = groupLength(g);
            buf.get((gs - b0) * bs, arr, 0, glen);
            for (int x = 0; x < glen; x += HASH_PIECE) {
              md.update(arr, x, Math.min(HASH_PIECE, glen - x)); // see HASH_PIECE
            }
            try {
              md.digest(h, 0, 32);
            } catch (java.security.DigestException e) {
              throw new IllegalStateException(e);
            }
            ok[gi] = idx.groupMatches(g, h);
          }
        }
        // Writes: every maximal run of local blocks, one write each. Zero blocks of a fresh output
        // are not written: it was created sparse, so they read as zeros already.
        long tw = System.nanoTime();
        hashNanos.addAndGet(tw - th);
        for (int i = b0; i < b1; ) {
          if (!writes(plan[i])) {
            i++;
            continue;
          }
          int j = i + 1;
          while (j < b1 && writes(plan[j])) {
            j++;
          }
          int len = (int) Math.min((long) (j - i) * bs, idx.size() - (long) i * bs);
          writeFully(buf.slice((i - b0) * bs, len), (long) i * bs);
          i = j;
        }
        writeNanos.addAndGet(System.nanoTime() - tw);
        for (int g = g0; g < g1; g++) {
          int gi = g - g0;
          if (plan[g * gb] == DONE) {
            continue; // verified by an earlier, interrupted fetch
          }
          if (local[gi]) {
            pending.set(g, 0);
            verified(g, ok[gi], true);
          } else if (pending.decrementAndGet(g) == 0) {
            verifyFromDisk(g, md);
          }
        }
        progress();
      }
    }

    private boolean writes(long p) {
      return p >= 0 || (p == ZERO && !fresh);
    }

    private void writeFully(ByteBuffer b, long pos) throws IOException {
      while (b.hasRemaining()) {
        pos += outCh.write(b, pos);
      }
    }

    private final ThreadLocal<byte[]> verifyBuf =
        ThreadLocal.withInitial(() -> new byte[BlockIndex.GROUP_BLOCKS * bs]);

    /** Verifies a group that holds peer blocks, once all its blocks are written. */
    private void verifyFromDisk(int g, MessageDigest md) throws IOException {
      int glen = groupLength(g);
      byte[] arr = verifyBuf.get();
      ByteBuffer b = ByteBuffer.wrap(arr, 0, glen);
      long off = (long) g * BlockIndex.GROUP_BLOCKS * bs;
      while (b.hasRemaining()) {
        if (outCh.read(b, off + b.position()) < 0) {
          throw new EOFException(part + " is shorter than expected");
        }
      }
      md.update(arr, 0, glen);
      byte[] h = md.digest();
      boolean hasLocal = false;
      int b0 = g * BlockIndex.GROUP_BLOCKS;
      for (int i = b0; i < Math.min(idx.blocks(), b0 + BlockIndex.GROUP_BLOCKS); i++) {
        hasLocal |= plan[i] >= 0;
      }
      verified(g, idx.groupMatches(g, h), hasLocal);
    }

    private void verified(int g, boolean ok, boolean hasLocal) {
      synchronized (doneLock) {
        if (ok) {
          done.set(g);
        } else if (hasLocal) {
          refetch.add(g);
        } else {
          throw new PeerDataException(
              "the peer's blocks of group "
                  + g
                  + " (bytes "
                  + (long) g * BlockIndex.GROUP_BLOCKS * bs
                  + "..) do not match its index: corrupted or lying peer; "
                  + "nothing unverified is kept");
        }
      }
    }

    /** The network thread: requests the missing blocks and writes them as they arrive. */
    private void receive(int[] missing, int nm, int[] netLeft) throws IOException {
      if (nm == 0) {
        return;
      }
      byte[] req = BlockRanges.encode(missing, nm);
      wire.addAndGet(req.length);
      InputStream body = post(URI.create(base + "/blocks?bs=" + bs), req);
      // Groups the stream completes are verified by another thread, so hashing (a read-back from
      // the page cache and SHA-256) never stalls the socket.
      java.util.concurrent.LinkedBlockingQueue<Integer> complete =
          new java.util.concurrent.LinkedBlockingQueue<>();
      Thread verifier =
          Thread.ofPlatform()
              .name("fetch-verify")
              .start(
                  () ->
                      guard(
                          () -> {
                            MessageDigest md = Digest.newMessageDigest();
                            for (int g = complete.take(); g >= 0; g = complete.take()) {
                              if (failure.get() == null) {
                                verifyFromDisk(g, md);
                              }
                            }
                          }));
      byte[] buf = new byte[1 << 20];
      int maxRun = buf.length / bs;
      try (InputStream in = body) {
        int i = 0;
        while (i < nm) {
          if (failure.get() != null) {
            return;
          }
          int j = i + 1;
          while (j < nm && j - i < maxRun && missing[j] == missing[j - 1] + 1) {
            j++;
          }
          long off = (long) missing[i] * bs;
          int len = (int) Math.min((long) (j - i) * bs, idx.size() - off);
          int got;
          try {
            got = in.readNBytes(buf, 0, len);
          } catch (IOException e) {
            throw new PeerDataException(
                "block stream from " + base + " broke off after " + fetched.get() + " bytes: " + e);
          }
          wire.addAndGet(got);
          if (got < len) {
            throw new PeerDataException(
                "block stream from " + base + " broke off after " + fetched.get() + " bytes");
          }
          writeFully(ByteBuffer.wrap(buf, 0, len), off);
          fetched.addAndGet(len);
          for (int k = i; k < j; k++) {
            int g = missing[k] / BlockIndex.GROUP_BLOCKS;
            if (--netLeft[g] == 0 && pending.decrementAndGet(g) == 0) {
              complete.add(g);
            }
          }
          i = j;
          progress();
        }
        if (in.read() >= 0) {
          throw new PeerDataException("block stream from " + base + " is longer than asked for");
        }
      } finally {
        complete.add(-1);
        join(List.of(verifier));
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
     * The flusher: while the local workers copy, fsyncs the output every {@value
     * #FLUSH_EVERY_MILLIS} ms (and once more when they are done), so writeback overlaps the copying
     * and the final fsync has little left; every few seconds it records the verified groups for a
     * resume. Neither blocks the network thread.
     */
    private void flush(
        java.util.concurrent.atomic.AtomicBoolean localDone,
        java.util.concurrent.atomic.AtomicBoolean netDone)
        throws IOException {
      boolean flushedAfterLocal = false;
      while (!netDone.get() || !localDone.get()) {
        java.util.concurrent.locks.LockSupport.parkNanos(
            (FLUSH_EVERY_MILLIS > 0 ? FLUSH_EVERY_MILLIS : 100) * 1_000_000L);
        if (failure.get() != null) {
          return;
        }
        boolean last = localDone.get();
        if (!flushedAfterLocal && (FLUSH_EVERY_MILLIS > 0 || last) && !netDone.get()) {
          outCh.force(false);
          flushedAfterLocal = last;
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
