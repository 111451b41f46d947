package org.osfarm.core;

/** How a compare-and-swap ref update ended (expected outcomes are results, not exceptions). */
public enum RefUpdate {
  /** The ref did not exist and now does. */
  CREATED,
  /** The ref moved from the expected value to the new one. */
  UPDATED,
  /** The ref already had the new value. */
  NO_CHANGE,
  /** The ref was deleted. */
  DELETED,
  /** The ref's current value was not the expected one; nothing changed. */
  REJECTED_CHANGED
}
