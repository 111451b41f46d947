package org.osfarm.mount;

import java.io.IOException;
import java.nio.file.Path;
import org.osfarm.core.Digest;
import org.osfarm.core.SignatureException;
import org.osfarm.core.Signatures;
import org.osfarm.core.TrustedKeys;

/**
 * {@code --trust KEYFILE}: a snapshot is served only when it carries an Ed25519 signature by one of
 * the keys in KEYFILE (lines {@code ed25519 BASE64 name}, as {@code osfarm key show} prints). With
 * the snapshot's id already checked against its bytes, and every tree and file below it checked
 * against its id, a good signature covers everything the mount serves.
 */
public final class TrustedKeysVerifier implements SnapshotVerifier {
  private final Path file;
  private final TrustedKeys keys;

  /**
   * @throws IOException when the key file cannot be read or holds no valid key line
   */
  public TrustedKeysVerifier(Path file) throws IOException {
    this.file = file;
    try {
      this.keys = TrustedKeys.load(file);
    } catch (RuntimeException e) {
      throw new IOException("--trust " + file + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void verify(ObjectSource source, Digest snapshot, byte[] bytes) throws IOException {
    try {
      Signatures.verify(bytes, keys);
    } catch (SignatureException e) {
      throw new IOException(
          "snapshot "
              + snapshot
              + " from "
              + source.describe()
              + " is refused: "
              + e.getMessage()
              + " (trusted keys: "
              + file
              + ")",
          e);
    }
  }
}
