package org.osfarm.transfer;

import org.osfarm.core.Digest;
import org.osfarm.core.RefUpdate;

/**
 * What a pull or push did.
 *
 * @param snapshot the snapshot transferred
 * @param ref how the receiving ref moved
 * @param objectsSent objects that crossed the wire (the receiver lacked them)
 * @param bytesSent their uncompressed bytes
 * @param objectsPresent content objects the receiver already had (from any image) and were skipped
 * @param bytesPresent their bytes (file sizes as the trees record them)
 * @param wireBytes HTTP body bytes sent and received, both directions (compressed)
 * @param seconds wall time
 */
public record TransferResult(
    Digest snapshot,
    RefUpdate ref,
    long objectsSent,
    long bytesSent,
    long objectsPresent,
    long bytesPresent,
    long wireBytes,
    double seconds) {}
