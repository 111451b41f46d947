package org.osfarm.core;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A version of an image: its root directory (metadata and tree), the snapshots it came from, when,
 * why, and provenance as sorted key/value metadata ({@code spec}, {@code builder}, layer keys, the
 * source's tar conventions...).
 *
 * <p>{@code signatures} are Ed25519 signatures over the canonical encoding of the snapshot without
 * its signatures (see {@link Signatures}), kept sorted by key id, at most one per key. Like git's
 * {@code gpgsig} header they are part of the object, so they travel with it and are covered by its
 * id.
 *
 * @param root the root directory's entry (empty name); {@code root.content()} is the root tree
 */
public record Snapshot(
    Entry root,
    List<Digest> parents,
    Instant time,
    String message,
    Map<String, String> metadata,
    List<SnapshotSignature> signatures) {
  public Snapshot {
    parents = List.copyOf(parents);
    metadata = java.util.Collections.unmodifiableMap(new TreeMap<>(metadata));
    message = message == null ? "" : message;
    List<SnapshotSignature> sorted = new ArrayList<>(signatures == null ? List.of() : signatures);
    sorted.sort((a, b) -> Arrays.compareUnsigned(a.keyIdBytes(), b.keyIdBytes()));
    for (int i = 1; i < sorted.size(); i++) {
      if (Arrays.equals(sorted.get(i - 1).keyIdBytes(), sorted.get(i).keyIdBytes())) {
        throw new IllegalArgumentException(
            "two signatures by key " + sorted.get(i).keyId() + " on one snapshot");
      }
    }
    signatures = List.copyOf(sorted);
  }

  /** An unsigned snapshot. */
  public Snapshot(
      Entry root,
      List<Digest> parents,
      Instant time,
      String message,
      Map<String, String> metadata) {
    this(root, parents, time, message, metadata, List.of());
  }

  public Digest tree() {
    return root.content();
  }

  /** This snapshot without signatures: what a signature covers (in its canonical encoding). */
  public Snapshot unsigned() {
    return signatures.isEmpty() ? this : new Snapshot(root, parents, time, message, metadata);
  }

  /** This snapshot with {@code sig} added (replacing an earlier signature by the same key). */
  public Snapshot withSignature(SnapshotSignature sig) {
    List<SnapshotSignature> l = new ArrayList<>();
    for (SnapshotSignature s : signatures) {
      if (!Arrays.equals(s.keyIdBytes(), sig.keyIdBytes())) {
        l.add(s);
      }
    }
    l.add(sig);
    return new Snapshot(root, parents, time, message, metadata, l);
  }
}
