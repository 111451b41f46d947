package org.osfarm.core;

/** A ref changed under a compare-and-swap update. */
public class RefConflictException extends RepositoryException {
  public RefConflictException(String message) {
    super(message);
  }

  public RefConflictException(String message, Throwable cause) {
    super(message, cause);
  }
}
