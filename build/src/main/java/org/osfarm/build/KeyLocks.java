package org.osfarm.build;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Exclusive locks by name, across threads (a lock per name) and processes (a kernel file lock,
 * freed when a process dies). A builder takes one per layer key and per output, so identical
 * concurrent requests build once: the second waits, then finds the result cached.
 */
final class KeyLocks {
  private final Path dir;
  private final ConcurrentHashMap<String, ReentrantLock> local = new ConcurrentHashMap<>();

  KeyLocks(Path dir) {
    this.dir = dir;
  }

  /** A held lock; close to release. */
  interface Held extends AutoCloseable {
    @Override
    void close();
  }

  Held lock(String name) throws IOException {
    ReentrantLock l = local.computeIfAbsent(name, k -> new ReentrantLock());
    l.lock();
    try {
      Files.createDirectories(dir);
      FileChannel ch =
          FileChannel.open(
              dir.resolve(name + ".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock fl = ch.lock();
      return () -> {
        try {
          fl.release();
          ch.close();
        } catch (IOException e) {
          // closing the channel releases the lock anyway
        } finally {
          l.unlock();
        }
      };
    } catch (IOException | RuntimeException e) {
      l.unlock();
      throw e;
    }
  }
}
