package org.osfarm.core.store;

import com.github.luben.zstd.Zstd;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;

/** zstd where it saves space, raw bytes where it does not. */
final class Compression {
  static final int RAW = 0;
  static final int ZSTD = 1;

  /** Objects smaller than this are stored raw: a zstd frame would not pay for itself. */
  private static final int MIN_COMPRESS = 64;

  private static final ThreadLocal<byte[]> BUFFER = ThreadLocal.withInitial(() -> new byte[0]);

  private Compression() {}

  /** The encoded form: {@code result.codec} tells which; {@code bytes[0..length)} holds it. */
  record Encoded(int codec, byte[] bytes, int offset, int length) {}

  static Encoded encode(byte[] data, int off, int len, int level) {
    if (len < MIN_COMPRESS || level <= 0) {
      return new Encoded(RAW, data, off, len);
    }
    int bound = (int) Zstd.compressBound(len);
    byte[] buf = BUFFER.get();
    if (buf.length < bound) {
      buf = new byte[Math.max(bound, 64 * 1024)];
      BUFFER.set(buf);
    }
    long n = Zstd.compressByteArray(buf, 0, bound, data, off, len, level);
    if (Zstd.isError(n)) {
      throw new IllegalStateException("zstd: " + Zstd.getErrorName(n));
    }
    // Keep it compressed only if that saves at least 1/32 of the object.
    if (n >= len - (len >> 5)) {
      return new Encoded(RAW, data, off, len);
    }
    return new Encoded(ZSTD, buf, 0, (int) n);
  }

  static byte[] decode(Digest id, int codec, byte[] stored, int rawSize) {
    return decode(id, codec, stored, 0, stored.length, rawSize);
  }

  static byte[] decode(Digest id, int codec, byte[] stored, int off, int len, int rawSize) {
    return switch (codec) {
      case RAW -> stored;
      case ZSTD -> {
        byte[] out = new byte[rawSize];
        long n = Zstd.decompressByteArray(out, 0, rawSize, stored, off, len);
        if (Zstd.isError(n) || n != rawSize) {
          throw new CorruptObjectException(
              "object "
                  + id
                  + " does not decompress: "
                  + (Zstd.isError(n) ? Zstd.getErrorName(n) : "wrong size"));
        }
        yield out;
      }
      default -> throw new CorruptObjectException("object " + id + " has unknown codec " + codec);
    };
  }

  static void verify(Digest id, byte[] data) {
    check(id, Digest.of(data));
  }

  static void verify(Digest id, java.nio.ByteBuffer data) {
    check(id, Digest.of(data));
  }

  private static void check(Digest id, Digest actual) {
    if (!actual.equals(id)) {
      throw new CorruptObjectException(
          "object " + id + " is corrupt: its content hashes to " + actual);
    }
  }
}
