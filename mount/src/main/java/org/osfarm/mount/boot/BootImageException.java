package org.osfarm.mount.boot;

import java.io.IOException;

/** The boot image cannot be made or booted; the message says what is missing and what to do. */
public final class BootImageException extends IOException {
  public BootImageException(String message) {
    super(message);
  }

  public BootImageException(String message, Throwable cause) {
    super(message, cause);
  }
}
