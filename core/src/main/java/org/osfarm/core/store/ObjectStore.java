package org.osfarm.core.store;

import java.io.Closeable;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.osfarm.core.Digest;

/**
 * The object store SPI: immutable, content-addressed objects (id = SHA-256 of the uncompressed
 * bytes) with short-lived {@link Inserter} and {@link Reader} handles, after JGit's {@code
 * ObjectDatabase}.
 *
 * <p>Objects are bounded in size (large files are chunked before they reach the store), so handles
 * deal in byte arrays. Implementations are thread-safe.
 */
public interface ObjectStore extends Closeable {

  /**
   * A new inserter. Objects it writes become visible to readers, and durable, only when {@link
   * Inserter#flush()} returns; closing an inserter without flushing discards what it wrote.
   */
  Inserter newInserter();

  /** A new reader. Every read verifies the object's hash. */
  Reader newReader();

  /** True if a flushed object with this id exists. */
  boolean contains(Digest id);

  /** Type and sizes of a flushed object, if it exists. */
  Optional<ObjectInfo> info(Digest id);

  /** Calls {@code action} once for every flushed object. */
  void forEach(Consumer<ObjectInfo> action);

  /** Bytes the store occupies, framing and indexes included. */
  long storedBytes();

  /**
   * Removes every object {@code keep} rejects, and every leftover of an interrupted write. The
   * caller guarantees no inserter is open (the repository's exclusive lock).
   */
  GcResult retainOnly(Predicate<Digest> keep);

  /**
   * Rescans the backing storage for objects other processes flushed since this store opened, and
   * forgets objects another process's gc removed. Callers hold the repository lock, so the view is
   * exact until they release it.
   */
  void refresh();

  /**
   * Writes objects. Thread-safe: many workers may insert through one inserter at once. Objects
   * already in the store, or already inserted through this inserter, are not written twice.
   */
  interface Inserter extends Closeable {
    /** Inserts {@code len} bytes of {@code data} from {@code off}; returns their id. */
    Digest insert(ObjectType type, byte[] data, int off, int len);

    /** Inserts bytes whose id the caller has already computed (and vouches for). */
    void insert(ObjectType type, Digest id, byte[] data, int off, int len);

    /** Makes everything inserted so far durable and visible. */
    void flush();

    /** New bytes this inserter has written (after compression). */
    long writtenBytes();

    /** Objects this inserter has written (not counting ones the store already had). */
    long writtenObjects();

    /** Discards whatever was not flushed. */
    @Override
    void close();
  }

  /** Reads objects. Not thread-safe; use one per thread. */
  interface Reader extends Closeable {
    /**
     * The bytes of object {@code id}, verified against the id.
     *
     * @throws org.osfarm.core.NotFoundException if there is no such object
     * @throws org.osfarm.core.CorruptObjectException if its bytes do not match its id or its type
     *     is not {@code expected}
     */
    byte[] read(Digest id, ObjectType expected);

    /**
     * As {@link #read}, as a buffer from position 0 to its limit, which callers must only read
     * (absolute gets leave it unchanged, so one buffer may serve several threads). A backend may
     * return a view of its own storage instead of a copy: the pack store returns a slice of the
     * memory-mapped pack for an object stored uncompressed, so a reader of large objects (a FUSE
     * mount) makes no heap copy and no garbage per object.
     *
     * @throws org.osfarm.core.NotFoundException if there is no such object
     * @throws org.osfarm.core.CorruptObjectException if its bytes do not match its id or its type
     *     is not {@code expected}
     */
    default java.nio.ByteBuffer readBuffer(Digest id, ObjectType expected) {
      return java.nio.ByteBuffer.wrap(read(id, expected));
    }

    /**
     * The object as stored (codec and possibly compressed bytes), <em>not</em> verified: for a
     * server whose peer verifies every object itself. A backend that does not keep a codec returns
     * the verified bytes as {@link StoredObject#RAW}.
     *
     * @throws org.osfarm.core.NotFoundException if there is no such object
     * @throws org.osfarm.core.CorruptObjectException if its type is not {@code expected}
     */
    default StoredObject readStored(Digest id, ObjectType expected) {
      byte[] b = read(id, expected);
      return new StoredObject(expected, StoredObject.RAW, b.length, b);
    }

    @Override
    void close();
  }

  /** What a garbage collection removed. */
  record GcResult(long objectsRemoved, long bytesFreed) {}
}
