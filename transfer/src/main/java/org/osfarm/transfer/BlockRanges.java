package org.osfarm.transfer;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs of block numbers as a block request carries them: pairs of varints {@code (gap, length)},
 * the gap counted from the end of the previous run. Ascending, non-overlapping by construction.
 */
final class BlockRanges {
  private BlockRanges() {}

  /** Encodes ascending block numbers. */
  static byte[] encode(int[] blocks, int n) {
    ByteArrayOutputStream o = new ByteArrayOutputStream(n * 2 + 16);
    long end = 0;
    int i = 0;
    while (i < n) {
      int start = blocks[i];
      int j = i + 1;
      while (j < n && blocks[j] == blocks[j - 1] + 1) {
        j++;
      }
      varint(o, start - end);
      varint(o, j - i);
      end = (long) start + (j - i);
      i = j;
    }
    return o.toByteArray();
  }

  /** Decodes runs as {start, length} pairs, each checked against {@code blocks}. */
  static List<long[]> decode(InputStream in, long blocks) throws IOException {
    List<long[]> runs = new ArrayList<>();
    long end = 0;
    while (true) {
      long gap = varint(in, true);
      if (gap < 0) {
        return runs;
      }
      long len = varint(in, false);
      long start = end + gap;
      if (len <= 0 || start + len > blocks) {
        throw new IllegalArgumentException("block request out of range");
      }
      runs.add(new long[] {start, len});
      end = start + len;
    }
  }

  private static void varint(ByteArrayOutputStream o, long v) {
    while ((v & ~0x7FL) != 0) {
      o.write((int) ((v & 0x7F) | 0x80));
      v >>>= 7;
    }
    o.write((int) v);
  }

  private static long varint(InputStream in, boolean eofOk) throws IOException {
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      int b = in.read();
      if (b < 0) {
        if (eofOk && shift == 0) {
          return -1;
        }
        throw new EOFException("block request truncated");
      }
      v |= (long) (b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
    throw new IllegalArgumentException("block request malformed");
  }
}
