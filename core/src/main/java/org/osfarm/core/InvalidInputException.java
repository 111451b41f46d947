package org.osfarm.core;

/**
 * Input to publish (an archive or a directory) is malformed, truncated or hostile. Nothing was
 * stored.
 */
public class InvalidInputException extends RepositoryException {
  public InvalidInputException(String message) {
    super(message);
  }

  public InvalidInputException(String message, Throwable cause) {
    super(message, cause);
  }
}
