package org.osfarm.build;

/** Receives a build's progress. Called from the building thread and a log reader; must be quick. */
public interface BuildListener {
  BuildListener NONE = new BuildListener() {};

  /** A step began, e.g. "layer base: building". */
  default void step(String message) {}

  /** A line of a backend's log (mmdebstrap, apt, mke2fs...). */
  default void log(String line) {}
}
