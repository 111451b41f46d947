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
          200, "application/octet-stream", Map.of(), size, out -> copy(file, 0, size, out));
    }
    if (parts.length == 2 && parts[1].equals("index") && r.method().equals("GET")) {
      byte[] b = index(file, bs).encode();
      return ProtocolResponse.bytes(200, "application/x-osfarm-block-index", Map.of(), b);
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
          out -> {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
              ByteBuffer buf = ByteBuffer.allocate(1 << 20);
              for (long[] run : runs) {
                long off = run[0] * bs;
                long end = Math.min(idx.size(), (run[0] + run[1]) * bs);
                while (off < end) {
                  buf.clear().limit((int) Math.min(buf.capacity(), end - off));
                  int n = ch.read(buf, off);
                  if (n < 0) {
                    throw new IOException(file + " shrank while it was served");
                  }
                  out.write(buf.array(), 0, n);
                  off += n;
                }
              }
            }
          });
    }
    return ProtocolResponse.text(404, "no such route: " + r.method() + " " + p + "\n");
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
