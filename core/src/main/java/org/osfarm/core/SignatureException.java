package org.osfarm.core;

/**
 * A snapshot's signatures do not satisfy a check: it is unsigned, signed only by keys that are not
 * trusted, carries a signature that does not match its content (altered after signing), or does not
 * even decode.
 */
public class SignatureException extends RepositoryException {
  /** Why the check failed. */
  public enum Reason {
    /** The snapshot carries no signature. */
    UNSIGNED,
    /** Every signature is by a key the trusted keys do not list. */
    UNKNOWN_KEY,
    /** A signature by a trusted key does not match the snapshot: it was altered after signing. */
    BAD_SIGNATURE,
    /** The bytes are not a snapshot. */
    MALFORMED
  }

  private final Reason reason;

  public SignatureException(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public SignatureException(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}
