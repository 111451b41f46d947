package org.osfarm.core;

/**
 * Base of every error a user of the repository can hit. The message says what went wrong and, where
 * there is one, what to do about it; front ends print it as is.
 */
public class RepositoryException extends RuntimeException {
  public RepositoryException(String message) {
    super(message);
  }

  public RepositoryException(String message, Throwable cause) {
    super(message, cause);
  }
}
