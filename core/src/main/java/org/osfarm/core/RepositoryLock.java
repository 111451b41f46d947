package org.osfarm.core;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The repository-wide lock between writers of objects and the garbage collector, across threads and
 * processes: publish, export and every reader hold it shared; gc holds it exclusive, so gc never
 * deletes an object a running publish has deduplicated against. The kernel releases a killed
 * process's lock (fcntl), so a crash never leaves the repository locked.
 *
 * <p>Java file locks belong to the whole JVM, so within one JVM a read-write lock orders threads
 * and the file lock is taken by the first holder and released by the last.
 */
final class RepositoryLock {
  private static final Map<Path, RepositoryLock> LOCKS = new ConcurrentHashMap<>();

  private final Path file;
  private final ReentrantReadWriteLock rw = new ReentrantReadWriteLock();
  private FileChannel channel;
  private FileLock fileLock;
  private int holders;

  private RepositoryLock(Path file) {
    this.file = file;
  }

  static RepositoryLock forFile(Path file) {
    return LOCKS.computeIfAbsent(file.toAbsolutePath().normalize(), RepositoryLock::new);
  }

  /** A held lock; close to release. */
  interface Held extends AutoCloseable {
    @Override
    void close();
  }

  Held shared() {
    rw.readLock().lock();
    try {
      acquireFile(true);
    } catch (RuntimeException e) {
      rw.readLock().unlock();
      throw e;
    }
    return () -> {
      releaseFile();
      rw.readLock().unlock();
    };
  }

  Held exclusive() {
    rw.writeLock().lock();
    try {
      acquireFile(false);
    } catch (RuntimeException e) {
      rw.writeLock().unlock();
      throw e;
    }
    return () -> {
      releaseFile();
      rw.writeLock().unlock();
    };
  }

  private synchronized void acquireFile(boolean shared) {
    if (holders++ > 0) {
      return;
    }
    try {
      channel =
          FileChannel.open(
              file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
      fileLock = channel.lock(0, Long.MAX_VALUE, shared);
    } catch (IOException e) {
      holders--;
      closeQuietly();
      throw new UncheckedIOException("cannot lock the repository (" + file + ")", e);
    }
  }

  private synchronized void releaseFile() {
    if (--holders == 0) {
      closeQuietly();
    }
  }

  private void closeQuietly() {
    try {
      if (fileLock != null) {
        fileLock.release();
      }
      if (channel != null) {
        channel.close();
      }
    } catch (IOException ignored) {
      // closing the channel releases the lock in any case
    }
    fileLock = null;
    channel = null;
  }
}
