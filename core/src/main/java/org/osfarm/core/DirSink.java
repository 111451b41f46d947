package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import org.osfarm.core.posix.Posix;

/**
 * Writes an export into a directory with everything tar would restore: owners, modes with
 * setuid/setgid/sticky, times (also of symlinks), extended attributes and ACLs, devices, fifos,
 * hard links. Every call is relative to a descriptor of a directory this export created, and
 * nothing is ever opened through a symlink, so no entry of the image (a symlink to {@code /etc},
 * say) can make it write outside the target. Directory metadata is applied on the way out so
 * children can be created first. Without root, ownership and device nodes cannot be restored; each
 * such case is a warning.
 */
final class DirSink implements ExportSink {
  private static final byte[] DOT = {'.'};

  private final int rootFd;
  private final ProgressListener listener;
  private final Deque<Integer> fds = new ArrayDeque<>();
  private final Arena arena = Arena.ofConfined();
  private final MemorySegment buf = arena.allocate(1 << 20);
  private final byte[] heap = new byte[1 << 20];
  private Entry rootEntry;
  private boolean chownWarned;

  DirSink(Path target, ProgressListener listener) throws IOException {
    this.listener = listener;
    if (Files.exists(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.isDirectory(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        throw new RepositoryException("export target " + target + " exists and is not a directory");
      }
      try (var s = Files.list(target)) {
        if (s.findAny().isPresent()) {
          throw new RepositoryException(
              "export target " + target + " is not empty; choose a new or empty directory");
        }
      }
    } else {
      Files.createDirectories(target);
    }
    byte[] p = target.toAbsolutePath().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    rootFd =
        Posix.openAt(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
    fds.push(rootFd);
  }

  private static byte[] base(byte[] path) {
    int i = path.length - 1;
    while (i >= 0 && path[i] != '/') {
      i--;
    }
    return java.util.Arrays.copyOfRange(path, i + 1, path.length);
  }

  @Override
  public void root(Entry root) {
    this.rootEntry = root;
  }

  @Override
  public void enter(byte[] path, Entry dir) throws IOException {
    int parent = fds.peek();
    byte[] name = base(path);
    Posix.mkdirAt(parent, name, 0700);
    fds.push(Posix.openAt(parent, name, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0));
  }

  @Override
  public void leave(byte[] path, Entry dir) throws IOException {
    Posix.close(fds.pop());
    applyMetadata(fds.peek(), base(path), dir, path);
  }

  @Override
  public void entry(byte[] path, Entry e, InputStream content) throws IOException {
    int dir = fds.peek();
    byte[] name = base(path);
    switch (e.type()) {
      case FILE -> {
        int fd =
            Posix.openAt(
                dir, name, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL | Posix.O_NOFOLLOW, 0600);
        try {
          long left = e.size();
          while (left > 0) {
            int n = content.read(heap, 0, (int) Math.min(heap.length, left));
            if (n < 0) {
              throw new IOException("content of " + Bytes.escape(path) + " ended early");
            }
            MemorySegment.copy(heap, 0, buf, ValueLayout.JAVA_BYTE, 0, n);
            Posix.writeFully(fd, buf, n);
            left -= n;
          }
        } finally {
          Posix.close(fd);
        }
      }
      case HARDLINK -> {
        // e.link() is a file this export already wrote through directories it created itself.
        Posix.linkAt(rootFd, e.link(), dir, name);
        return; // a hard link shares the file's metadata
      }
      case SYMLINK -> Posix.symlinkAt(e.link(), dir, name);
      case CHAR, BLOCK -> {
        int type = e.type() == EntryType.CHAR ? Posix.S_IFCHR : Posix.S_IFBLK;
        try {
          Posix.mknodAt(dir, name, type | (e.mode() & 07777), e.devMajor(), e.devMinor());
        } catch (Posix.PosixException ex) {
          listener.warning("cannot create device " + Bytes.escape(path) + ": " + ex.getMessage());
          return;
        }
      }
      case FIFO -> Posix.mknodAt(dir, name, Posix.S_IFIFO | (e.mode() & 07777), 0, 0);
      default -> {
        listener.warning("skipping socket " + Bytes.escape(path));
        return;
      }
    }
    applyMetadata(dir, name, e, path);
  }

  private void applyMetadata(int dir, byte[] name, Entry e, byte[] path) throws IOException {
    try {
      Posix.chownAt(dir, name, e.uid(), e.gid());
    } catch (Posix.PosixException ex) {
      if (!chownWarned) {
        chownWarned = true;
        listener.warning(
            "cannot set owners (" + ex.getMessage() + "); files keep the exporting user's");
      }
    }
    if (e.type() != EntryType.SYMLINK) {
      Posix.chmodAt(dir, name, e.mode() & 07777);
    }
    for (Attr a : e.xattrs()) {
      try {
        Posix.setXattr(dir, name, a.nameRef(), a.valueRef());
      } catch (Posix.PosixException ex) {
        listener.warning(
            "cannot set " + a.nameString() + " on " + Bytes.escape(path) + ": " + ex.getMessage());
      }
    }
    Posix.setTimesAt(dir, name, e.mtimeSeconds(), e.mtimeNanos());
  }

  @Override
  public void finish() throws IOException {
    if (rootEntry != null && !rootEntry.isImplicit()) {
      applyMetadata(rootFd, DOT, rootEntry, new byte[0]);
    }
  }

  @Override
  public void close() {
    while (!fds.isEmpty()) {
      Posix.close(fds.pop());
    }
    arena.close();
  }
}
