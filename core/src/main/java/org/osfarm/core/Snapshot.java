package org.osfarm.core;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A version of an image: its root directory (metadata and tree), the snapshots it came from, when,
 * why, and provenance as sorted key/value metadata ({@code spec}, {@code builder}, layer keys, the
 * source's tar conventions...).
 *
 * @param root the root directory's entry (empty name); {@code root.content()} is the root tree
 */
public record Snapshot(
    Entry root, List<Digest> parents, Instant time, String message, Map<String, String> metadata) {
  public Snapshot {
    parents = List.copyOf(parents);
    metadata = java.util.Collections.unmodifiableMap(new TreeMap<>(metadata));
    message = message == null ? "" : message;
  }

  public Digest tree() {
    return root.content();
  }
}
