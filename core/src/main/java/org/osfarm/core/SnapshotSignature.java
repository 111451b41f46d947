package org.osfarm.core;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * One signature embedded in a snapshot: the id of the signing key (the first 8 bytes of the SHA-256
 * of its raw 32-byte Ed25519 public key) and the 64-byte Ed25519 signature of the snapshot's
 * canonical encoding without signatures.
 */
public final class SnapshotSignature {
  /** Ed25519, the only algorithm so far (its code in the encoding). */
  public static final int ED25519 = 1;

  public static final int KEY_ID_LENGTH = 8;
  public static final int SIGNATURE_LENGTH = 64;

  private final byte[] keyId;
  private final byte[] value;

  public SnapshotSignature(byte[] keyId, byte[] value) {
    if (keyId.length != KEY_ID_LENGTH || value.length != SIGNATURE_LENGTH) {
      throw new IllegalArgumentException(
          "an Ed25519 signature record has an 8-byte key id and a 64-byte signature");
    }
    this.keyId = keyId.clone();
    this.value = value.clone();
  }

  /** The key id as 16 hex digits. */
  public String keyId() {
    return HexFormat.of().formatHex(keyId);
  }

  byte[] keyIdBytes() {
    return keyId;
  }

  public byte[] keyIdCopy() {
    return keyId.clone();
  }

  public byte[] value() {
    return value.clone();
  }

  byte[] valueRef() {
    return value;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SnapshotSignature s
        && Arrays.equals(keyId, s.keyId)
        && Arrays.equals(value, s.value);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(keyId) * 31 + Arrays.hashCode(value);
  }

  @Override
  public String toString() {
    return "ed25519 signature by key " + keyId();
  }
}
