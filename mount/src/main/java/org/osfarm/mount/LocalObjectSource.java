package org.osfarm.mount;

import java.util.Optional;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.Repository;
import org.osfarm.core.store.ObjectInfo;
import org.osfarm.core.store.ObjectStore;

/**
 * An {@link ObjectSource} over a repository directory on this host. The store verifies every object
 * it reads. Thread-safe: each read takes its own short-lived store reader.
 */
public final class LocalObjectSource implements ObjectSource {
  private final java.util.concurrent.atomic.AtomicBoolean closed =
      new java.util.concurrent.atomic.AtomicBoolean();
  private final Repository repo;
  private final boolean owned;
  private final java.util.concurrent.atomic.AtomicLong storedRead =
      new java.util.concurrent.atomic.AtomicLong();

  /** Opens the repository at {@code dir}; {@link #close} closes it. */
  public static LocalObjectSource open(java.nio.file.Path dir) {
    return new LocalObjectSource(Repository.open(dir), true);
  }

  /** Reads through an open repository the caller keeps owning. */
  public LocalObjectSource(Repository repo) {
    this(repo, false);
  }

  private LocalObjectSource(Repository repo, boolean owned) {
    this.repo = repo;
    this.owned = owned;
  }

  @Override
  public Digest resolve(String refOrId) {
    return repo.resolve(refOrId);
  }

  @Override
  public byte[] read(Digest id) {
    return ObjectSource.bytes(readBuffer(id));
  }

  /** A view of the mapped pack for an object stored uncompressed, verified; no copy. */
  @Override
  public java.nio.ByteBuffer readBuffer(Digest id) {
    ObjectInfo info = locate(id);
    try (ObjectStore.Reader r = repo.store().newReader()) {
      java.nio.ByteBuffer b = r.readBuffer(id, info.type());
      storedRead.addAndGet(info.storedSize());
      return b;
    }
  }

  private ObjectInfo locate(Digest id) {
    ObjectStore store = repo.store();
    Optional<ObjectInfo> info = store.info(id);
    if (info.isEmpty()) {
      store.refresh(); // published by another process since we opened the repository
      info = store.info(id);
    }
    if (info.isEmpty()) {
      throw new NotFoundException("no object " + id + " in " + describe());
    }
    return info.get();
  }

  /**
   * Bytes read from the repository's disk so far: objects as stored (zstd-compressed where that
   * saves space), which is also about what a compressed transfer of them would move.
   */
  public long storedBytesRead() {
    return storedRead.get();
  }

  @Override
  public String describe() {
    return repo.directory().toString();
  }

  @Override
  public void close() {
    if (owned && closed.compareAndSet(false, true)) {
      repo.close();
    }
  }
}
