package org.osfarm.transfer;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.osfarm.core.NotFoundException;

/**
 * The server side of Content-Based Transfer: offers the image files of one directory (raw, qcow2,
 * tar: any regular file) for block-level fetching.
 *
 * <p>Routes (below the mount point, usually {@code /v1/images}):
 *
 * <ul>
 *   <li>{@code GET /} — {@code name size} lines.
 *   <li>{@code GET /NAME} — the whole file (the plain-download path).
 *   <li>{@code GET /NAME/index?bs=4096} — its {@link BlockIndex}, computed once per file version
 *       and block size and kept in memory.
 *   <li>{@code POST /NAME/blocks?bs=4096} — body: {@link BlockRanges}; answer: those blocks' bytes,
 *       concatenated in order (no framing: the client knows every length).
 * </ul>
 *
 * <p>Only names of regular files directly in the directory are served, never paths.
 */
public final class ImageProtocol implements ProtocolHandler {
  private final Path dir;
  private final Map<String, BlockIndex> indexes = new ConcurrentHashMap<>();

  /**
   * A file and its index are named, not content-addressed: the name may be given a new version of
   * the file at any time, so a cache in between must ask again before it answers with a kept copy.
   */
  private static final Map<String, String> NAMED = Map.of("Cache-Control", "no-cache");

  public ImageProtocol(Path dir) {
    this.dir = dir;
  }

  @Override
  public ProtocolResponse handle(ProtocolRequest r) throws IOException {
    String p = r.path();
    if (p.equals("/") && r.method().equals("GET")) {
      return list();
    }
    String[] parts = p.substring(1).split("/", -1);
    Path file = file(parts[0]);
    int bs = Integer.parseInt(r.query().getOrDefault("bs", "4096"));
    if (parts.length == 1 && r.method().equals("GET")) {
      long size = Files.size(file);
      return new ProtocolResponse(
          200, "application/octet-stream", NAMED, size, out -> copy(file, 0, size, out));
    }
    if (parts.length == 2 && parts[1].equals("index") && r.method().equals("GET")) {
      byte[] b = index(file, bs).encode();
      return ProtocolResponse.bytes(200, "application/x-osfarm-block-index", NAMED, b);
    }
    if (parts.length == 2 && parts[1].equals("blocks") && r.method().equals("POST")) {
      BlockIndex idx = index(file, bs);
      List<long[]> runs = BlockRanges.decode(r.body(), idx.blocks());
      long total = 0;
      for (long[] run : runs) {
        total += Math.min(run[1] * bs, idx.size() - run[0] * bs);
      }
      return new ProtocolResponse(
          200,
          "application/octet-stream",
          Map.of("Cache-Control", "no-store"),
          total,
          out -> sendBlocks(file, idx.size(), bs, runs, out));
    }
    return ProtocolResponse.text(404, "no such route: " + r.method() + " " + p + "\n");
  }

  /** Most bytes of the file read but not sent between two requested runs (one read for both). */
  static final int MAX_READ_GAP = 256 * 1024;

  private static final int SPAN = 4 << 20;

  /** Spans read ahead of the socket (each one buffer of {@value #SPAN} bytes). */
  private static final int READ_AHEAD = 2;

