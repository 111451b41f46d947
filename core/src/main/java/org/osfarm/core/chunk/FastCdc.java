package org.osfarm.core.chunk;

/**
 * FastCDC content-defined chunking (Xia et al., "FastCDC: a Fast and Efficient Content-Defined
 * Chunking Approach for Data Deduplication", USENIX ATC 2016).
 *
 * <p>A gear rolling hash {@code h = (h << 1) + GEAR[byte]} is tested against a mask at every byte;
 * a cut falls where the masked bits are zero. Normalized chunking uses a stricter mask (more bits)
 * before the average size and a looser one after, which narrows the size distribution. Bytes before
 * {@code min} are skipped (the hash still has 64 bytes of history by the time it matters). Because
 * the cut depends only on the bytes around it, an insertion moves the boundaries near it and leaves
 * the others, so similar large files share most chunks.
 *
 * <p>The gear table comes from a fixed seed: chunk boundaries, and so object ids, are stable across
 * versions and machines. Changing it (or the sizes) changes how new files are cut, never how stored
 * ones are read.
 */
public final class FastCdc {
  /** Files at least this large are chunked. */
  public static final int MIN_CHUNKED_FILE = 256 * 1024;

  public static final int MIN_SIZE = 32 * 1024;
  public static final int AVG_SIZE = 128 * 1024;
  public static final int MAX_SIZE = 512 * 1024;

  private static final long[] GEAR = new long[256];

  static {
    long x = 0x6f7366_61726d31L; // "osfarm1"
    for (int i = 0; i < 256; i++) {
      x += 0x9E3779B97F4A7C15L; // SplitMix64
      long z = x;
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      GEAR[i] = z ^ (z >>> 31);
    }
  }

  private final int min;
  private final int avg;
  private final int max;
  private final long maskS;
  private final long maskL;

  public FastCdc() {
    this(MIN_SIZE, AVG_SIZE, MAX_SIZE);
  }

  public FastCdc(int min, int avg, int max) {
    if (!(0 < min && min < avg && avg < max) || Integer.bitCount(avg) != 1) {
      throw new IllegalArgumentException("need 0 < min < avg < max, avg a power of two");
    }
    this.min = min;
    this.avg = avg;
    this.max = max;
    int bits = Integer.numberOfTrailingZeros(avg);
    this.maskS = topBits(bits + 2);
    this.maskL = topBits(bits - 2);
  }

  private static long topBits(int n) {
    return ((1L << n) - 1) << (64 - n);
  }

  public int maxSize() {
    return max;
  }

  /**
   * The length of the next chunk of {@code buf[off, off+len)}. If {@code len < max} the caller must
   * be at the end of the data (no more bytes follow); then the rest may be one chunk.
   */
  public int cut(byte[] buf, int off, int len) {
    if (len <= min) {
      return len;
    }
    int end = Math.min(len, max);
    int normal = Math.min(end, avg);
    long h = 0;
    int i = min;
    for (; i < normal; i++) {
      h = (h << 1) + GEAR[buf[off + i] & 0xff];
      if ((h & maskS) == 0) {
        return i + 1;
      }
    }
    for (; i < end; i++) {
      h = (h << 1) + GEAR[buf[off + i] & 0xff];
      if ((h & maskL) == 0) {
        return i + 1;
      }
    }
    return end;
  }
}
