package org.osfarm.mount.rebase;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.osfarm.core.posix.Posix;

/**
 * File operations on the upper directory that Java's file API lacks: lchown, extended attributes in
 * the {@code trusted.} and {@code system.} name spaces, and the binary POSIX ACL format.
 */
final class UpperFs {
  private UpperFs() {}

  static final String OPAQUE = "trusted.overlay.opaque";
  static final String CAPABILITY = "security.capability";
  static final String ACL_ACCESS = "system.posix_acl_access";
  static final String ACL_DEFAULT = "system.posix_acl_default";

  private static final Charset FS =
      Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"), Charset.defaultCharset());

  /** What {@code lstat} says about a path. */
  record Attrs(int mode, long uid, long gid, long rdev) {
    int type() {
      return mode & Posix.S_IFMT;
    }

    int perm() {
      return mode & 07777;
    }

    boolean isDir() {
      return type() == Posix.S_IFDIR;
    }

    boolean isWhiteout() {
      return type() == Posix.S_IFCHR && rdev == 0;
    }
  }

  static Attrs attrs(Path p) throws IOException {
    Map<String, Object> a =
        Files.readAttributes(p, "unix:mode,uid,gid,rdev", LinkOption.NOFOLLOW_LINKS);
    return new Attrs(
        (Integer) a.get("mode"),
        ((Integer) a.get("uid")).longValue() & 0xffffffffL,
        ((Integer) a.get("gid")).longValue() & 0xffffffffL,
        (Long) a.get("rdev"));
  }

  private interface AtCall<T> {
    T call(int dirfd, byte[] name) throws IOException;
  }

  private static <T> T at(Path p, AtCall<T> f) throws IOException {
    Path abs = p.toAbsolutePath();
    int fd =
        Posix.openAt(
            Posix.AT_FDCWD,
            abs.getParent().toString().getBytes(FS),
            Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_CLOEXEC,
            0);
    try {
      return f.call(fd, abs.getFileName().toString().getBytes(FS));
    } finally {
      Posix.close(fd);
    }
  }

  /** The extended attributes of {@code p} (not following symlinks): name and value pairs. */
  static List<byte[][]> xattrs(Path p) throws IOException {
    return at(p, Posix::listXattrs);
  }

  static byte[] xattr(Path p, String name) throws IOException {
    byte[] key = name.getBytes(FS);
    for (byte[][] kv : xattrs(p)) {
      if (Arrays.equals(kv[0], key)) {
        return kv[1];
      }
    }
    return null;
  }

  static boolean isOpaque(Path p) throws IOException {
    byte[] v = xattr(p, OPAQUE);
    return v != null && v.length == 1 && v[0] == 'y';
  }

  static void setXattr(Path p, String name, byte[] value) throws IOException {
    at(
        p,
        (fd, n) -> {
          Posix.setXattr(fd, n, name.getBytes(FS), value);
          return null;
        });
  }

  /** lchown; for anything but a symlink, then restores {@code mode} (chown clears setuid). */
  static void chown(Path p, long uid, long gid, int mode, boolean symlink) throws IOException {
    at(
        p,
        (fd, n) -> {
          Posix.chownAt(fd, n, uid, gid);
          if (!symlink) {
            Posix.chmodAt(fd, n, mode);
          }
          return null;
        });
  }

  static void chmod(Path p, int mode) throws IOException {
    at(
        p,
        (fd, n) -> {
          Posix.chmodAt(fd, n, mode);
          return null;
        });
  }

  /**
   * A binary POSIX ACL (the kernel's xattr format: version 2, then entries of tag, perm, id) with
   * named-user ids mapped through {@code uids} and named-group ids through {@code gids}; null if
   * nothing changes or the value is not an ACL.
   */
  static byte[] remapAcl(byte[] value, Map<Long, Long> uids, Map<Long, Long> gids) {
    if (value.length < 4 || (value.length - 4) % 8 != 0) {
      return null;
    }
    ByteBuffer in = ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
    if (in.getInt() != 2) {
      return null;
    }
    List<long[]> entries = new ArrayList<>();
    boolean changed = false;
    while (in.remaining() >= 8) {
      int tag = Short.toUnsignedInt(in.getShort());
      int perm = Short.toUnsignedInt(in.getShort());
      long id = Integer.toUnsignedLong(in.getInt());
      Map<Long, Long> m = tag == 0x02 ? uids : tag == 0x08 ? gids : Map.of();
      Long to = m.get(id);
      if (to != null) {
        id = to;
        changed = true;
      }
      entries.add(new long[] {tag, perm, id});
    }
    if (!changed) {
      return null;
    }
    // the kernel and libacl keep entries sorted by tag, then id
    entries.sort(Comparator.<long[]>comparingLong(e -> e[0]).thenComparingLong(e -> e[2]));
    ByteBuffer out = ByteBuffer.allocate(value.length).order(ByteOrder.LITTLE_ENDIAN);
    out.putInt(2);
    for (long[] e : entries) {
      out.putShort((short) e[0]).putShort((short) e[1]).putInt((int) e[2]);
    }
    return out.array();
  }
}
