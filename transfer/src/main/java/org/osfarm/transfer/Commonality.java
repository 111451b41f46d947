package org.osfarm.transfer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** How much of one image's content another holds, block by block (the paper's Table 1). */
public final class Commonality {
  /**
   * @param blocks full blocks of A
   * @param found blocks of A whose content is somewhere in B
   * @param zeroBlocks blocks of A that are all zeros
   * @param foundNonZero non-zero blocks of A found in B
   */
  public record Result(long blocks, long found, long zeroBlocks, long foundNonZero) {
    public double fraction() {
      return blocks == 0 ? 0 : (double) found / blocks;
    }

    public double fractionNonZero() {
      long nz = blocks - zeroBlocks;
      return nz == 0 ? 0 : (double) foundNonZero / nz;
    }
  }

  private Commonality() {}

  /** Compares the full blocks of {@code a} with those of {@code b} (files or directories). */
  public static Result of(Path a, Path b, int blockSize, SeedIndex index) throws IOException {
    Set<Long> inB = new HashSet<>();
    for (Path f : SeedIndex.expand(List.of(b))) {
      for (long k : index.get(f, blockSize).keys()) {
        inB.add(k);
      }
    }
    long zeroKey =
        java.nio.ByteBuffer.wrap(BlockFetcher.sha256(new byte[blockSize], blockSize)).getLong();
    long n = 0;
    long found = 0;
    long zero = 0;
    long foundNz = 0;
    for (Path f : SeedIndex.expand(List.of(a))) {
      for (long k : index.get(f, blockSize).keys()) {
        n++;
        boolean z = k == zeroKey;
        boolean hit = inB.contains(k);
        if (z) {
          zero++;
        }
        if (hit) {
          found++;
          if (!z) {
            foundNz++;
          }
        }
      }
    }
    return new Result(n, found, zero, foundNz);
  }
}
