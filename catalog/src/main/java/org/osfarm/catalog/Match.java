package org.osfarm.catalog;

import java.time.Instant;
import java.util.List;
import org.osfarm.core.Digest;

/**
 * A snapshot that matched a {@link FindQuery}, with the entries that made it match.
 *
 * @param refs refs that currently name this snapshot (empty for an older version)
 */
public record Match(
    Digest snapshot, Instant time, String message, List<String> refs, List<Found> entries) {

  /**
   * What matched inside the snapshot.
   *
   * @param path the entry's path ({@code var/lib/dpkg/status} for packages, empty for labels)
   * @param type entry type label ({@code file}, {@code dir}, ...; {@code package}, {@code label})
   * @param digest content digest of a file, else null
   * @param detail the package, label or word that matched, else empty
   */
  public record Found(String path, String type, long size, Digest digest, String detail) {}
}
