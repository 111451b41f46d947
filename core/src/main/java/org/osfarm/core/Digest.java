package org.osfarm.core;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A SHA-256 digest: the identity of every object in the repository.
 *
 * <p>Immutable value type compared by its four 64-bit words (as JGit's {@code AnyObjectId}); never
 * passed around as a String. Instances are created only through the validating static factories.
 */
public final class Digest implements Comparable<Digest> {
  /** Length of a digest in bytes. */
  public static final int LENGTH = 32;

  /** Length of a digest in hexadecimal characters. */
  public static final int HEX_LENGTH = 64;

  private static final HexFormat HEX = HexFormat.of();

  private final long w0;
  private final long w1;
  private final long w2;
  private final long w3;

  private Digest(long w0, long w1, long w2, long w3) {
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.w3 = w3;
  }

  /** Reads a digest from {@code LENGTH} bytes at {@code offset}. */
  public static Digest fromBytes(byte[] b, int offset) {
    if (b.length - offset < LENGTH) {
      throw new IllegalArgumentException("need 32 bytes for a digest, have " + (b.length - offset));
    }
    return new Digest(
        word(b, offset), word(b, offset + 8), word(b, offset + 16), word(b, offset + 24));
  }

  /** Parses 64 hexadecimal digits (either case). */
  public static Digest fromHex(CharSequence hex) {
    if (!isHex(hex)) {
      throw new IllegalArgumentException("not a SHA-256 digest (64 hex digits): '" + hex + "'");
    }
    return fromBytes(HEX.parseHex(hex.toString().toLowerCase(java.util.Locale.ROOT)), 0);
  }

  /** True if {@code s} is exactly 64 hexadecimal digits. */
  public static boolean isHex(CharSequence s) {
    if (s.length() != HEX_LENGTH) {
      return false;
    }
    for (int i = 0; i < HEX_LENGTH; i++) {
      if (Character.digit(s.charAt(i), 16) < 0) {
        return false;
      }
    }
    return true;
  }

  /** The digest of {@code data}. */
  public static Digest of(byte[] data) {
    return of(data, 0, data.length);
  }

  /** The digest of {@code len} bytes of {@code data} from {@code off}. */
  public static Digest of(byte[] data, int off, int len) {
    MessageDigest md = newMessageDigest();
    md.update(data, off, len);
    return fromBytes(md.digest(), 0);
  }

  /**
   * The digest of the bytes of {@code data} between its position and its limit (left as they are).
   */
  public static Digest of(java.nio.ByteBuffer data) {
    MessageDigest md = newMessageDigest();
    md.update(data.duplicate());
    return fromBytes(md.digest(), 0);
  }

  /** Completes {@code md} and wraps its result. */
  public static Digest of(MessageDigest md) {
    return fromBytes(md.digest(), 0);
  }

  /**
   * True if {@link #newMessageDigest} hashes with the system's libcrypto, at full speed from the
   * first byte; false if with the JDK's, which needs its caller compiled (warmed up) for that.
   */
  public static boolean isNativeSha256() {
    return NativeSha256.AVAILABLE;
  }

  /**
   * A fresh SHA-256 {@link MessageDigest}: the system's libcrypto when it can be used (full speed
   * from the first byte, see {@link NativeSha256}), else the JDK's.
   */
  public static MessageDigest newMessageDigest() {
    if (NativeSha256.AVAILABLE) {
      return new NativeSha256();
    }
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  private static long word(byte[] b, int o) {
    long v = 0;
    for (int i = 0; i < 8; i++) {
      v = (v << 8) | (b[o + i] & 0xff);
    }
    return v;
  }

  /** Writes the 32 bytes of this digest into {@code out} at {@code offset}. */
  public void copyTo(byte[] out, int offset) {
    put(out, offset, w0);
    put(out, offset + 8, w1);
    put(out, offset + 16, w2);
    put(out, offset + 24, w3);
  }

  private static void put(byte[] b, int o, long v) {
    for (int i = 7; i >= 0; i--) {
      b[o + i] = (byte) v;
      v >>>= 8;
    }
  }

  /** The 32 bytes of this digest. */
  public byte[] toBytes() {
    byte[] b = new byte[LENGTH];
    copyTo(b, 0);
    return b;
  }

  /** 64 lowercase hexadecimal digits. */
  public String hex() {
    return HEX.formatHex(toBytes());
  }

  /** The first {@code n} hex digits, for display. */
  public String shortHex(int n) {
    return hex().substring(0, n);
  }

  /** True if this digest's hex form starts with {@code prefix} (lowercase hex). */
  public boolean startsWith(String prefix) {
    return hex().startsWith(prefix);
  }

  /** The first byte, used to fan objects out. */
  public int firstByte() {
    return (int) (w0 >>> 56);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Digest d && d.w0 == w0 && d.w1 == w1 && d.w2 == w2 && d.w3 == w3;
  }

  @Override
  public int hashCode() {
    return (int) w1; // uniformly distributed already
  }

  @Override
  public int compareTo(Digest o) {
    int c = Long.compareUnsigned(w0, o.w0);
    if (c == 0) {
      c = Long.compareUnsigned(w1, o.w1);
    }
    if (c == 0) {
      c = Long.compareUnsigned(w2, o.w2);
    }
    if (c == 0) {
      c = Long.compareUnsigned(w3, o.w3);
    }
    return c;
  }

  @Override
  public String toString() {
    return hex();
  }
}
