package org.osfarm.mount.boot;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Writes a cpio archive in the "newc" format the kernel unpacks as an initramfs (see the kernel's
 * {@code Documentation/driver-api/early-userspace/buffer-format.rst}): a 110-byte ASCII header per
 * entry, the name NUL-terminated, name and data each padded to 4 bytes, and a {@code TRAILER!!!}
 * entry at the end. Every entry is owned by root and dated 0, so the archive depends only on the
 * files' contents and modes; hard links are not used. Not thread-safe.
 */
final class CpioWriter implements AutoCloseable {
  private final OutputStream out;
  private long written;
  private int ino = 1;

  CpioWriter(OutputStream out) {
    this.out = out;
  }

  /** Adds {@code dir} and everything below it, named relative to {@code dir}, sorted by name. */
  void addTree(Path dir) throws IOException {
    List<Path> all = new ArrayList<>();
    try (Stream<Path> s = Files.walk(dir)) {
      s.filter(p -> !p.equals(dir)).forEach(all::add);
    }
    all.sort((a, b) -> dir.relativize(a).toString().compareTo(dir.relativize(b).toString()));
    for (Path p : all) {
      String name = dir.relativize(p).toString();
      if (Files.isSymbolicLink(p)) {
        symlink(name, Files.readSymbolicLink(p).toString());
      } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        directory(name, mode(p));
      } else {
        file(name, mode(p), p);
      }
    }
  }

  void directory(String name, int perm) throws IOException {
    header(name, 0040000 | perm, 0, 0, 0, 2);
  }

  void file(String name, int perm, Path content) throws IOException {
    long size = Files.size(content);
    header(name, 0100000 | perm, size, 0, 0, 1);
    try (InputStream in = Files.newInputStream(content)) {
      long n = in.transferTo(out);
      if (n != size) {
        throw new IOException(content + " changed while it was archived");
      }
    }
    written += size;
    pad();
  }

  void file(String name, int perm, byte[] content) throws IOException {
    header(name, 0100000 | perm, content.length, 0, 0, 1);
    out.write(content);
    written += content.length;
    pad();
  }

  void symlink(String name, String target) throws IOException {
    byte[] t = target.getBytes(StandardCharsets.UTF_8);
    header(name, 0120777, t.length, 0, 0, 1);
    out.write(t);
    written += t.length;
    pad();
  }

  void charDevice(String name, int perm, int major, int minor) throws IOException {
    header(name, 0020000 | perm, 0, major, minor, 1);
  }

  @Override
  public void close() throws IOException {
    header("TRAILER!!!", 0, 0, 0, 0, 1);
    // the kernel reads the archive in 512-byte blocks
    while (written % 512 != 0) {
      out.write(0);
      written++;
    }
    out.close();
  }

  private void header(String name, int mode, long size, int rdevMajor, int rdevMinor, int nlink)
      throws IOException {
    if (size > 0xffffffffL) {
      throw new IOException(name + ": too large for cpio newc (" + size + " bytes)");
    }
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    StringBuilder h = new StringBuilder(110);
    h.append("070701");
    hex(h, name.equals("TRAILER!!!") ? 0 : ino++); // c_ino
    hex(h, mode);
    hex(h, 0); // uid
    hex(h, 0); // gid
    hex(h, nlink);
    hex(h, 0); // mtime
    hex(h, size);
    hex(h, 0); // devmajor
    hex(h, 0); // devminor
    hex(h, rdevMajor);
    hex(h, rdevMinor);
    hex(h, n.length + 1);
    hex(h, 0); // check
    out.write(h.toString().getBytes(StandardCharsets.US_ASCII));
    out.write(n);
    out.write(0);
    written += 110 + n.length + 1;
    pad();
  }

  private void pad() throws IOException {
    while (written % 4 != 0) {
      out.write(0);
      written++;
    }
  }

  private static void hex(StringBuilder h, long v) {
    String s = Long.toHexString(v);
    h.repeat('0', 8 - s.length()).append(s);
  }

  private static int mode(Path p) throws IOException {
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS);
    int m = 0;
    for (PosixFilePermission x : perms) {
      m |= 1 << (8 - x.ordinal());
    }
    return m;
  }
}