  /**
   * Writes the requested runs in order. Runs close together are read with one read of the span that
   * covers them: scattered single blocks (a few percent of an image changed) would otherwise cost
   * one small, cold, random read each, which at 1 Gb/s is slower than the link. A reader thread
   * reads the spans ahead of the socket (a cold read no longer pauses the stream) and packs each
   * span's requested bytes together, so each span is one write.
   */
  static void sendBlocks(Path file, long size, int bs, List<long[]> runs, OutputStream out)
      throws IOException {
    java.util.concurrent.BlockingQueue<byte[]> free =
        new java.util.concurrent.ArrayBlockingQueue<>(READ_AHEAD + 1);
    java.util.concurrent.BlockingQueue<Object> full =
        new java.util.concurrent.ArrayBlockingQueue<>(READ_AHEAD + 2);
    for (int i = 0; i <= READ_AHEAD; i++) {
      free.add(new byte[SPAN]);
    }
    Thread reader =
        Thread.ofPlatform()
            .name("image-blocks-read")
            .daemon()
            .start(
                () -> {
                  try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                    readSpans(ch, file, size, bs, runs, free, full);
                    full.put(Boolean.TRUE); // the end
                  } catch (InterruptedException e) {
                    // the writer gave up (the client went away)
                  } catch (IOException | RuntimeException e) {
                    full.offer(e);
                  }
                });
    try {
      while (true) {
        Object o = full.take();
        if (o instanceof Packed p) {
          out.write(p.buf(), 0, p.length());
          free.put(p.buf());
        } else if (o instanceof IOException e) {
          throw e;
        } else if (o instanceof RuntimeException e) {
          throw e;
        } else {
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } finally {
      reader.interrupt(); // stops it if the socket failed; a no-op once it is done
    }
  }

  /** A buffer whose first {@code length} bytes are requested bytes, in request order. */
  private record Packed(byte[] buf, int length) {}

  /**
   * The reader: reads each span (a long run in pieces of {@value #SPAN} bytes, or runs with small
   * gaps that fit one span) into a free buffer, packs the requested bytes to its front and hands it
   * to the writer.
   */
  private static void readSpans(
      FileChannel ch,
      Path file,
      long size,
      int bs,
      List<long[]> runs,
      java.util.concurrent.BlockingQueue<byte[]> free,
      java.util.concurrent.BlockingQueue<Object> full)
      throws IOException, InterruptedException {
    int k = 0;
    while (k < runs.size()) {
      long start = runs.get(k)[0] * bs;
      long end = Math.min(size, (runs.get(k)[0] + runs.get(k)[1]) * bs);
      if (end - start >= SPAN) { // a long run: stream it through the buffers
        for (long off = start; off < end; ) {
          int n = (int) Math.min(SPAN, end - off);
          byte[] arr = free.take();
          read(ch, arr, off, n, file);
          full.put(new Packed(arr, n));
          off += n;
        }
        k++;
        continue;
      }
      // Gather the following runs that fit one span with small gaps.
      int last = k;
      while (last + 1 < runs.size()) {
        long s2 = runs.get(last + 1)[0] * bs;
        long e2 = Math.min(size, (runs.get(last + 1)[0] + runs.get(last + 1)[1]) * bs);
        if (s2 - end > MAX_READ_GAP || e2 - start > SPAN) {
          break;
        }
        end = e2;
        last++;
      }
      byte[] arr = free.take();
      read(ch, arr, start, (int) (end - start), file);
      int packed = 0;
      for (int j = k; j <= last; j++) {
        long s2 = runs.get(j)[0] * bs;
        long e2 = Math.min(size, (runs.get(j)[0] + runs.get(j)[1]) * bs);
        System.arraycopy(arr, (int) (s2 - start), arr, packed, (int) (e2 - s2)); // never forward
        packed += (int) (e2 - s2);
      }
      full.put(new Packed(arr, packed));
      k = last + 1;
    }
  }

  private static void read(FileChannel ch, byte[] arr, long off, int n, Path file)
      throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(arr, 0, n);
    while (buf.hasRemaining()) {
      if (ch.read(buf, off + buf.position()) < 0) {
        throw new IOException(file + " shrank while it was served");
      }
    }
  }

  private Path file(String name) {
    if (name.isEmpty() || name.startsWith(".") || name.contains("/") || name.contains("\\")) {
      throw new NotFoundException("no image '" + name + "'");
    }
    Path f = dir.resolve(name);
    if (!Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      throw new NotFoundException("no image '" + name + "' in " + dir.getFileName());
    }
    return f;
  }

  private BlockIndex index(Path file, int bs) throws IOException {
    BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
    String key =
        file.getFileName() + "\0" + bs + "\0" + a.size() + "\0" + a.lastModifiedTime().toMillis();
    BlockIndex idx = indexes.get(key);
    if (idx == null) {
      // Computed outside the map's lock; two racing requests compute the same thing once each.
      idx = BlockIndex.compute(file, bs);
      indexes.put(key, idx);
    }
    return idx;
  }

  /** Computes the indexes of every image now, so the first fetch does not wait. */
  public void prepare(int bs) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      for (Path f : s.filter(Files::isRegularFile).sorted().toList()) {
        if (!f.getFileName().toString().startsWith(".")) {
          index(f, bs);
        }
      }
    }
  }

  private ProtocolResponse list() throws IOException {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path f : s.filter(Files::isRegularFile).sorted().toList()) {
        String n = f.getFileName().toString();
        if (!n.startsWith(".")) {
          sb.append(n).append(' ').append(Files.size(f)).append('\n');
        }
      }
    }
    return ProtocolResponse.text(200, sb.toString());
  }

  private static void copy(Path file, long off, long len, OutputStream out) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ch.transferTo(off, len, java.nio.channels.Channels.newChannel(out));
    }
  }
}
