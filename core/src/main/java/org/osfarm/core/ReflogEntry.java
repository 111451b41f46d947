package org.osfarm.core;

import java.time.Instant;

/**
 * One change of a ref.
 *
 * @param oldId the value before (null if the ref did not exist)
 * @param newId the value after (null if the ref was deleted)
 */
public record ReflogEntry(Digest oldId, Digest newId, Instant time, String message) {}
