package org.osfarm.build;

/** A spec the builder cannot use: malformed, unknown class, group or package. Nothing was built. */
public class SpecException extends BuildException {
  public SpecException(String message) {
    super(message);
  }

  public SpecException(String message, Throwable cause) {
    super(message, cause);
  }
}
