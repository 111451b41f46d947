package org.osfarm.mount;

import java.io.IOException;
import org.osfarm.core.Digest;

/**
 * The {@code --trust KEYFILE} hook: checks a snapshot's signature before the mount serves anything
 * from it (and again on every {@code --follow} switch). The mount itself only calls it; the
 * signature scheme (Ed25519) lives with the repository.
 */
public interface SnapshotVerifier {
  /** No signature check (a mount without {@code --trust}). */
  SnapshotVerifier NONE = (source, snapshot, bytes) -> {};

  /**
   * Returns normally when {@code snapshot} is signed by a trusted key.
   *
   * @param source where the snapshot came from (to fetch a detached signature, if any)
   * @param snapshot the snapshot's id
   * @param bytes the snapshot object's verified bytes
   * @throws IOException (or a runtime exception) when the signature is missing or wrong; the mount
   *     then refuses to serve the snapshot
   */
  void verify(ObjectSource source, Digest snapshot, byte[] bytes) throws IOException;
}
