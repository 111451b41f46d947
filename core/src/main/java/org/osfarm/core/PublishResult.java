package org.osfarm.core;

/**
 * What a publish did.
 *
 * @param snapshot the new snapshot's id
 * @param update how the ref moved
 * @param entries entries read
 * @param logicalBytes file bytes read
 * @param newObjects objects that were not yet stored
 * @param newBytes bytes newly stored (compressed, with framing)
 * @param seconds wall time
 */
public record PublishResult(
    Digest snapshot,
    RefUpdate update,
    long entries,
    long logicalBytes,
    long newObjects,
    long newBytes,
    double seconds) {}
