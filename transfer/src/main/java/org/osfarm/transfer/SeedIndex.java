package org.osfarm.transfer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.osfarm.core.Digest;

/**
 * A persistent index of the blocks of local seed files, so seeds are hashed once, not on every
 * fetch.
 *
 * <p>One file per (seed path, block size) in the index directory, named by the SHA-256 of both: a
 * header with the seed's size, modification time and file key (inode), then the first 8 bytes of
 * the SHA-256 of each full block. An entry whose seed changed (size, mtime or inode) is rebuilt on
 * use. Index files are written to a temp file and renamed, so a crash leaves none half-written.
 * Entries are hints: the fetcher verifies every group it assembles, so a seed modified in place
 * without an mtime change costs a refetch, never a wrong result.
 */
public final class SeedIndex {
  private static final byte[] MAGIC = {'O', 'S', 'S', 'I', 1};
  private final Path dir;
  private final AtomicInteger hashed = new AtomicInteger();

  public SeedIndex(Path dir) {
    this.dir = dir;
  }

  /** Seed files this instance hashed because the index had no current entry for them. */
  int hashedFiles() {
    return hashed.get();
  }

  /** {@code $XDG_CACHE_HOME/osfarm/seed-index}, else {@code ~/.cache/osfarm/seed-index}. */
  public static Path defaultDir() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base =
        xdg != null && !xdg.isBlank()
            ? Path.of(xdg)
            : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("osfarm").resolve("seed-index");
  }

  /** Seed files: the given files, and every regular file below the given directories. */
  public static List<Path> expand(List<Path> seeds) throws IOException {
    List<Path> out = new ArrayList<>();
    for (Path s : seeds) {
      if (Files.isDirectory(s)) {
        try (Stream<Path> w = Files.walk(s)) {
          w.filter(Files::isRegularFile).sorted().forEach(out::add);
        }
      } else if (Files.isRegularFile(s)) {
        out.add(s);
      } else {
        throw new java.nio.file.NoSuchFileException(s + " (seed) is not a file or directory");
      }
    }
    return out;
  }

  /** One seed file's block keys (first 8 bytes of each full block's SHA-256). */
  public record Entry(Path file, int blockSize, long[] keys) {}

  /** The keys of {@code file}, from the index if current, else computed and stored. */
  public Entry get(Path file, int blockSize) throws IOException {
    BlockIndex.checkBlockSize(blockSize);
    Path abs = file.toAbsolutePath().normalize();
    BasicFileAttributes a = Files.readAttributes(abs, BasicFileAttributes.class);
    String stamp =
        abs
            + "\n"
            + blockSize
            + "\n"
            + a.size()
            + "\n"
            + a.lastModifiedTime().toMillis()
            + "\n"
            + a.fileKey();
    Path idx =
        dir.resolve(
            Digest.of((abs + "\0" + blockSize).getBytes(StandardCharsets.UTF_8)).hex() + ".idx");
    long[] keys = load(idx, stamp);
    if (keys == null) {
      hashed.incrementAndGet();
      keys = compute(abs, blockSize, a.size());
      store(idx, stamp, keys);
    }
    return new Entry(abs, blockSize, keys);
  }

  private static long[] load(Path idx, String stamp) {
    try (FileChannel ch = FileChannel.open(idx, StandardOpenOption.READ)) {
      ByteBuffer all = ByteBuffer.allocate((int) ch.size()).order(ByteOrder.BIG_ENDIAN);
      while (all.hasRemaining() && ch.read(all) > 0) {}
      all.flip();
      byte[] m = new byte[MAGIC.length];
      all.get(m);
      if (!java.util.Arrays.equals(m, MAGIC)) {
        return null;
      }
      byte[] s = new byte[all.getInt()];
      all.get(s);
      if (!new String(s, StandardCharsets.UTF_8).equals(stamp)) {
        return null;
      }
      long[] keys = new long[all.getInt()];
      all.asLongBuffer().get(keys);
      return keys;
    } catch (IOException | RuntimeException e) {
      return null; // absent, stale or damaged: rebuild
    }
  }

  private void store(Path idx, String stamp, long[] keys) throws IOException {
    Files.createDirectories(dir);
    byte[] s = stamp.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(MAGIC.length + 8 + s.length + keys.length * 8);
    b.put(MAGIC).putInt(s.length).put(s).putInt(keys.length);
    b.asLongBuffer().put(keys);
    b.position(b.capacity()).flip();
    Path tmp = Files.createTempFile(dir, "seed", ".tmp");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
      while (b.hasRemaining()) {
        ch.write(b);
      }
      ch.force(true);
    }
    Files.move(tmp, idx, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** Hashes every full block of a file (in parallel). */
  static long[] compute(Path file, int bs, long size) throws IOException {
    int n = (int) (size / bs);
    long[] keys = new long[n];
    int span = 256; // blocks per task
    int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        ExecutorService ex = Executors.newFixedThreadPool(threads)) {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int first = t;
        fs.add(
            ex.submit(
                () -> {
                  ByteBuffer buf = ByteBuffer.allocateDirect(bs * span);
                  byte[] arr = new byte[bs * span];
                  MessageDigest md = Digest.newMessageDigest();
                  byte[] h = new byte[32];
                  for (long s0 = (long) first * span; s0 < n; s0 += (long) threads * span) {
                    int cnt = (int) Math.min(span, n - s0);
                    BlockIndex.readFully(ch, buf, s0 * bs, cnt * bs, file);
                    buf.flip();
                    buf.get(arr, 0, cnt * bs);
                    for (int i = 0; i < cnt; i++) {
                      md.update(arr, i * bs, bs);
                      md.digest(h, 0, 32);
                      keys[(int) s0 + i] = ByteBuffer.wrap(h).getLong();
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException();
    }
    return keys;
  }

  /** The wire key (see {@link BlockIndex}) of a seed key. */
  static long wireKey(long seedKey) {
    return seedKey >>> (64 - 8 * BlockIndex.WIRE_KEY_BYTES);
  }

  /**
   * An open-addressing map from wire key to (seed, block), first occurrence wins. Compact: two long
   * arrays, no boxing.
   */
  static final class Lookup {
    private final long[] k;
    private final long[] v;
    private final int mask;

    Lookup(List<Entry> seeds) {
      long n = 0;
      for (Entry e : seeds) {
        n += e.keys().length;
      }
      int cap = Integer.highestOneBit((int) Math.max(16, Math.min(1 << 30, n * 2))) << 1;
      k = new long[cap];
      v = new long[cap];
      java.util.Arrays.fill(v, -1);
      mask = cap - 1;
      for (int s = 0; s < seeds.size(); s++) {
        long[] keys = seeds.get(s).keys();
        for (int b = 0; b < keys.length; b++) {
          put(wireKey(keys[b]), ((long) s << 32) | b);
        }
      }
    }

    private void put(long key, long val) {
      int i = (int) mix(key) & mask;
      while (v[i] != -1) {
        if (k[i] == key) {
          return;
        }
        i = (i + 1) & mask;
      }
      k[i] = key;
      v[i] = val;
    }

    /** (seed << 32 | block), or -1. */
    long get(long key) {
      int i = (int) mix(key) & mask;
      while (v[i] != -1) {
        if (k[i] == key) {
          return v[i];
        }
        i = (i + 1) & mask;
      }
      return -1;
    }

    private static long mix(long x) {
      x *= 0x9E3779B97F4A7C15L;
      return x ^ (x >>> 29);
    }
  }

  static UncheckedIOException unchecked(IOException e) {
    return new UncheckedIOException(e);
  }
}
