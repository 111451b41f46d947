package org.osfarm.mount;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Errno;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.FuseConfig;
import org.cryptomator.jfuse.api.FuseConnInfo;
import org.cryptomator.jfuse.api.FuseOperations;
import org.cryptomator.jfuse.api.Stat;
import org.cryptomator.jfuse.api.Statvfs;
import org.osfarm.core.Attr;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;

/**
 * The read-only FUSE file system over a {@link SnapshotView}: getattr, readdir, readlink,
 * open/read, xattrs, statfs. Everything it reads comes through the {@link ObjectCache}; any failure
 * to get verified bytes is EIO, never wrong data.
 *
 * <p>Large files are chunk lists: a read maps its offset to chunks by binary search over the
 * chunks' start offsets, and a read that continues where the previous one on the same handle ended
 * asks the cache to prefetch the next chunks. Open files keep the snapshot they were opened in, so
 * a {@code --follow} switch serves the new snapshot only to newly opened paths.
 *
 * <p>jfuse's {@link Stat} exposes no inode number, device number or block count; {@link NativeStat}
 * writes them into the native {@code struct stat} jfuse hands over.
 */
final class MountFs implements FuseOperations {
  private static final Logger LOG = Logger.getLogger(MountFs.class.getName());
  static final String STATS_XATTR = "user.osfarm.stats";
  private static final int PREFETCH_CHUNKS = 16;
  private static final int O_ACCMODE = 3;
  private static final boolean TRACE = System.getenv("OSFARM_MOUNT_TRACE") != null;

  private final Errno errno;
  private final ObjectCache cache;
  private final Supplier<String> stats;
  private volatile SnapshotView view;
  private final ConcurrentHashMap<Long, OpenFile> open = new ConcurrentHashMap<>();
  private final AtomicLong handles = new AtomicLong(1);
  private final AtomicLong ioErrors = new AtomicLong();
  private final java.util.concurrent.atomic.AtomicInteger reading =
      new java.util.concurrent.atomic.AtomicInteger();

  MountFs(Errno errno, ObjectCache cache, SnapshotView view, Supplier<String> stats) {
    this.errno = errno;
    this.cache = cache;
    this.view = view;
    this.stats = stats;
  }

  SnapshotView view() {
    return view;
  }

  /** Serves {@code v} to paths looked up or opened from now on. */
  void switchTo(SnapshotView v) {
    this.view = v;
  }

  long ioErrors() {
    return ioErrors.get();
  }

  @Override
  public Errno errno() {
    return errno;
  }

  @Override
  public Set<Operation> supportedOperations() {
    return EnumSet.of(
        Operation.GET_ATTR,
        Operation.READLINK,
        Operation.OPEN,
        Operation.READ,
        Operation.RELEASE,
        Operation.OPEN_DIR,
        Operation.READ_DIR,
        Operation.RELEASE_DIR,
        Operation.GET_XATTR,
        Operation.LIST_XATTR,
        Operation.STATFS,
        Operation.INIT,
        Operation.DESTROY);
  }

  private int eio(String op, String path, Throwable e) {
    ioErrors.incrementAndGet();
    LOG.log(Level.WARNING, op + " " + path + ": " + e.getMessage(), e);
    return -errno.eio();
  }

  // ---------------------------------------------------------------- attributes

  @Override
  public int getattr(String path, Stat stat, FileInfo fi) {
    try {
      SnapshotView v = view;
      if (fi != null) {
        OpenFile f = open.get(fi.getFh());
        if (f != null) {
          fill(stat, f.node, f.view);
          return 0;
        }
      }
      SnapshotView.Node n = v.resolve(path);
      if (n == null) {
        return -errno.enoent();
      }
      fill(stat, n, v);
      return 0;
    } catch (IOException | RuntimeException e) {
      return eio("getattr", path, e);
    }
  }

