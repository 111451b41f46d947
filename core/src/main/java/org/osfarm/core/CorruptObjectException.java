package org.osfarm.core;

/** An object in the store is damaged: its bytes do not hash to its id, or it does not decode. */
public class CorruptObjectException extends RepositoryException {
  public CorruptObjectException(String message) {
    super(message);
  }

  public CorruptObjectException(String message, Throwable cause) {
    super(message, cause);
  }
}
