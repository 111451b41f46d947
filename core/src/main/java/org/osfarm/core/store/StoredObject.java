package org.osfarm.core.store;

import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;

/**
 * An object as the store keeps it: its type, its codec, its uncompressed size and its stored
 * (possibly compressed) bytes, not verified. A server hands these out as they are so that the peer,
 * which verifies every object against its id anyway, does the decompressing and hashing once.
 *
 * @param type the object's type
 * @param codec {@link #RAW} or {@link #ZSTD}
 * @param size the uncompressed size
 * @param bytes the stored bytes (the caller owns the array)
 */
public record StoredObject(ObjectType type, int codec, int size, byte[] bytes) {
  /** Stored as is. */
  public static final int RAW = Compression.RAW;

  /** One zstd frame. */
  public static final int ZSTD = Compression.ZSTD;

  /**
   * The uncompressed bytes, verified against {@code id}.
   *
   * @throws CorruptObjectException if the codec is unknown, the bytes do not decompress to {@code
   *     size} bytes, or they do not hash to {@code id}
   */
  public byte[] decode(Digest id) {
    byte[] data = decodeUnverified(id, codec, bytes, size);
    Compression.verify(id, data);
    return data;
  }

  /**
   * Decodes {@code stored[0..storedLength)} of the given codec into a new array of {@code size}
   * bytes without hashing it (for a caller that hashes itself). For {@link #RAW} the length must be
   * {@code size} and the array is returned as is when it is exactly that long.
   *
   * @throws CorruptObjectException if the codec is unknown or the bytes do not decode to {@code
   *     size} bytes
   */
  public static byte[] decode(Digest id, int codec, byte[] stored, int storedLength, int size) {
    if (codec == RAW) {
      if (storedLength != size) {
        throw new CorruptObjectException(
            "object " + id + " is stored raw with " + storedLength + " bytes, not " + size);
      }
      return storedLength == stored.length ? stored : java.util.Arrays.copyOf(stored, size);
    }
    return Compression.decode(id, codec, stored, 0, storedLength, size);
  }

  private static byte[] decodeUnverified(Digest id, int codec, byte[] stored, int size) {
    return decode(id, codec, stored, stored.length, size);
  }
}
