package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.osfarm.core.posix.Posix;
import org.osfarm.core.tar.TarHeader;

/**
 * A directory tree as an {@link EntrySource}: names as raw bytes, every extended attribute, device
 * numbers, hard links (by device and inode), never following a symlink. Sockets are skipped with a
 * warning, as tar does. The walk stays on one file system.
 */
public final class DirectorySource implements EntrySource {
  private final int rootFd;
  private final ProgressListener listener;
  private final Deque<Frame> stack = new ArrayDeque<>();
  private final Map<Long, Map<Long, byte[]>> inodes = new HashMap<>();
  private final long rootDev;
  private boolean rootDone;
  private int contentFd = -1;
  private long position;

  private record Frame(int fd, byte[] path, List<Posix.DirEntry> entries, int[] next) {}

  public DirectorySource(Path dir, ProgressListener listener) throws IOException {
    this.listener = listener;
    byte[] p = dir.toAbsolutePath().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    this.rootFd = Posix.openAt(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
    this.rootDev = Posix.lstatAt(rootFd, new byte[0]).dev();
  }

  @Override
  public TarHeader next() throws IOException {
    closeContent();
    if (!rootDone) {
      rootDone = true;
      Posix.Stat st = Posix.lstatAt(rootFd, new byte[0]);
      int dup = Posix.openAt(rootFd, new byte[] {'.'}, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
      stack.push(new Frame(dup, new byte[0], sorted(Posix.readDir(dup(dup))), new int[] {0}));
      return header(
          new byte[] {'.', '/'}, st, '5', new byte[0], 0, new byte[0], rootFd, new byte[0]);
    }
    while (!stack.isEmpty()) {
      Frame f = stack.peek();
      if (f.next[0] >= f.entries.size()) {
        stack.pop();
        Posix.close(f.fd);
        continue;
      }
      Posix.DirEntry de = f.entries.get(f.next[0]++);
      byte[] path = f.path.length == 0 ? de.name() : concat(f.path, '/', de.name());
      Posix.Stat st = Posix.lstatAt(f.fd, de.name());
      switch (st.type()) {
        case Posix.S_IFDIR -> {
          TarHeader h = header(concat(path, '/'), st, '5', new byte[0], 0, path, f.fd, de.name());
          if (st.dev() == rootDev) {
            int fd =
                Posix.openAt(
                    f.fd, de.name(), Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
            stack.push(new Frame(fd, path, sorted(Posix.readDir(dup(fd))), new int[] {0}));
          } else {
            listener.warning("not descending into mount point " + Bytes.escape(path));
          }
          return h;
        }
        case Posix.S_IFREG -> {
          if (st.nlink() > 1) {
            Map<Long, byte[]> byIno = inodes.computeIfAbsent(st.dev(), k -> new HashMap<>());
            byte[] first = byIno.putIfAbsent(st.ino(), path);
            if (first != null) {
              return header(path, st, '1', first, 0, path, f.fd, de.name());
            }
          }
          contentFd =
              Posix.openAt(f.fd, de.name(), Posix.O_RDONLY | Posix.O_NOFOLLOW | Posix.O_NOCTTY, 0);
          return header(path, st, '0', new byte[0], st.size(), path, f.fd, de.name());
        }
        case Posix.S_IFLNK -> {
          return header(path, st, '2', Posix.readLinkAt(f.fd, de.name()), 0, path, f.fd, de.name());
        }
        case Posix.S_IFCHR -> {
          return header(path, st, '3', new byte[0], 0, path, f.fd, de.name());
        }
        case Posix.S_IFBLK -> {
          return header(path, st, '4', new byte[0], 0, path, f.fd, de.name());
        }
        case Posix.S_IFIFO -> {
          return header(path, st, '6', new byte[0], 0, path, f.fd, de.name());
        }
        default ->
            listener.warning("skipping socket " + Bytes.escape(path) + " (tar cannot carry it)");
      }
    }
    return null;
  }

  private static int dup(int fd) throws IOException {
    return Posix.openAt(fd, new byte[] {'.'}, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
  }

  private static List<Posix.DirEntry> sorted(List<Posix.DirEntry> l) {
    List<Posix.DirEntry> s = new ArrayList<>(l);
    s.sort((a, b) -> Arrays.compareUnsigned(a.name(), b.name()));
    return s;
  }

  private TarHeader header(
      byte[] name,
      Posix.Stat st,
      char type,
      byte[] link,
      long size,
      byte[] path,
      int dirFd,
      byte[] entryName)
      throws IOException {
    List<Attr> xattrs = new ArrayList<>();
    for (byte[][] kv : Posix.listXattrs(dirFd, entryName)) {
      xattrs.add(new Attr(kv[0], kv[1]));
    }
    return new TarHeader(
        name,
        (byte) type,
        st.mode() & 07777,
        st.uid(),
        st.gid(),
        new byte[0],
        new byte[0],
        st.mtimeSeconds(),
        st.mtimeNanos(),
        size,
        link,
        st.rdevMajor(),
        st.rdevMinor(),
        xattrs,
        List.of());
  }

  @Override
  public InputStream content() {
    final int fd = contentFd;
    return new InputStream() {
      private final Arena arena = Arena.ofConfined();
      private MemorySegment buf = arena.allocate(1 << 16);

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
          return 0; // not EOF: InputStream.readNBytes asks for 0 bytes when its buffer is full
        }
        if (fd < 0) {
          return -1;
        }
        int want = Math.min(len, (int) buf.byteSize());
        long n = Posix.read(fd, buf, want);
        if (n == 0) {
          return -1;
        }
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, b, off, (int) n);
        position += n;
        return (int) n;
      }

      @Override
      public void close() {
        arena.close();
      }
    };
  }

  private void closeContent() {
    if (contentFd >= 0) {
      Posix.close(contentFd);
      contentFd = -1;
    }
  }

  @Override
  public long position() {
    return position;
  }

  @Override
  public String kind() {
    return "dir";
  }

  @Override
  public void close() {
    closeContent();
    while (!stack.isEmpty()) {
      Posix.close(stack.pop().fd);
    }
    Posix.close(rootFd);
  }

  private static byte[] concat(byte[] a, char sep, byte[] b) {
    byte[] r = Arrays.copyOf(a, a.length + 1 + b.length);
    r[a.length] = (byte) sep;
    System.arraycopy(b, 0, r, a.length + 1, b.length);
    return r;
  }

  private static byte[] concat(byte[] a, char sep) {
    byte[] r = Arrays.copyOf(a, a.length + 1);
    r[a.length] = (byte) sep;
    return r;
  }
}
