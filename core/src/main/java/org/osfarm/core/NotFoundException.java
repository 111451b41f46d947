package org.osfarm.core;

/** A ref, snapshot or path that does not exist. */
public class NotFoundException extends RepositoryException {
  public NotFoundException(String message) {
    super(message);
  }

  public NotFoundException(String message, Throwable cause) {
    super(message, cause);
  }
}
