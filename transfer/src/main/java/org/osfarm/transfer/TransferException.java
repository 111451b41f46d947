package org.osfarm.transfer;

/**
 * A transfer failed: the peer is unreachable, answered with an error, or broke the protocol. The
 * message says what happened and what to do. Nothing unverified was kept. A {@link
 * org.osfarm.core.RepositoryException}, so front ends print it as a user error.
 */
public class TransferException extends org.osfarm.core.RepositoryException {
  public TransferException(String message) {
    super(message);
  }

  public TransferException(String message, Throwable cause) {
    super(message, cause);
  }
}
