package org.osfarm.build;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * Puts a cached output at the place a request asks for, fast and without aliasing.
 *
 * <p>Design: a delivered file never shares an inode with the cache or with another delivery. A hard
 * link would be instant but is not safe: writing into the delivered file (as its owner or as root,
 * whatever its mode) writes the cache entry and every other delivery of it. So each cached output
 * {@code image.F} has a <em>spare</em> {@code image.F.spare}, a private copy (a reflink where the
 * file system can clone, else a copy) that nobody has been given. Delivery renames the spare onto
 * the target (instant; rename moves the only name of that inode, so two concurrent deliveries can
 * never both get it: the loser sees no spare and copies) and then makes a new spare from the
 * pristine {@code image.F}, which is only ever read. Without a spare, or when the target is on
 * another file system, the delivery is a copy ({@code cp --reflink=auto}: a clone where possible).
 * The cost is twice the disk space per cached output and one copy per delivery made off the
 * critical path.
 */
final class OutputDelivery {
  private OutputDelivery() {}

  /** The spare of a cached output. */
  static Path spare(Path cached) {
    return cached.resolveSibling(cached.getFileName() + ".spare");
  }

  /**
   * Delivers {@code cached} at {@code target}.
   *
   * @param detachRefill make the new spare in a process that outlives this one (the command line's
   *     fast path: the answer does not wait for a copy); else before returning
   */
  static void deliver(Path cached, Path target, OutputFormat f, boolean detachRefill)
      throws IOException {
    if (f == OutputFormat.OCI) {
      if (Files.exists(target)) {
        throw new BuildException(
            "output " + target + " exists; an OCI layout needs a new directory");
      }
      ImageBuilder.run(List.of("cp", "-a", "--reflink=auto", cached.toString(), target.toString()));
      return;
    }
    Path spare = spare(cached);
    boolean moved = false;
    try {
      Files.move(
          spare, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      moved = true;
    } catch (NoSuchFileException | AtomicMoveNotSupportedException e) {
      // no spare (taken by a concurrent delivery, or not made yet), or another file system
    } catch (IOException e) {
      if (Files.isDirectory(target)) {
        throw new BuildException("output " + target + " is a directory");
      }
      // e.g. EXDEV reported as a plain IOException: copy
    }
    if (!moved) {
      Path tmp = target.resolveSibling("." + target.getFileName() + ".osfarm-tmp");
      Files.deleteIfExists(tmp);
      copy(cached, tmp);
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
    if (moved || !Files.exists(spare)) {
      refill(cached, detachRefill);
    }
  }

  /** Whether {@link #writeFresh} can write outputs of format {@code f}. */
  static boolean teeable(OutputFormat f) {
    return f == OutputFormat.TAR || f == OutputFormat.TAR_GZ || f == OutputFormat.TAR_ZST;
  }

  /**
   * Writes a tar-family output of a fresh build in one export: the same bytes go to the cache entry
   * {@code cached}, the delivery {@code target} and, unless {@code detachSpare}, the entry's spare
   * (private files, as {@link #deliver} would make them, without reading the first back). Each
   * appears by rename only when complete; the cache entry is made durable (fsync) before it is
   * named, as {@code Repository.export} does, with its writeback started every 64 MiB so that the
   * final fsync has little left to wait for. With {@code detachSpare} (the command line) the spare
   * is copied from the entry by a detached process after the answer, as {@link #deliver} refills
   * it: the build does not wait for a third copy of the image.
   */
  static void writeFresh(
      org.osfarm.core.Repository repo,
      org.osfarm.core.Digest image,
      OutputFormat f,
      Path cached,
      Path target,
      boolean detachSpare)
      throws IOException {
    if (Files.isDirectory(target)) {
      throw new BuildException("output " + target + " is a directory");
    }
    Path c = Files.createTempFile(cached.getParent(), ".image", ".tmp");
    Path s = detachSpare ? null : Files.createTempFile(cached.getParent(), ".spare", ".tmp");
    // mode 0600 like the others (Files.createTempFile), as the copies of deliver preserve it
    Path t =
        Files.createTempFile(
            target.toAbsolutePath().getParent(), "." + target.getFileName(), ".osfarm-tmp");
    try {
      try (java.nio.channels.FileChannel cc = open(c);
          java.nio.channels.FileChannel sc = s == null ? null : open(s);
          java.nio.channels.FileChannel tc = open(t);
          FanOut tee = new FanOut(sc == null ? List.of(cc, tc) : List.of(cc, sc, tc), cc)) {
        repo.exportTar(
            image,
            List.of(),
            org.osfarm.core.ExportFormat.parse(f.label()),
            tee,
            org.osfarm.core.ProgressListener.NONE);
        tee.finish();
        cc.force(true);
      }
      Files.move(t, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      Files.move(c, cached, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      if (s != null) {
        Files.move(
            s, spare(cached), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(c);
      if (s != null) {
        Files.deleteIfExists(s);
      }
      Files.deleteIfExists(t);
    }
    if (s == null) {
      refill(cached, true);
    }
  }

  /**
   * An output stream that writes everything to several files on a thread of its own, so that the
   * export (reading, decompressing and verifying objects) and the writes (three copies of the image
   * into the page cache, about a third of the time on one thread) overlap. Blocks are copied into a
   * bounded queue (8 blocks of at most the exporter's 1 MB buffer); a write error fails the next
   * write or {@link #finish}, and a writer that ended fails the producer instead of blocking it.
   */
  static final class FanOut extends java.io.OutputStream {
    /** Bytes written between two starts of the durable file's writeback. */
    static final long FLUSH_EVERY = 64L << 20;

    private static final byte[] END = new byte[0];
    private final java.util.concurrent.BlockingQueue<byte[]> queue =
        new java.util.concurrent.ArrayBlockingQueue<>(8);
    private final Thread writer;
    private final Thread flusher;
    private final java.util.concurrent.Semaphore due = new java.util.concurrent.Semaphore(0);
    private volatile boolean writing = true;
    private volatile IOException failed;
    private boolean finished;

    FanOut(List<java.nio.channels.FileChannel> out) {
      this(out, null);
    }

    /**
     * @param durable one of {@code out} whose writeback starts every {@link #FLUSH_EVERY} bytes (an
     *     fdatasync on a thread of its own, overlapping the writes), or null
     */
    FanOut(List<java.nio.channels.FileChannel> out, java.nio.channels.FileChannel durable) {
      flusher =
          durable == null
              ? null
              : Thread.ofPlatform()
                  .name("osfarm-output-flusher")
                  .daemon()
                  .start(
                      () -> {
                        try {
                          while (true) {
                            due.acquire();
                            if (!writing) {
                              return;
                            }
                            due.drainPermits(); // one fdatasync covers every block so far
                            durable.force(false);
                          }
                        } catch (IOException e) {
                          failed = e;
                        } catch (InterruptedException e) {
                          // finish() waits for the last one; the caller's own fsync follows
                        }
                      });
      writer =
          Thread.ofPlatform()
              .name("osfarm-output-writer")
              .daemon()
              .start(
                  () -> {
                    long written = 0;
                    try {
                      for (byte[] b; (b = queue.take()) != END; ) {
                        for (java.nio.channels.FileChannel ch : out) {
                          java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b);
                          while (buf.hasRemaining()) {
                            ch.write(buf);
                          }
                        }
                        if (flusher != null
                            && (written + b.length) / FLUSH_EVERY > written / FLUSH_EVERY) {
                          due.release();
                        }
                        written += b.length;
                      }
                    } catch (IOException | RuntimeException e) {
                      // (a channel not open for writing throws an unchecked exception)
                      failed = e instanceof IOException io ? io : new IOException(e.toString(), e);
                      queue.clear();
                    } catch (InterruptedException e) {
                      failed = new java.io.InterruptedIOException("output writer interrupted");
                    } finally {
                      writing = false;
                      due.release();
                    }
                  });
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      check();
      if (len > 0) {
        put(java.util.Arrays.copyOfRange(b, off, off + len));
      }
    }

    /** Waits until every block is written; throws the writer's error, if any. */
    void finish() throws IOException {
      if (!finished) {
        finished = true;
        put(END);
        try {
          writer.join();
          if (flusher != null) {
            flusher.join();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("interrupted");
        }
      }
      check();
    }

    private void put(byte[] b) throws IOException {
      try {
        while (!queue.offer(b, 100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
          if (!writer.isAlive()) {
            check();
            throw new IOException("output writer ended");
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted");
      }
    }

    private void check() throws IOException {
      if (failed != null) {
        throw new IOException("writing the output failed: " + failed.getMessage(), failed);
      }
    }

    /** The same as {@link #finish} (the exporter closes its stream when done). */
    @Override
    public void close() throws IOException {
      finish();
    }
  }

  private static java.nio.channels.FileChannel open(Path p) throws IOException {
    return java.nio.channels.FileChannel.open(
        p,
        java.nio.file.StandardOpenOption.WRITE,
        java.nio.file.StandardOpenOption.CREATE,
        java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
  }

  /** Makes the spare of {@code cached} (if it has none), now or in a detached process. */
  static void refill(Path cached, boolean detach) throws IOException {
    Path spare = spare(cached);
    if (Files.exists(spare)) {
      return;
    }
    if (detach) {
      // at the lowest priority, a second after this answer, in a grandchild: the shell we start
      // exits at once and is reaped here, so no thread of this JVM waits in waitpid() when it
      // exits (the JVM's exit waits up to 300 ms for threads in native code). stdin, stdout and
      // stderr are /dev/null: it holds none of our pipes open.
      String refill =
          "sleep 1; t=$(mktemp \"$1.XXXXXX\") && cp --reflink=auto --sparse=always"
              + " --preserve=mode -- \"$2\" \"$t\" && mv -f -- \"$t\" \"$1\" || rm -f -- \"$t\"";
      Process p =
          new ProcessBuilder(
                  "sh",
                  "-c",
                  "nice -n 19 sh -c \"$1\" osfarm-refill \"$2\" \"$3\" </dev/null >/dev/null 2>&1 &",
                  "osfarm-spawn",
                  refill,
                  spare.toString(),
                  cached.toString())
              .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .redirectError(ProcessBuilder.Redirect.DISCARD)
              .start();
      try {
        p.waitFor();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return;
    }
    Path tmp = Files.createTempFile(cached.getParent(), ".spare", ".tmp");
    try {
      copy(cached, tmp);
      Files.move(tmp, spare, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void copy(Path from, Path to) throws IOException {
    ImageBuilder.run(
        List.of(
            "cp",
            "--reflink=auto",
            "--sparse=always",
            "--preserve=mode",
            from.toString(),
            to.toString()));
  }
}
