package org.osfarm.build;

/**
 * A build that failed. The message names the problem (and the tail of the backend's log when a
 * program failed). Nothing half-built is published: layer refs move only after a layer is complete.
 */
public class BuildException extends RuntimeException {
  public BuildException(String message) {
    super(message);
  }

  public BuildException(String message, Throwable cause) {
    super(message, cause);
  }
}
