package org.osfarm.core;

/**
 * Size facts of a repository.
 *
 * @param refs live refs
 * @param snapshots snapshots reachable from refs and reflogs
 * @param objects objects in the store
 * @param logicalBytes file bytes over all reachable snapshots, each snapshot counted in full
 * @param uniqueContentBytes distinct file content bytes (what file-level dedup leaves)
 * @param storedBytes bytes the store occupies on disk
 */
public record RepositoryStats(
    long refs,
    long snapshots,
    long objects,
    long logicalBytes,
    long uniqueContentBytes,
    long storedBytes) {
  /** Logical bytes per stored byte. */
  public double dedupRatio() {
    return storedBytes == 0 ? 0 : (double) logicalBytes / storedBytes;
  }
}