  private static void fill(Stat stat, SnapshotView.Node n, SnapshotView v) {
    Entry e = n.entry();
    long size =
        switch (e.type()) {
          case FILE -> e.size();
          case SYMLINK -> e.link().length;
          case DIR -> 4096;
          default -> 0;
        };
    stat.setMode(typeBits(e.type()) | e.mode());
    stat.setUid((int) e.uid());
    stat.setGid((int) e.gid());
    stat.setSize(size);
    Instant t = Instant.ofEpochSecond(e.mtimeSeconds(), e.mtimeNanos());
    stat.mTime().set(t);
    stat.aTime().set(t);
    stat.cTime().set(t);
    NativeStat.set(stat, inode(n), v.linkCount(n), rdev(e), (size + 511) / 512);
  }

  static int typeBits(EntryType t) {
    return switch (t) {
      case FILE, HARDLINK -> Stat.S_IFREG;
      case DIR -> Stat.S_IFDIR;
      case SYMLINK -> Stat.S_IFLNK;
      case CHAR -> Stat.S_IFCHR;
      case BLOCK -> Stat.S_IFBLK;
      case FIFO -> Stat.S_IFIFO;
      case SOCKET -> Stat.S_IFSOCK;
    };
  }

  /** glibc's makedev. */
  static long rdev(Entry e) {
    if (e.type() != EntryType.CHAR && e.type() != EntryType.BLOCK) {
      return 0;
    }
    long major = e.devMajor();
    long minor = e.devMinor();
    return ((major & 0xfffff000L) << 32)
        | ((major & 0xfffL) << 8)
        | ((minor & 0xffffff00L) << 12)
        | (minor & 0xffL);
  }

