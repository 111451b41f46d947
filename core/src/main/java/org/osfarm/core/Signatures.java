package org.osfarm.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Signing and verifying snapshots.
 *
 * <p>Design (as git's {@code gpgsig} in a commit): a snapshot's signatures are an optional trailing
 * field of its own canonical encoding ({@link ObjectCodec}), and each signature is the Ed25519
 * signature of the canonical encoding of the snapshot <em>without</em> its signatures. The snapshot
 * names its root tree by SHA-256 and every tree names its children, so a signature covers every
 * byte of the image. Signatures travel with the object through pull, push and mounts; an altered
 * snapshot fails its hash, and a snapshot re-hashed after altering fails its signature.
 *
 * <p>A snapshot verifies against a set of trusted keys if at least one signature is by a trusted
 * key and every signature by a trusted key matches; signatures by other keys are ignored. Stateless
 * and thread-safe.
 */
public final class Signatures {
  private Signatures() {}

  /** The bytes a signature of {@code s} covers. */
  public static byte[] signedBytes(Snapshot s) {
    return ObjectCodec.encodeSnapshot(s.unsigned());
  }

  /** {@code s} with a signature by {@code key} added (one by the same key is replaced). */
  public static Snapshot sign(Snapshot s, SigningKey key) {
    byte[] sig = key.sign(signedBytes(s));
    return s.withSignature(new SnapshotSignature(key.publicKey().keyIdBytes(), sig));
  }

  /**
   * Verifies a snapshot object as stored or received (its encoded bytes), for callers that hold raw
   * objects, such as a mount or a pull.
   *
   * @return the trusted key that signed it
   * @throws SignatureException if it is unsigned, signed by no trusted key, carries a signature by
   *     a trusted key that does not match, or is not a snapshot
   */
  public static SignerKey verify(byte[] snapshotObjectBytes, TrustedKeys keys) {
    Digest id = Digest.of(snapshotObjectBytes);
    Snapshot s;
    try {
      s = ObjectCodec.decodeSnapshot(id, snapshotObjectBytes);
    } catch (CorruptObjectException e) {
      throw new SignatureException(SignatureException.Reason.MALFORMED, e.getMessage(), e);
    }
    return verify(id, s, keys);
  }

  /**
   * Verifies a decoded snapshot whose id is {@code id} (used in messages only).
   *
   * @see #verify(byte[], TrustedKeys)
   */
  public static SignerKey verify(Digest id, Snapshot s, TrustedKeys keys) {
    if (s.signatures().isEmpty()) {
      throw new SignatureException(
          SignatureException.Reason.UNSIGNED, "snapshot " + id.hex() + " is not signed");
    }
    byte[] data = signedBytes(s);
    SignerKey good = null;
    List<String> unknown = new ArrayList<>();
    for (SnapshotSignature sig : s.signatures()) {
      var key = keys.find(sig);
      if (key.isEmpty()) {
        unknown.add(sig.keyId());
        continue;
      }
      if (!key.get().verifies(data, sig.valueRef())) {
        throw new SignatureException(
            SignatureException.Reason.BAD_SIGNATURE,
            "snapshot "
                + id.hex()
                + " has a signature by "
                + key.get().describe()
                + " that does not match its content: it was altered after signing");
      }
      if (good == null) {
        good = key.get();
      }
    }
    if (good == null) {
      throw new SignatureException(
          SignatureException.Reason.UNKNOWN_KEY,
          "snapshot "
              + id.hex()
              + " is signed only by untrusted key"
              + (unknown.size() > 1 ? "s " : " ")
              + String.join(", ", unknown)
              + (keys.isEmpty()
                  ? " (no key is trusted: see 'osfarm key trust')"
                  : " (trust it with 'osfarm key trust' if you should)"));
    }
    return good;
  }
}
