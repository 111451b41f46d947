package org.osfarm.core;

/** Receives progress and warnings. Called from the working thread; must be quick. */
public interface ProgressListener {
  ProgressListener NONE = new ProgressListener() {};

  /** Periodic progress (a few times per second at most). */
  default void progress(Progress p) {}

  /** Something the user should know that did not stop the operation. */
  default void warning(String message) {}
}
