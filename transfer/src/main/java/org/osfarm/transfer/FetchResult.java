package org.osfarm.transfer;

import org.osfarm.core.Digest;

/**
 * What a block-level fetch did.
 *
 * @param root the file's verified Merkle root (see {@link BlockIndex#root})
 * @param size bytes of the file
 * @param reusedBytes bytes copied from local seeds
 * @param zeroBytes bytes of all-zero blocks, written without a source
 * @param resumedBytes bytes already verified by an earlier, interrupted fetch
 * @param fetchedBytes block bytes received from the peer (refetches included)
 * @param wireBytes HTTP body bytes both ways (index, request, blocks)
 * @param seconds wall time until the output was fsynced, verified and in place
 * @param localSeconds wall time of the local copying (seeds), which overlaps the network
 * @param netSeconds wall time of the block stream
 * @param refetchedGroups groups whose seed blocks did not verify and were fetched again
 */
public record FetchResult(
    Digest root,
    long size,
    long reusedBytes,
    long zeroBytes,
    long resumedBytes,
    long fetchedBytes,
    long wireBytes,
    double seconds,
    double localSeconds,
    double netSeconds,
    int refetchedGroups) {

  /** Observed bandwidth s/t in bytes per second. */
  public double observedBandwidth() {
    return size / seconds;
  }

  /**
   * The paper's serial bound s/(s_I/v_d + s_D/v_n) in bytes per second, for a local copy rate
   * {@code vd} and a network rate {@code vn} (bytes per second).
   */
  public double serialBound(double vd, double vn) {
    return size / ((reusedBytes + zeroBytes) / vd + fetchedBytes / vn);
  }

  /** The overlapped bound s/max(s_I/v_d, s_D/v_n) in bytes per second. */
  public double overlappedBound(double vd, double vn) {
    return size / Math.max((reusedBytes + zeroBytes) / vd, fetchedBytes / vn);
  }
}
