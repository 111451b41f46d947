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
    final HttpClient http = RemoteRepository.newClient();
    final AtomicLong wire = new AtomicLong();
    final AtomicLong reused = new AtomicLong();
    final AtomicLong zeros = new AtomicLong();
    final AtomicLong fetched = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();
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
    long lastState = System.nanoTime();

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
      byte[] ib = get(URI.create(base + "/index?bs=" + bs));
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
      List<SeedIndex.Entry> seeds = new ArrayList<>();
      for (Path s : SeedIndex.expand(o.seeds())) {
        if (!s.toAbsolutePath().normalize().equals(part.toAbsolutePath().normalize())) {
          seeds.add(o.seedIndex().get(s, bs));
        }
      }
      SeedIndex.Lookup lookup = new SeedIndex.Lookup(seeds);
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
        join(workers);
        localTime[0] = System.nanoTime() - ls;
        join(List.of(net));
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
        Files.move(part, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(state);
        try (FileChannel d =
            FileChannel.open(out.toAbsolutePath().getParent(), StandardOpenOption.READ)) {
          d.force(true); // the rename is durable
        }
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
      void run() throws IOException;
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

    /** A local worker: takes groups in order, copies their seed and zero blocks. */
    private void local(AtomicInteger cursor) throws IOException {
      int gsz = BlockIndex.GROUP_BLOCKS * bs;
      ByteBuffer buf = ByteBuffer.allocate(gsz);
      byte[] arr = buf.array();
      MessageDigest md = org.osfarm.core.Digest.newMessageDigest();
      byte[] h = new byte[32];
      int groups = idx.groups();
      for (int g = cursor.getAndIncrement(); g < groups; g = cursor.getAndIncrement()) {
        if (failure.get() != null) {
          return;
        }
        int b0 = g * BlockIndex.GROUP_BLOCKS;
        if (plan[b0] == DONE) {
          continue; // verified by an earlier, interrupted fetch
        }
        int nb = Math.min(BlockIndex.GROUP_BLOCKS, idx.blocks() - b0);
        int glen = groupLength(g);
        boolean anyNet = false;
        for (int i = 0; i < nb; ) {
          long p = plan[b0 + i];
          if (p == NET) {
            anyNet = true;
            i++;
          } else if (p == ZERO) {
            java.util.Arrays.fill(arr, i * bs, (i + 1) * bs, (byte) 0);
            zeros.addAndGet(bs);
            i++;
          } else {
            // A run of blocks consecutive in the same seed: one read.
            int j = i + 1;
            while (j < nb && plan[b0 + j] == p + (j - i)) {
              j++;
            }
            int seed = (int) (p >>> 32);
            long sb = (p & 0xffffffffL) * bs;
            buf.clear().position(i * bs).limit(j * bs);
            while (buf.hasRemaining()) {
              int r = seedCh[seed].read(buf, sb + (buf.position() - i * bs));
              if (r < 0) {
                break; // seed shrank: the group will not verify and is refetched
              }
            }
            reused.addAndGet((long) (j - i) * bs);
            i = j;
          }
        }
        if (!anyNet) {
          md.update(arr, 0, glen);
          try {
            md.digest(h, 0, 32);
          } catch (java.security.DigestException e) {
            throw new IllegalStateException(e);
          }
          writeFully(ByteBuffer.wrap(arr, 0, glen), (long) b0 * bs);
          pending.set(g, 0);
          verified(g, idx.groupMatches(g, h), true);
          continue;
        }
        // Write the local runs only; the network thread writes the rest.
        for (int i = 0; i < nb; ) {
          if (plan[b0 + i] == NET) {
            i++;
            continue;
          }
          int j = i + 1;
          while (j < nb && plan[b0 + j] != NET) {
            j++;
          }
          writeFully(ByteBuffer.wrap(arr, i * bs, (j - i) * bs), (long) (b0 + i) * bs);
          i = j;
        }
        if (pending.decrementAndGet(g) == 0) {
          verifyFromDisk(g, md);
        }
        progress();
      }
    }

    private void writeFully(ByteBuffer b, long pos) throws IOException {
      while (b.hasRemaining()) {
        pos += outCh.write(b, pos);
      }
    }

    private void verifyFromDisk(int g, MessageDigest md) throws IOException {
      int glen = groupLength(g);
      ByteBuffer b = ByteBuffer.allocate(glen);
      long off = (long) g * BlockIndex.GROUP_BLOCKS * bs;
      while (b.hasRemaining()) {
        if (outCh.read(b, off + b.position()) < 0) {
          throw new EOFException(part + " is shorter than expected");
        }
      }
      md.update(b.array(), 0, glen);
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
      HttpResponse<InputStream> r;
      try {
        r =
            http.send(
                HttpRequest.newBuilder(URI.create(base + "/blocks?bs=" + bs))
                    .timeout(Duration.ofHours(6))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(req))
                    .build(),
                HttpResponse.BodyHandlers.ofInputStream());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new TransferException("interrupted", e);
      } catch (java.net.ConnectException e) {
        throw new TransferException("cannot connect to " + base, e);
      }
      RemoteRepository.check(r);
      MessageDigest md = org.osfarm.core.Digest.newMessageDigest();
      byte[] buf = new byte[1 << 20];
      int maxRun = buf.length / bs;
      try (InputStream in = r.body()) {
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
              verifyFromDisk(g, md);
            }
          }
          i = j;
          progress();
          maybeSaveState();
        }
        if (in.read() >= 0) {
          throw new PeerDataException("block stream from " + base + " is longer than asked for");
        }
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

    private byte[] get(URI u) {
      try {
        HttpResponse<byte[]> r =
            http.send(
                HttpRequest.newBuilder(u).timeout(Duration.ofMinutes(30)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        wire.addAndGet(r.body().length);
        if (r.statusCode() == 404) {
          throw new org.osfarm.core.NotFoundException(
              "peer: " + new String(r.body(), StandardCharsets.UTF_8).trim());
        }
        if (r.statusCode() != 200) {
          throw new TransferException(
              "peer answered "
                  + r.statusCode()
                  + " to "
                  + u
                  + ": "
                  + new String(r.body(), StandardCharsets.UTF_8).trim());
        }
        return r.body();
      } catch (java.net.ConnectException e) {
        throw new TransferException("cannot connect to " + u, e);
      } catch (IOException e) {
        throw new TransferException("GET " + u + " failed: " + e, e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new TransferException("interrupted", e);
      }
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

    private void maybeSaveState() throws IOException {
      if (System.nanoTime() - lastState > STATE_EVERY_NANOS) {
        lastState = System.nanoTime();
        saveState();
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