  /**
   * A stable inode number: a 64-bit hash of the canonical path (so all names of a hard link share
   * it) and of the content (so a file changed by a {@code --follow} switch is a new inode and the
   * kernel's page cache never serves its old bytes). The root is 1.
   */
  static long inode(SnapshotView.Node n) {
    if (n.canonical().isEmpty()) {
      return 1;
    }
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < n.canonical().length(); i++) {
      h ^= n.canonical().charAt(i);
      h *= 0x100000001b3L;
    }
    Digest c = n.entry().content();
    if (c != null && n.entry().type() == EntryType.FILE) {
      h = h * 31 + c.hashCode();
    }
    h ^= h >>> 29;
    h *= 0xbf58476d1ce4e5b9L;
    h ^= h >>> 32;
    return h == 0 || h == 1 ? h + 2 : h;
  }

  // ---------------------------------------------------------------- directories

  @Override
  public int opendir(String path, FileInfo fi) {
    return 0;
  }

  @Override
  public int releasedir(String path, FileInfo fi) {
    return 0;
  }

  @Override
  public int readdir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
    try {
      SnapshotView v = view;
      SnapshotView.Node dir = v.resolve(path);
      if (dir == null) {
        return -errno.enoent();
      }
      if (dir.entry().type() != EntryType.DIR) {
        return -errno.enotdir();
      }
      boolean plus = (flags & FUSE_READDIR_PLUS) != 0;
      filler.fill(".", s -> fill(s, dir, v), 0, plus ? DirFiller.FUSE_FILL_DIR_PLUS : 0);
      filler.fill("..", s -> {}, 0, 0);
      String prefix = path.endsWith("/") ? path : path + "/";
      for (Entry e : v.list(dir.entry())) {
        String name = new String(e.name(), StandardCharsets.UTF_8);
        SnapshotView.Node n =
            e.type() == EntryType.HARDLINK
                ? v.resolve(prefix + name)
                : new SnapshotView.Node(
                    e, dir.canonical().isEmpty() ? name : dir.canonical() + "/" + name);
        if (plus) {
          if (filler.fill(name, s -> fill(s, n, v), 0, DirFiller.FUSE_FILL_DIR_PLUS) != 0) {
            break;
          }
        } else if (filler.fill(
                name,
                s -> {
                  s.setMode(typeBits(n.entry().type()));
                  NativeStat.set(s, inode(n), 1, 0, 0);
                },
                0,
                0)
            != 0) {
          break;
        }
      }
      return 0;
    } catch (IOException | RuntimeException e) {
      return eio("readdir", path, e);
    }
  }

  // ---------------------------------------------------------------- links

  @Override
  public int readlink(String path, ByteBuffer buf, long len) {
    try {
      Entry e = view.lookup(path);
      if (e == null) {
        return -errno.enoent();
      }
      if (e.type() != EntryType.SYMLINK) {
        return -errno.einval();
      }
      byte[] t = e.link();
      int n = (int) Math.min(t.length, len - 1);
      buf.put(0, t, 0, n);
      buf.put(n, (byte) 0);
      return 0;
    } catch (IOException | RuntimeException e) {
      return eio("readlink", path, e);
    }
  }

  // ---------------------------------------------------------------- files

  /** An open file: its entry in the snapshot it was opened in, its chunks and their offsets. */
  private static final class OpenFile {
    final SnapshotView view;
    final SnapshotView.Node node;
    final List<ObjectCodec.Chunk> chunks;
    final long[] starts;
    volatile long nextOffset = -1;
    volatile int prefetchedTo;

    OpenFile(SnapshotView view, SnapshotView.Node node, List<ObjectCodec.Chunk> chunks) {
      this.view = view;
      this.node = node;
      this.chunks = chunks;
      this.starts = new long[chunks.size()];
      long pos = 0;
      for (int i = 0; i < chunks.size(); i++) {
        starts[i] = pos;
        pos += chunks.get(i).length();
      }
    }

    int chunkAt(long offset) {
      int lo = 0;
      int hi = starts.length - 1;
      while (lo < hi) {
        int mid = (lo + hi + 1) >>> 1;
        if (starts[mid] <= offset) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
      return lo;
    }
  }

  @Override
  public int open(String path, FileInfo fi) {
    try {
      if ((fi.getFlags() & O_ACCMODE) != 0) {
        return -errno.erofs();
      }
      SnapshotView v = view;
      SnapshotView.Node n = v.resolve(path);
      if (n == null) {
        return -errno.enoent();
      }
      if (n.entry().type() == EntryType.DIR) {
        return -errno.eisdir();
      }
      if (n.entry().type() != EntryType.FILE) {
        return -errno.einval();
      }
      List<ObjectCodec.Chunk> chunks = n.entry().size() == 0 ? List.of() : v.chunks(n.entry());
      long fh = handles.getAndIncrement();
      open.put(fh, new OpenFile(v, n, chunks));
      fi.setFh(fh);
      return 0;
    } catch (IOException | RuntimeException e) {
      return eio("open", path, e);
    }
  }

  @Override
  public int release(String path, FileInfo fi) {
    open.remove(fi.getFh());
    return 0;
  }

  @Override
  public int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
    reading.incrementAndGet();
    try {
      return readFile(path, buf, size, offset, fi);
    } finally {
      reading.decrementAndGet();
    }
  }

  /**
   * Waits until no read is in progress (the only request that can wait on the source), at most
   * {@code millis}; true if none is.
   */
  boolean awaitNoReads(long millis) throws InterruptedException {
    long until = System.nanoTime() + millis * 1_000_000;
    while (reading.get() > 0) {
      if (System.nanoTime() > until) {
        return false;
      }
      Thread.sleep(10);
    }
    return true;
  }

  private int readFile(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
    OpenFile f = open.get(fi.getFh());
    if (f == null) {
      return -errno.ebadf();
    }
    try {
      long fileSize = f.node.entry().size();
      if (offset >= fileSize || size <= 0) {
        return 0;
      }
      long end = Math.min(fileSize, offset + size);
      long t0 = TRACE ? System.nanoTime() : 0;
      int i = f.chunkAt(offset);
      if (offset > 0 && (offset == f.nextOffset || i < f.prefetchedTo)) {
        // Sequential: the reader continues where it stopped, or reads inside the window already
        // hinted (the kernel's read-ahead sends its requests on several threads, so they reach
        // us out of order). A first read or a random one (the page faults of a mapped library)
        // fetches only what it touches.
        prefetch(f, i + 1);
      }
      long pos = offset;
      int written = 0;
      while (pos < end) {
        ObjectCodec.Chunk c = f.chunks.get(i);
        ByteBuffer b = cache.readBuffer(c.id());
        if (b.limit() != c.length()) {
          throw new IOException(
              "object " + c.id() + " has " + b.limit() + " bytes, expected " + c.length());
        }
        int from = (int) (pos - f.starts[i]);
        int n = (int) Math.min(b.limit() - from, end - pos);
        buf.put(written, b, from, n);
        written += n;
        pos += n;
        i++;
      }
      f.nextOffset = end;
      if (TRACE) {
        System.err.printf(
            "read %s %d %d %d us%n", path, offset, size, (System.nanoTime() - t0) / 1000);
      }
      return written;
    } catch (IOException | RuntimeException e) {
      return eio("read", path, e);
    }
  }

  /** Keeps {@link #PREFETCH_CHUNKS} chunks ahead of a sequential reader in flight. */
  private void prefetch(OpenFile f, int from) {
    if (from >= f.chunks.size()) {
      return;
    }
    int to = Math.min(f.chunks.size(), from + PREFETCH_CHUNKS);
    int start = Math.max(from, f.prefetchedTo);
    if (start >= to) {
      return;
    }
    List<Digest> ids = new ArrayList<>(to - start);
    for (int k = start; k < to; k++) {
      ids.add(f.chunks.get(k).id());
    }
    f.prefetchedTo = to;
    cache.prefetch(ids);
  }

  // ---------------------------------------------------------------- xattrs

  @Override
  public int getxattr(String path, String name, ByteBuffer value) {
    try {
      byte[] v = null;
      if (name.equals(STATS_XATTR) && (path.equals("/") || path.isEmpty())) {
        v = stats.get().getBytes(StandardCharsets.UTF_8);
      } else {
        SnapshotView.Node n = view.resolve(path);
        if (n == null) {
          return -errno.enoent();
        }
        byte[] want = name.getBytes(StandardCharsets.UTF_8);
        for (Attr a : n.entry().xattrs()) {
          if (java.util.Arrays.equals(a.name(), want)) {
            v = a.value();
            break;
          }
        }
      }
      if (v == null) {
        return -errno.enodata();
      }
      return put(value, v);
    } catch (IOException | RuntimeException e) {
      return eio("getxattr", path, e);
    }
  }

  @Override
  public int listxattr(String path, ByteBuffer list) {
    try {
      SnapshotView.Node n = view.resolve(path);
      if (n == null) {
        return -errno.enoent();
      }
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      for (Attr a : n.entry().xattrs()) {
        out.writeBytes(a.name());
        out.write(0);
      }
      return put(list, out.toByteArray());
    } catch (IOException | RuntimeException e) {
      return eio("listxattr", path, e);
    }
  }

  /** The xattr convention: size 0 asks for the length; too small a buffer is ERANGE. */
  private int put(ByteBuffer buf, byte[] v) {
    if (buf.capacity() == 0) {
      return v.length;
    }
    if (buf.capacity() < v.length) {
      return -errno.erange();
    }
    buf.put(0, v);
    return v.length;
  }

  // ---------------------------------------------------------------- file system

  @Override
  public int statfs(String path, Statvfs st) {
    SnapshotView v = view;
    st.setBsize(4096);
    st.setFrsize(4096);
    st.setBlocks((v.totalBytes() + 4095) / 4096);
    st.setBfree(0);
    st.setBavail(0);
    st.setNameMax(255);
    return 0;
  }

  @Override
  public void init(FuseConnInfo conn, FuseConfig cfg) {
    String ra = System.getenv("OSFARM_MOUNT_READAHEAD");
    if (ra != null) {
      conn.setMaxReadahead(Integer.parseInt(ra));
    }
    // Our st_ino values are stable and shared by hard links: make libfuse pass them on.
    if (!NativeStat.useIno(cfg)) {
      LOG.warning("cannot set use_ino: hard links show distinct inode numbers");
    }
  }

  /**
   * Writes the fields jfuse's {@link Stat} does not expose (inode, link count as a long, rdev,
   * blocks) into the native {@code struct stat}, and {@code use_ino} into {@code struct
   * fuse_config}, at the offsets of jfuse's own jextract bindings for this platform.
   */
  static final class NativeStat {
    private static final MethodHandle STAT_SEGMENT;
    private static final MethodHandle CONFIG_SEGMENT;
    private static final long INO;
    private static final long NLINK;
    private static final long RDEV;
    private static final long BLOCKS;
    private static final long USE_INO;

    static {
      MethodHandle stat = null;
      MethodHandle config = null;
      long ino = -1;
      long nlink = -1;
      long rdev = -1;
      long blocks = -1;
      long useIno = -1;
      try {
        String arch = "aarch64".equals(System.getProperty("os.arch")) ? "aarch64" : "amd64";
        String pkg = "org.cryptomator.jfuse.linux." + arch;
        stat = segmentAccessor(pkg + ".StatImpl");
        config = segmentAccessor(pkg + ".FuseConfigImpl");
        Class<?> st = Class.forName(pkg + ".extr.fuse3.stat");
        ino = offset(st, "st_ino");
        nlink = offset(st, "st_nlink");
        rdev = offset(st, "st_rdev");
        blocks = offset(st, "st_blocks");
        useIno = offset(Class.forName(pkg + ".extr.fuse3.fuse_config"), "use_ino");
      } catch (ReflectiveOperationException | RuntimeException e) {
        LOG.warning("jfuse internals not as expected (" + e + "); inode numbers stay libfuse's");
        stat = null;
      }
      STAT_SEGMENT = stat;
      CONFIG_SEGMENT = config;
      INO = ino;
      NLINK = nlink;
      RDEV = rdev;
      BLOCKS = blocks;
      USE_INO = useIno;
    }

    private static MethodHandle segmentAccessor(String cls) throws ReflectiveOperationException {
      Method m = Class.forName(cls).getMethod("segment");
      m.setAccessible(true);
      return MethodHandles.lookup()
          .unreflect(m)
          .asType(MethodType.methodType(MemorySegment.class, Object.class));
    }

    private static long offset(Class<?> c, String field) throws ReflectiveOperationException {
      Method m = c.getMethod(field + "$offset");
      return (long) m.invoke(null);
    }

    static void set(Stat stat, long ino, long nlink, long rdev, long blocks) {
      if (STAT_SEGMENT == null) {
        stat.setNLink((short) Math.min(nlink, Short.MAX_VALUE));
        return;
      }
      try {
        MemorySegment s = (MemorySegment) STAT_SEGMENT.invokeExact((Object) stat);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, INO, ino);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, NLINK, nlink);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, RDEV, rdev);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, BLOCKS, blocks);
      } catch (Throwable t) {
        stat.setNLink((short) Math.min(nlink, Short.MAX_VALUE));
      }
    }

    static boolean useIno(FuseConfig cfg) {
      if (CONFIG_SEGMENT == null) {
        return false;
      }
      try {
        MemorySegment s = (MemorySegment) CONFIG_SEGMENT.invokeExact((Object) cfg);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, USE_INO, 1);
        return true;
      } catch (Throwable t) {
        return false;
      }
    }
  }
}
