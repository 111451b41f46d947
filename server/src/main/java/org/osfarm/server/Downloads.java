package org.osfarm.server;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;

/**
 * Streams files with HTTP Range support and digest headers, and keeps exported snapshots as files
 * so a download can resume.
 *
 * <p>A download is always a file on disk: a job's output, or a snapshot exported once into {@code
 * DATA/exports/SNAPSHOT.FORMAT} (written to a temporary file while its SHA-256 is computed, then
 * renamed; concurrent requests for the same export wait for the first). Bytes go from a {@link
 * FileChannel} through a 256 KiB buffer or a mapping: no image is ever held on the heap. Headers:
 * {@code Accept-Ranges}, a strong {@code ETag} (the SHA-256), {@code Repr-Digest} (RFC 9530) and
 * the older {@code Digest} (RFC 3230) carrying the SHA-256 of the whole file, {@code
 * Content-Disposition}. Regions up to 1 GiB are handed to Jetty as a memory-mapped buffer (sent
 * from the page cache); larger ones are streamed. {@code Range: bytes=a-b}, {@code a-} and {@code
 * -n} (one range) give 206, an unsatisfiable one 416; {@code If-Range} with a different ETag gives
 * the whole file.
 */
final class Downloads {
  /** Larger ranges are streamed through a buffer instead of mapped. */
  private static final long MAX_MAPPED = 1L << 30;

  private final Path exportDir;
  private final ServerMetrics metrics;
  private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();

  Downloads(Path exportDir, ServerMetrics metrics) {
    this.exportDir = exportDir;
    this.metrics = metrics;
  }

  /** A file ready to serve and the SHA-256 of its bytes. */
  record Prepared(Path file, String sha256) {}

  /** The export of {@code snapshot} in {@code format}, made on first use. */
  Prepared export(Repository repo, Digest snapshot, ExportFormat format) throws IOException {
    if (format == ExportFormat.DIR) {
      throw Problem.badRequest("a directory cannot be downloaded; use tar, tar.gz or tar.zst");
    }
    String key = snapshot.hex() + "." + format.label();
    Path file = exportDir.resolve(key);
    Path sum = exportDir.resolve(key + ".sha256");
    Object lock = locks.computeIfAbsent(key, k -> new Object());
    synchronized (lock) {
      if (Files.exists(file) && Files.exists(sum)) {
        return new Prepared(file, Files.readString(sum).trim());
      }
      Files.createDirectories(exportDir);
      Path tmp = Files.createTempFile(exportDir, "export-", ".part");
      try {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (OutputStream out =
            new DigestOutputStream(
                Files.newOutputStream(tmp, StandardOpenOption.TRUNCATE_EXISTING), md)) {
          repo.exportTar(snapshot, java.util.List.of(), format, out, ProgressListener.NONE);
        }
        String hex = HexFormat.of().formatHex(md.digest());
        Files.writeString(sum, hex + "\n");
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        return new Prepared(file, hex);
      } catch (java.security.NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      } finally {
        Files.deleteIfExists(tmp);
      }
    }
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
      default -> "application/octet-stream";
    };
  }
}
