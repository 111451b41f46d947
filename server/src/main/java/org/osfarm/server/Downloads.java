package org.osfarm.server;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.osfarm.build.BuildListener;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.SnapshotWriter;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;

/**
 * Streams files with HTTP Range support and digest headers, and keeps exported snapshots as files
 * so a download can resume.
 *
 * <p>A download is always a file on disk: a job's output, or a snapshot written once in any output
 * format (tar, tar.gz, tar.zst, raw ext4, qcow2, a tar of an OCI layout) into {@code
 * DATA/exports/SNAPSHOT.FORMAT} by the build module's {@link SnapshotWriter}. Conversions run on a
 * bounded pool of their own, never on the HTTP threads' behalf beyond waiting: a slow qcow2 does
 * not hold up pages or other downloads. Concurrent requests for the same (snapshot, format) share
 * one conversion (a map of futures); the file is renamed into place before its checksum file, and a
 * file counts as done only with both. Bytes go from a {@link FileChannel} through a 256 KiB buffer
 * or a mapping: no image is ever held on the heap. Headers: {@code Accept-Ranges}, a strong {@code
 * ETag} (the SHA-256), {@code Repr-Digest} (RFC 9530) and the older {@code Digest} (RFC 3230)
 * carrying the SHA-256 of the whole file, {@code Content-Disposition}. Regions up to 1 GiB are
 * handed to Jetty as a memory-mapped buffer (sent from the page cache); larger ones are streamed.
 * {@code Range: bytes=a-b}, {@code a-} and {@code -n} (one range) give 206, an unsatisfiable one
 * 416; {@code If-Range} with a different ETag gives the whole file.
 */
final class Downloads {
  /** Larger ranges are streamed through a buffer instead of mapped. */
  private static final long MAX_MAPPED = 1L << 30;

  private final Path exportDir;
  private final Path workDir;
  private final long maxBytes;
  private final Duration wait;
  private final ServerMetrics metrics;
  private final ThreadPoolExecutor pool;
  private final ConcurrentHashMap<String, CompletableFuture<Prepared>> running =
      new ConcurrentHashMap<>();

  /**
   * @param exportDir where finished exports are kept ({@code SNAPSHOT.FORMAT} and its {@code
   *     .sha256})
   * @param workDir scratch space for raw, qcow2 and OCI conversions (the builder's {@code work}
   *     directory, reachable from its user namespace)
   * @param threads conversions running at once; further ones wait in a queue of {@code maxQueued}
   * @param wait how long a request waits for its conversion before 503 with {@code Retry-After}
   * @param maxBytes bytes of finished exports kept; after each new one, the least recently served
   *     others are removed until the rest fit (the new one always stays)
   */
  Downloads(
      Path exportDir,
      Path workDir,
      int threads,
      int maxQueued,
      Duration wait,
      long maxBytes,
      ServerMetrics metrics) {
    this.exportDir = exportDir;
    this.workDir = workDir;
    this.maxBytes = maxBytes;
    this.wait = wait;
    this.metrics = metrics;
    this.pool =
        new ThreadPoolExecutor(
            threads,
            threads,
            1,
            TimeUnit.MINUTES,
            new ArrayBlockingQueue<>(Math.max(1, maxQueued)),
            Thread.ofPlatform().name("osfarm-export-", 0).daemon().factory());
    pool.allowCoreThreadTimeOut(true);
  }

  /** A file ready to serve and the SHA-256 of its bytes. */
  record Prepared(Path file, String sha256) {}

  /** The file name extension of a download in {@code format}. */
  static String extension(OutputFormat format) {
    return format == OutputFormat.OCI ? "oci.tar" : format.label();
  }

