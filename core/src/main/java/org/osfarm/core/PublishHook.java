package org.osfarm.core;

/**
 * Told about every successful {@link Repository#publish}, in the publishing process, after the ref
 * moved. Implementations are found with {@link java.util.ServiceLoader} (the catalog registers one
 * to index each new snapshot as it is published). A hook that throws does not undo the publish; its
 * message is passed to the publish's listener as a warning.
 */
public interface PublishHook {
  /** {@code ref} now names {@code snapshot}, just published into {@code repo}. */
  void published(Repository repo, String ref, Digest snapshot);
}
