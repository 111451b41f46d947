package org.osfarm.core.posix;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The few POSIX calls Java's file API cannot make: byte-exact names (Linux names need not be
 * UTF-8), device nodes, ownership and times of symlinks, every extended-attribute namespace ({@code
 * security.*}, {@code system.posix_acl_*}), all relative to directory descriptors so that nothing
 * is ever resolved through a symlink the tree itself contains. Bound with the FFM API to glibc on
 * Linux (x86-64 and aarch64 share the layouts used here: {@code statx} and {@code dirent64}).
 */
public final class Posix {
  public static final int AT_FDCWD = -100;
  public static final int AT_SYMLINK_NOFOLLOW = 0x100;
  public static final int AT_EMPTY_PATH = 0x1000;
  public static final int O_RDONLY = 0;
  public static final int O_WRONLY = 1;
  public static final int O_CREAT = 0100;
  public static final int O_EXCL = 0200;
  public static final int O_NOCTTY = 0400;
  public static final int O_DIRECTORY = 0200000;
  public static final int O_NOFOLLOW = 0400000;
  public static final int O_CLOEXEC = 02000000;
  public static final int O_PATH = 010000000;

  public static final int S_IFMT = 0170000;
  public static final int S_IFSOCK = 0140000;
  public static final int S_IFLNK = 0120000;
  public static final int S_IFREG = 0100000;
  public static final int S_IFBLK = 0060000;
  public static final int S_IFDIR = 0040000;
  public static final int S_IFCHR = 0020000;
  public static final int S_IFIFO = 0010000;

  private static final int ENOENT = 2;
  private static final int EEXIST = 17;
  private static final int ERANGE = 34;
  private static final int ENODATA = 61;
  private static final int ENOTSUP = 95;

  private static final Linker LINKER = Linker.nativeLinker();
  private static final SymbolLookup LIBC = LINKER.defaultLookup();
  private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO =
      CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
  private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
  private static final ValueLayout ADDR = ValueLayout.ADDRESS;

