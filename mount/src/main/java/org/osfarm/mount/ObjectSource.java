package org.osfarm.mount;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.osfarm.core.Digest;

/**
 * Where a mount gets its objects: a local repository or a remote osfarm host. The mount's disk
 * cache sits in front of a source; the file system never talks to the network directly.
 *
 * <p>Implementations are thread-safe: FUSE calls arrive on many threads.
 */
public interface ObjectSource extends Closeable {
  /**
   * Resolves a ref name (e.g. {@code images/web}, {@code channels/production}) or a snapshot id to
   * a snapshot id.
   *
   * @throws org.osfarm.core.NotFoundException when nothing by that name exists
   * @throws IOException when the source cannot be reached
   */
  Digest resolve(String refOrId) throws IOException;

  /**
   * The uncompressed bytes of one object, verified against its id before they are returned.
   *
   * @throws org.osfarm.core.NotFoundException when the source does not hold the object
   * @throws org.osfarm.core.CorruptObjectException when the bytes do not hash to {@code id}
   * @throws IOException when the source cannot be reached
   */
  byte[] read(Digest id) throws IOException;

  /**
   * As {@link #read}, as a buffer from position 0 to its limit that callers only read with absolute
   * gets. A local repository returns a view of its memory-mapped pack (no heap copy); the default
   * wraps {@link #read}.
   */
  default ByteBuffer readBuffer(Digest id) throws IOException {
    return ByteBuffer.wrap(read(id));
  }

  /**
   * The bytes of {@code b} from 0 to its limit: its array when it wraps a whole one, else a copy.
   */
  static byte[] bytes(ByteBuffer b) {
    if (b.hasArray() && b.arrayOffset() == 0 && b.array().length == b.limit()) {
      return b.array();
    }
    byte[] a = new byte[b.limit()];
    b.get(0, a);
    return a;
  }

  /**
   * Hints that these objects will be read soon, in this order (sequential read-ahead). A remote
   * source may start fetching them; the default does nothing.
   */
  default void prefetch(List<Digest> ids) {}

  /** Bytes received over the network so far (0 for a local source). */
  default long bytesFetched() {
    return 0;
  }

  /** A short description for logs and errors, e.g. the URL or directory. */
  String describe();
}
