package org.osfarm.catalog;

import java.time.Instant;
import java.util.List;
import org.osfarm.core.Digest;

/**
 * A snapshot related to another: a parent (earlier version of a ref), a base (the image an overlay
 * or install was made from), or one derived from it.
 *
 * @param kind {@code parent} or {@code base} (how the later snapshot relates to the earlier)
 * @param depth 1 for a direct relation, 2 for one step further, ...
 * @param present false if the snapshot is not in the repository (pruned history)
 */
public record Related(
    Digest snapshot,
    String kind,
    int depth,
    boolean present,
    Instant time,
    String message,
    List<String> refs) {}
