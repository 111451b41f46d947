package org.osfarm.catalog;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.osfarm.core.Digest;

/**
 * How a snapshot came to be.
 *
 * @param metadata everything the snapshot records: {@code spec}, {@code builder}, layer keys
 *     ({@code layer.*}), {@code derived-from}, {@code overlay.*}, {@code install.*}, the source
 * @param lineage its parents and bases, and theirs, nearest first
 * @param labels its labels
 */
public record Provenance(
    Digest snapshot,
    Instant time,
    String message,
    List<String> refs,
    Map<String, String> metadata,
    List<Related> lineage,
    Map<String, String> labels) {}