  private static final MethodHandle STATX =
      fn("statx", FunctionDescriptor.of(INT, INT, ADDR, INT, INT, ADDR));
  private static final MethodHandle OPENAT =
      fn("openat", FunctionDescriptor.of(INT, INT, ADDR, INT, INT));
  private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(INT, INT));
  private static final MethodHandle READ = fn("read", FunctionDescriptor.of(LONG, INT, ADDR, LONG));
  private static final MethodHandle WRITE =
      fn("write", FunctionDescriptor.of(LONG, INT, ADDR, LONG));
  private static final MethodHandle FDOPENDIR = fn("fdopendir", FunctionDescriptor.of(ADDR, INT));
  private static final MethodHandle READDIR = fn("readdir64", FunctionDescriptor.of(ADDR, ADDR));
  private static final MethodHandle CLOSEDIR = fn("closedir", FunctionDescriptor.of(INT, ADDR));
  private static final MethodHandle READLINKAT =
      fn("readlinkat", FunctionDescriptor.of(LONG, INT, ADDR, ADDR, LONG));
  private static final MethodHandle LLISTXATTR =
      fn("llistxattr", FunctionDescriptor.of(LONG, ADDR, ADDR, LONG));
  private static final MethodHandle LGETXATTR =
      fn("lgetxattr", FunctionDescriptor.of(LONG, ADDR, ADDR, ADDR, LONG));
  private static final MethodHandle LSETXATTR =
      fn("lsetxattr", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR, LONG, INT));
  private static final MethodHandle MKDIRAT =
      fn("mkdirat", FunctionDescriptor.of(INT, INT, ADDR, INT));
  private static final MethodHandle SYMLINKAT =
      fn("symlinkat", FunctionDescriptor.of(INT, ADDR, INT, ADDR));
  private static final MethodHandle LINKAT =
      fn("linkat", FunctionDescriptor.of(INT, INT, ADDR, INT, ADDR, INT));
  private static final MethodHandle MKNODAT =
      fn("mknodat", FunctionDescriptor.of(INT, INT, ADDR, INT, LONG));
  private static final MethodHandle FCHOWNAT =
      fn("fchownat", FunctionDescriptor.of(INT, INT, ADDR, INT, INT, INT));
  private static final MethodHandle FCHMODAT =
      fn("fchmodat", FunctionDescriptor.of(INT, INT, ADDR, INT, INT));
  private static final MethodHandle FCHMOD = fn("fchmod", FunctionDescriptor.of(INT, INT, INT));
  private static final MethodHandle UTIMENSAT =
      fn("utimensat", FunctionDescriptor.of(INT, INT, ADDR, ADDR, INT));
  private static final MethodHandle STRERROR =
      fnNoErrno("strerror", FunctionDescriptor.of(ADDR, INT));
  private static final MethodHandle ISATTY = fnNoErrno("isatty", FunctionDescriptor.of(INT, INT));

  private Posix() {}

  private static MethodHandle fn(String name, FunctionDescriptor fd) {
    MemorySegment addr =
        LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
    return LINKER.downcallHandle(addr, fd, Linker.Option.captureCallState("errno"));
  }

  private static MethodHandle fnNoErrno(String name, FunctionDescriptor fd) {
    MemorySegment addr =
        LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
    return LINKER.downcallHandle(addr, fd);
  }

  /** Result of {@link #lstatAt}: the fields osfarm stores. */
  public record Stat(
      int mode,
      long uid,
      long gid,
      long size,
      long mtimeSeconds,
      int mtimeNanos,
      long nlink,
      long ino,
      long dev,
      long rdevMajor,
      long rdevMinor) {
    public int type() {
      return mode & S_IFMT;
    }
  }

  /** An error from a system call, with the call, path and {@code strerror} text. */
  public static final class PosixException extends IOException {
    private final int errno;

    PosixException(String call, byte[] path, int errno) {
      super(call + "(" + new String(path, StandardCharsets.UTF_8) + "): " + strerror(errno));
      this.errno = errno;
    }

    public int errno() {
      return errno;
    }

    public boolean isNotFound() {
      return errno == ENOENT;
    }

    public boolean isExists() {
      return errno == EEXIST;
    }
  }

  /** True if file descriptor {@code fd} is a terminal. */
  public static boolean isatty(int fd) {
    try {
      return (int) ISATTY.invokeExact(fd) == 1;
    } catch (Throwable t) {
      return false;
    }
  }

  static String strerror(int errno) {
    try {
      MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
      return s.reinterpret(256).getString(0);
    } catch (Throwable t) {
      return "errno " + errno;
    }
  }

  private static MemorySegment cstr(Arena a, byte[] b) {
    MemorySegment s = a.allocate(b.length + 1L);
    MemorySegment.copy(b, 0, s, ValueLayout.JAVA_BYTE, 0, b.length);
    s.set(ValueLayout.JAVA_BYTE, b.length, (byte) 0);
    return s;
  }

  private static int errno(MemorySegment state) {
    return (int) ERRNO.get(state, 0L);
  }

  /**
   * What a downcall's {@code invokeExact} threw, to be thrown: an error as it is (thrown here), a
   * runtime exception as it is, anything else wrapped.
   */
  public static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) {
      return r;
    }
    if (t instanceof Error e) {
      throw e;
    }
    return new IllegalStateException(t);
  }

  /** {@code statx(dirfd, name, AT_SYMLINK_NOFOLLOW)}; an empty name stats {@code dirfd} itself. */
  public static Stat lstatAt(int dirfd, byte[] name) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      MemorySegment buf = a.allocate(256, 8);
      int flags = AT_SYMLINK_NOFOLLOW | (name.length == 0 ? AT_EMPTY_PATH : 0);
      int r = (int) STATX.invokeExact(st, dirfd, cstr(a, name), flags, 0x7ff, buf);
      if (r != 0) {
        throw new PosixException("statx", name, errno(st));
      }
      int mode = Short.toUnsignedInt(buf.get(ValueLayout.JAVA_SHORT, 28));
      return new Stat(
          mode,
          Integer.toUnsignedLong(buf.get(INT, 20)),
          Integer.toUnsignedLong(buf.get(INT, 24)),
          buf.get(LONG, 40),
          buf.get(LONG, 112),
          buf.get(INT, 120),
          Integer.toUnsignedLong(buf.get(INT, 16)),
          buf.get(LONG, 32),
          ((long) buf.get(INT, 136) << 32) | Integer.toUnsignedLong(buf.get(INT, 140)),
          Integer.toUnsignedLong(buf.get(INT, 128)),
          Integer.toUnsignedLong(buf.get(INT, 132)));
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code openat}; returns the descriptor. */
  public static int openAt(int dirfd, byte[] name, int flags, int mode) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      int fd = (int) OPENAT.invokeExact(st, dirfd, cstr(a, name), flags | O_CLOEXEC, mode);
      if (fd < 0) {
        throw new PosixException("open", name, errno(st));
      }
      return fd;
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void close(int fd) {
    try (Arena a = Arena.ofConfined()) {
      int r = (int) CLOSE.invokeExact(a.allocate(CAPTURE), fd);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Reads up to {@code len} bytes into {@code seg}; returns the count, 0 at end of file. */
  public static long read(int fd, MemorySegment seg, long len) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      while (true) {
        long n = (long) READ.invokeExact(st, fd, seg, len);
        if (n >= 0) {
          return n;
        }
        if (errno(st) != 4) { // EINTR
          throw new PosixException("read", new byte[0], errno(st));
        }
      }
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Writes all {@code len} bytes of {@code seg}. */
  public static void writeFully(int fd, MemorySegment seg, long len) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      long off = 0;
      while (off < len) {
        long n = (long) WRITE.invokeExact(st, fd, seg.asSlice(off), len - off);
        if (n < 0) {
          if (errno(st) == 4) {
            continue;
          }
          throw new PosixException("write", new byte[0], errno(st));
        }
        off += n;
      }
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** One directory entry's name and {@code d_type}. */
  public record DirEntry(byte[] name, int dtype) {}

  /**
   * The entries of the directory open at {@code dirfd}, without "." and "..". Consumes the
   * descriptor (it is closed).
   */
  public static List<DirEntry> readDir(int dirfd) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      MemorySegment dir = (MemorySegment) FDOPENDIR.invokeExact(st, dirfd);
      if (dir.address() == 0) {
        int e = errno(st);
        close(dirfd);
        throw new PosixException("fdopendir", new byte[0], e);
      }
      List<DirEntry> out = new ArrayList<>();
      try {
        while (true) {
          MemorySegment ent = (MemorySegment) READDIR.invokeExact(st, dir);
          if (ent.address() == 0) {
            break;
          }
          ent = ent.reinterpret(19 + 256);
          int dtype = ent.get(ValueLayout.JAVA_BYTE, 18) & 0xff;
          int len = 0;
          while (ent.get(ValueLayout.JAVA_BYTE, 19 + len) != 0) {
            len++;
          }
          byte[] name = new byte[len];
          MemorySegment.copy(ent, ValueLayout.JAVA_BYTE, 19, name, 0, len);
          if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
            continue;
          }
          out.add(new DirEntry(name, dtype));
        }
      } finally {
        int r = (int) CLOSEDIR.invokeExact(st, dir);
      }
      return out;
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** The target of the symlink {@code name} in {@code dirfd}, as bytes. */
  public static byte[] readLinkAt(int dirfd, byte[] name) throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      MemorySegment path = cstr(a, name);
      for (long size = 256; ; size *= 4) {
        MemorySegment buf = a.allocate(size);
        long n = (long) READLINKAT.invokeExact(st, dirfd, path, buf, size);
        if (n < 0) {
          throw new PosixException("readlink", name, errno(st));
        }
        if (n < size) {
          return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
        }
      }
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * The path that names entry {@code name} of the directory open at {@code dirfd} without following
   * it.
   */
  private static byte[] procPath(int dirfd, byte[] name) {
    byte[] prefix = ("/proc/self/fd/" + dirfd + "/").getBytes(StandardCharsets.US_ASCII);
    byte[] p = Arrays.copyOf(prefix, prefix.length + name.length);
    System.arraycopy(name, 0, p, prefix.length, name.length);
    return p;
  }

  /**
   * Extended attributes of {@code name} in {@code dirfd} (not following symlinks), sorted by name.
   */
  public static List<byte[][]> listXattrs(int dirfd, byte[] name) throws PosixException {
    byte[] path = procPath(dirfd, name);
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      MemorySegment p = cstr(a, path);
      long size = (long) LLISTXATTR.invokeExact(st, p, MemorySegment.NULL, 0L);
      if (size < 0) {
        if (errno(st) == ENOTSUP) {
          return List.of();
        }
        throw new PosixException("llistxattr", name, errno(st));
      }
      if (size == 0) {
        return List.of();
      }
      MemorySegment buf = a.allocate(size);
      size = (long) LLISTXATTR.invokeExact(st, p, buf, size);
      if (size < 0) {
        throw new PosixException("llistxattr", name, errno(st));
      }
      byte[] names = buf.asSlice(0, size).toArray(ValueLayout.JAVA_BYTE);
      List<byte[][]> out = new ArrayList<>();
      int start = 0;
      for (int i = 0; i < names.length; i++) {
        if (names[i] == 0) {
          byte[] key = Arrays.copyOfRange(names, start, i);
          start = i + 1;
          MemorySegment k = cstr(a, key);
          long vs = (long) LGETXATTR.invokeExact(st, p, k, MemorySegment.NULL, 0L);
          if (vs < 0) {
            if (errno(st) == ENODATA) {
              continue;
            }
            throw new PosixException("lgetxattr", name, errno(st));
          }
          MemorySegment v = a.allocate(Math.max(1, vs));
          vs = (long) LGETXATTR.invokeExact(st, p, k, v, vs);
          if (vs < 0) {
            throw new PosixException("lgetxattr", name, errno(st) == ERANGE ? ERANGE : errno(st));
          }
          out.add(new byte[][] {key, v.asSlice(0, vs).toArray(ValueLayout.JAVA_BYTE)});
        }
      }
      out.sort((x, y) -> Arrays.compareUnsigned(x[0], y[0]));
      return out;
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void setXattr(int dirfd, byte[] name, byte[] key, byte[] value)
      throws PosixException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment st = a.allocate(CAPTURE);
      MemorySegment v = a.allocate(Math.max(1, value.length));
      MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
      int r =
          (int)
              LSETXATTR.invokeExact(
                  st, cstr(a, procPath(dirfd, name)), cstr(a, key), v, (long) value.length, 0);
      if (r != 0) {
        throw new PosixException(
            "lsetxattr " + new String(key, StandardCharsets.UTF_8), name, errno(st));
      }
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void mkdirAt(int dirfd, byte[] name, int mode) throws PosixException {
    call("mkdir", name, a -> (int) MKDIRAT.invokeExact(a.st, dirfd, a.s(name), mode));
  }

  public static void symlinkAt(byte[] target, int dirfd, byte[] name) throws PosixException {
    call("symlink", name, a -> (int) SYMLINKAT.invokeExact(a.st, a.s(target), dirfd, a.s(name)));
  }

  public static void linkAt(int olddir, byte[] oldName, int newdir, byte[] newName)
      throws PosixException {
    call(
        "link",
        newName,
        a -> (int) LINKAT.invokeExact(a.st, olddir, a.s(oldName), newdir, a.s(newName), 0));
  }

  public static void mknodAt(int dirfd, byte[] name, int mode, long major, long minor)
      throws PosixException {
    long dev = makedev(major, minor);
    call("mknod", name, a -> (int) MKNODAT.invokeExact(a.st, dirfd, a.s(name), mode, dev));
  }

  public static void chownAt(int dirfd, byte[] name, long uid, long gid) throws PosixException {
    call(
        "chown",
        name,
        a ->
            (int)
                FCHOWNAT.invokeExact(
                    a.st, dirfd, a.s(name), (int) uid, (int) gid, AT_SYMLINK_NOFOLLOW));
  }

  public static void chmodAt(int dirfd, byte[] name, int mode) throws PosixException {
    call("chmod", name, a -> (int) FCHMODAT.invokeExact(a.st, dirfd, a.s(name), mode, 0));
  }

  public static void fchmod(int fd, int mode) throws PosixException {
    call("fchmod", new byte[0], a -> (int) FCHMOD.invokeExact(a.st, fd, mode));
  }

  /** Sets atime and mtime of {@code name} (not following symlinks) to the given time. */
  public static void setTimesAt(int dirfd, byte[] name, long sec, int nanos) throws PosixException {
    call(
        "utimensat",
        name,
        a -> {
          MemorySegment ts = a.arena.allocate(32, 8);
          ts.set(LONG, 0, sec);
          ts.set(LONG, 8, nanos);
          ts.set(LONG, 16, sec);
          ts.set(LONG, 24, nanos);
          return (int) UTIMENSAT.invokeExact(a.st, dirfd, a.s(name), ts, AT_SYMLINK_NOFOLLOW);
        });
  }

  static long makedev(long major, long minor) {
    return ((major & 0xfffff000L) << 32)
        | ((major & 0xfffL) << 8)
        | ((minor & 0xffffff00L) << 12)
        | (minor & 0xffL);
  }

  private static final class CallScope {
    final Arena arena;
    final MemorySegment st;

    CallScope(Arena arena) {
      this.arena = arena;
      this.st = arena.allocate(CAPTURE);
    }

    MemorySegment s(byte[] b) {
      return cstr(arena, b);
    }
  }

  @FunctionalInterface
  private interface Call {
    int run(CallScope a) throws Throwable;
  }

  private static void call(String what, byte[] name, Call c) throws PosixException {
    try (Arena arena = Arena.ofConfined()) {
      CallScope a = new CallScope(arena);
      int r = c.run(a);
      if (r != 0) {
        throw new PosixException(what, name, errno(a.st));
      }
    } catch (PosixException e) {
      throw e;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }
}