  /**
   * The export of {@code snapshot} in {@code format}, made on first use on the conversion pool;
   * concurrent requests for the same one share one conversion. The calling (virtual) thread waits
   * for it at most the configured time.
   */
  Prepared export(Repository repo, Digest snapshot, OutputFormat format) throws IOException {
    if (format == OutputFormat.DIR) {
      throw Problem.badRequest(
          "a directory cannot be downloaded; use tar, tar.gz, tar.zst, raw, qcow2 or oci");
    }
    String key = snapshot.hex() + "." + format.label();
    Prepared done = finished(key);
    if (done != null) {
      return done;
    }
    CompletableFuture<Prepared> f =
        running.computeIfAbsent(key, k -> submit(k, repo, snapshot, format));
    try {
      return f.get(wait.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new Problem(
          503,
          "export-pending",
          "Export in progress",
          "writing "
              + snapshot.shortHex(12)
              + " as "
              + format.label()
              + " takes longer than "
              + wait
              + "; ask again later (the file is being made once for everyone)",
          Map.of("Retry-After", "30"));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while waiting for an export", e);
    } catch (ExecutionException e) {
      running.remove(key, f);
      Throwable c = e.getCause();
      if (c instanceof RejectedExecutionException) {
        throw new Problem(
            503,
            "queue-full",
            "Export queue full",
            "too many exports are waiting; try again later",
            Map.of("Retry-After", "60"));
      }
      if (c instanceof Problem p) {
        throw p;
      }
      throw new Problem(
          500,
          "export-failed",
          "Export failed",
          "writing "
              + snapshot.shortHex(12)
              + " as "
              + format.label()
              + " failed: "
              + c.getMessage());
    }
  }

  private Prepared finished(String key) throws IOException {
    Path file = exportDir.resolve(key);
    Path sum = exportDir.resolve(key + ".sha256");
    if (Files.exists(file) && Files.exists(sum)) {
      try {
        // the eviction order: an export's modification time is when it was last served
        Files.setLastModifiedTime(file, FileTime.from(Instant.now()));
      } catch (IOException e) {
        // removed by an eviction in between: make it again
        return null;
      }
      return new Prepared(file, Files.readString(sum).trim());
    }
    return null;
  }

  /**
   * Removes the least recently served exports other than {@code keep} until the exports fit in the
   * limit. The checksum file goes first, so a half-removed export never counts as done; a download
   * already streaming a removed file goes on (the open file outlives its name) and a later one
   * makes it again, byte for byte the same.
   */
  private synchronized void evict(String keep) throws IOException {
    record Export(String key, long size, long served) {}
    List<Export> all = new ArrayList<>();
    long total = 0;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(exportDir)) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        if (n.endsWith(".sha256") || n.endsWith(".part") || n.startsWith("export-")) {
          continue;
        }
        try {
          BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
          all.add(new Export(n, a.size(), a.lastModifiedTime().toMillis()));
          total += a.size();
        } catch (NoSuchFileException e) {
          // removed meanwhile
        }
      }
    }
    all.sort(Comparator.comparingLong(Export::served));
    for (Export e : all) {
      if (total <= maxBytes) {
        break;
      }
      if (e.key().equals(keep) || running.containsKey(e.key())) {
        continue;
      }
      Files.deleteIfExists(exportDir.resolve(e.key() + ".sha256"));
      Files.deleteIfExists(exportDir.resolve(e.key()));
      total -= e.size();
      metrics.exportsEvicted.increment();
    }
  }

  private CompletableFuture<Prepared> submit(
      String key, Repository repo, Digest snapshot, OutputFormat format) {
    CompletableFuture<Prepared> cf = new CompletableFuture<>();
    try {
      pool.execute(
          () -> {
            try {
              cf.complete(convert(key, repo, snapshot, format));
            } catch (Throwable t) {
              cf.completeExceptionally(t);
            } finally {
              running.remove(key, cf);
            }
          });
    } catch (RejectedExecutionException e) {
      cf.completeExceptionally(e);
    }
    return cf;
  }

  /** Runs on the pool: writes the file and its checksum, file first, both by rename. */
  private Prepared convert(String key, Repository repo, Digest snapshot, OutputFormat format)
      throws IOException {
    Prepared done = finished(key);
    if (done != null) {
      return done;
    }
    Files.createDirectories(exportDir);
    Path file = exportDir.resolve(key);
    Path sum = exportDir.resolve(key + ".sha256");
    Path tmp = Files.createTempFile(exportDir, "export-", ".part");
    try {
      SnapshotWriter.write(repo, snapshot, format, tmp, workDir, BuildListener.NONE);
      String hex = sha256(tmp);
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      Path sumTmp = Files.createTempFile(exportDir, "export-", ".sha256.part");
      Files.writeString(sumTmp, hex + "\n");
      Files.move(sumTmp, sum, StandardCopyOption.ATOMIC_MOVE);
      metrics.exportsWritten.increment();
      evict(key);
      return new Prepared(file, hex);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  static String sha256(Path file) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
      while (ch.read(buf) >= 0) {
        buf.flip();
        md.update(buf);
        buf.clear();
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** Stops the conversion pool (a running conversion is interrupted; its temp file removed). */
  void close() {
    pool.shutdownNow();
  }

  /** Serves {@code file} (GET or HEAD) honouring Range and If-Range. */
  void serve(Context ctx, Path file, String sha256Hex, String fileName, String contentType)
      throws IOException {
    long size = Files.size(file);
    String etag = "\"" + sha256Hex + "\"";
    String b64 = Base64.getEncoder().encodeToString(HexFormat.of().parseHex(sha256Hex));
    ctx.header("Accept-Ranges", "bytes");
    ctx.header("ETag", etag);
    ctx.header("Repr-Digest", "sha-256=:" + b64 + ":");
    ctx.header("Digest", "SHA-256=" + b64);
    ctx.header("X-Checksum-Sha256", sha256Hex);
    ctx.header("Content-Disposition", "attachment; filename=\"" + fileName + "\"");
    ctx.header("Cache-Control", "no-cache");
    ctx.contentType(contentType);
    long start = 0;
    long end = size - 1;
    String range = ctx.header("Range");
    String ifRange = ctx.header("If-Range");
    boolean partial = range != null && (ifRange == null || ifRange.equals(etag));
    if (partial) {
      long[] r = parseRange(range, size);
      if (r == null) {
        ctx.header("Content-Range", "bytes */" + size);
        throw new Problem(
            416,
            "range-not-satisfiable",
            "Range not satisfiable",
            "range '" + range + "' is outside the " + size + " bytes of " + fileName,
            java.util.Map.of("Content-Range", "bytes */" + size));
      }
      start = r[0];
      end = r[1];
      ctx.status(206);
      ctx.header("Content-Range", "bytes " + start + "-" + end + "/" + size);
    } else {
      ctx.status(200);
    }
    long length = end - start + 1;
    ctx.header("Content-Length", Long.toString(length));
    metrics.downloads.increment();
    if (ctx.method().name().equals("HEAD")) {
      return;
    }
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      if (length > 0
          && length <= MAX_MAPPED
          && ctx.res().getOutputStream() instanceof org.eclipse.jetty.ee10.servlet.HttpOutput jo) {
        // Jetty writes a mapped region straight from the page cache: no copy through the heap.
        jo.sendContent(ch.map(FileChannel.MapMode.READ_ONLY, start, length));
        metrics.bytesServed.increment(length);
        return;
      }
      OutputStream out = ctx.outputStream();
      ByteBuffer buf = ByteBuffer.allocate(1 << 18);
      long pos = start;
      long left = length;
      while (left > 0) {
        buf.clear();
        if (left < buf.capacity()) {
          buf.limit((int) left);
        }
        int n = ch.read(buf, pos);
        if (n < 0) {
          break;
        }
        out.write(buf.array(), 0, n);
        pos += n;
        left -= n;
        metrics.bytesServed.increment(n);
      }
      out.flush();
    }
  }

  /** One byte range {@code [first, last]} within size, or null if unsatisfiable or malformed. */
  static long[] parseRange(String header, long size) {
    String h = header.trim();
    if (!h.startsWith("bytes=") || h.indexOf(',') >= 0 || size == 0) {
      return null;
    }
    String spec = h.substring(6).trim();
    int dash = spec.indexOf('-');
    if (dash < 0) {
      return null;
    }
    try {
      String a = spec.substring(0, dash).trim();
      String b = spec.substring(dash + 1).trim();
      if (a.isEmpty()) {
        long n = Long.parseLong(b);
        if (n <= 0) {
          return null;
        }
        return new long[] {Math.max(0, size - n), size - 1};
      }
      long first = Long.parseLong(a);
      long last = b.isEmpty() ? size - 1 : Math.min(Long.parseLong(b), size - 1);
      if (first < 0 || first >= size || last < first) {
        return null;
      }
      return new long[] {first, last};
    } catch (NumberFormatException e) {
      return null;
    }
  }

  static String contentType(String format) {
    return switch (format) {
      case "tar" -> "application/x-tar";
      case "tar.gz" -> "application/gzip";
      case "tar.zst" -> "application/zstd";
      case "qcow2" -> "application/x-qemu-disk";
      case "oci" -> "application/x-tar";
      default -> "application/octet-stream";
    };
  }
}
