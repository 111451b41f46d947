package org.osfarm.core.store;

import org.osfarm.core.Digest;

/**
 * What the store knows about one object without reading it.
 *
 * @param id the SHA-256 of the uncompressed bytes
 * @param type what the object holds
 * @param size the uncompressed size in bytes
 * @param storedSize the bytes the object takes in the store (compressed, without framing)
 */
public record ObjectInfo(Digest id, ObjectType type, long size, long storedSize) {}
