package org.osfarm.core.tar;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.osfarm.core.Attr;

/**
 * Writes pax-format tar archives that GNU tar, bsdtar and {@link TarReader} read back exactly.
 * Fields that fit the ustar header go there; long or non-ASCII names, large ids and sizes,
 * sub-second times, extended attributes and kept records go in a pax extended header ({@code
 * SCHILY.xattr.NAME} for attributes, as GNU tar writes them).
 */
public final class TarWriter implements AutoCloseable {
  private static final int BLOCK = 512;
  private static final int RECORD = 20 * BLOCK;

  private final OutputStream out;
  private long written;
  private long remaining;

  public TarWriter(OutputStream out) {
    this.out = out;
  }

  /** Writes a header; for a regular file ('0') write exactly {@code h.size()} bytes next. */
  public void putHeader(TarHeader h) throws IOException {
    if (remaining != 0) {
      throw new IllegalStateException(remaining + " bytes of the previous file were not written");
    }
    ByteArrayOutputStream pax = new ByteArrayOutputStream();
    byte[] name = h.name();
    byte[] nameField = name;
    byte[] prefixField = new byte[0];
    if (name.length > 100 || !isAscii(name)) {
      int split = isAscii(name) ? splitPoint(name) : -1;
      if (split > 0) {
        prefixField = Arrays.copyOfRange(name, 0, split);
        nameField = Arrays.copyOfRange(name, split + 1, name.length);
      } else {
        record(pax, "path", name);
        nameField = truncatedAscii(name, 100);
      }
    }
    byte[] link = h.linkName();
    if (link.length > 100 || !isAscii(link)) {
      record(pax, "linkpath", link);
      link = truncatedAscii(link, 100);
    }
    long size = h.typeflag() == '0' ? h.size() : 0;
    if (size > 077777777777L) {
      record(pax, "size", ascii(Long.toString(size)));
    }
    if (h.uid() < 0 || h.uid() > 07777777) {
      record(pax, "uid", ascii(Long.toString(h.uid())));
    }
    if (h.gid() < 0 || h.gid() > 07777777) {
      record(pax, "gid", ascii(Long.toString(h.gid())));
    }
    if (h.mtimeNanos() != 0 || h.mtimeSeconds() < 0 || h.mtimeSeconds() > 077777777777L) {
      record(pax, "mtime", ascii(paxTime(h.mtimeSeconds(), h.mtimeNanos())));
    }
    byte[] uname = h.uname();
    if (uname.length > 32 || !isAscii(uname)) {
      record(pax, "uname", uname);
      uname = new byte[0];
    }
    byte[] gname = h.gname();
    if (gname.length > 32 || !isAscii(gname)) {
      record(pax, "gname", gname);
      gname = new byte[0];
    }
    if (h.devMajor() > 07777777 || h.devMinor() > 07777777) {
      record(pax, "SCHILY.devmajor", ascii(Long.toString(h.devMajor())));
      record(pax, "SCHILY.devminor", ascii(Long.toString(h.devMinor())));
    }
    for (Attr a : h.extras()) {
      record(pax, a.nameString(), a.value());
    }
    for (Attr a : h.xattrs()) {
      record(pax, "SCHILY.xattr." + a.nameString(), a.value());
    }
    if (pax.size() > 0) {
      byte[] data = pax.toByteArray();
      byte[] base = baseName(nameField);
      byte[] paxName = concat(ascii("PaxHeaders/"), base);
      writeHeader(
          truncatedAscii(paxName, 100),
          (byte) 'x',
          0644,
          0,
          0,
          data.length,
          0,
          new byte[0],
          new byte[0],
          new byte[0],
          0,
          0,
          new byte[0]);
      out.write(data);
      pad(data.length);
    }
    long mtimeField = Math.max(0, Math.min(h.mtimeSeconds(), 077777777777L));
    writeHeader(
        nameField,
        h.typeflag(),
        h.mode(),
        clampId(h.uid()),
        clampId(h.gid()),
        Math.min(size, 077777777777L),
        mtimeField,
        link,
        uname,
        gname,
        Math.min(h.devMajor(), 07777777),
        Math.min(h.devMinor(), 07777777),
        prefixField);
    remaining = size;
  }

  /** Writes content of the current file. */
  public void write(byte[] b, int off, int len) throws IOException {
    if (len > remaining) {
      throw new IllegalStateException("writing more than the header's size");
    }
    out.write(b, off, len);
    remaining -= len;
    written += len;
    if (remaining == 0) {
      pad(written);
    }
  }

  /** Copies exactly the current file's remaining size from {@code in}. */
  public void copy(InputStream in) throws IOException {
    if (remaining > 0 && buf == null) {
      // one buffer for the archive: a fresh 64 KiB per file (an image has tens of thousands,
      // most of a few KiB) made zeroing it the largest cost of an export
      buf = new byte[64 * 1024];
    }
    while (remaining > 0) {
      int n = in.read(buf, 0, (int) Math.min(buf.length, remaining));
      if (n < 0) {
        throw new IOException("content ended " + remaining + " bytes early");
      }
      write(buf, 0, n);
    }
  }

  /** Ends the archive (two zero blocks, padded to a 10 KiB record) and flushes; does not close. */
  public void finish() throws IOException {
    if (remaining != 0) {
      throw new IllegalStateException(remaining + " bytes of the last file were not written");
    }
    long total = blocksWritten * BLOCK + 2 * BLOCK;
    long padded = ((total + RECORD - 1) / RECORD) * RECORD;
    out.write(new byte[(int) (padded - blocksWritten * BLOCK)]);
    out.flush();
  }

  @Override
  public void close() throws IOException {
    out.close();
  }

  private long blocksWritten;
  private byte[] buf;
  private static final byte[] ZEROS = new byte[BLOCK];

  private void pad(long len) throws IOException {
    int p = (int) ((BLOCK - (len % BLOCK)) % BLOCK);
    if (p > 0) {
      out.write(ZEROS, 0, p);
    }
    blocksWritten += (len + p) / BLOCK;
    written = 0;
  }

  private void writeHeader(
      byte[] name,
      byte type,
      int mode,
      long uid,
      long gid,
      long size,
      long mtime,
      byte[] link,
      byte[] uname,
      byte[] gname,
      long major,
      long minor,
      byte[] prefix)
      throws IOException {
    byte[] b = new byte[BLOCK];
    System.arraycopy(name, 0, b, 0, Math.min(100, name.length));
    octal(b, 100, 8, mode);
    octal(b, 108, 8, uid);
    octal(b, 116, 8, gid);
    octal(b, 124, 12, size);
    octal(b, 136, 12, mtime);
    b[156] = type;
    System.arraycopy(link, 0, b, 157, Math.min(100, link.length));
    System.arraycopy(ascii("ustar\0"), 0, b, 257, 6);
    b[263] = '0';
    b[264] = '0';
    System.arraycopy(uname, 0, b, 265, Math.min(32, uname.length));
    System.arraycopy(gname, 0, b, 297, Math.min(32, gname.length));
    if (type == '3' || type == '4') {
      octal(b, 329, 8, major);
      octal(b, 337, 8, minor);
    }
    System.arraycopy(prefix, 0, b, 345, Math.min(155, prefix.length));
    Arrays.fill(b, 148, 156, (byte) ' ');
    long sum = 0;
    for (byte x : b) {
      sum += x & 0xff;
    }
    String cs = String.format("%06o", sum);
    System.arraycopy(ascii(cs), 0, b, 148, 6);
    b[154] = 0;
    b[155] = ' ';
    out.write(b);
    blocksWritten++;
  }

  private static void octal(byte[] b, int off, int len, long v) {
    String s = Long.toOctalString(v);
    String padded = "0".repeat(Math.max(0, len - 1 - s.length())) + s;
    byte[] a = ascii(padded);
    System.arraycopy(a, 0, b, off, len - 1);
    b[off + len - 1] = 0;
  }

  private static long clampId(long id) {
    return id < 0 || id > 07777777 ? 0 : id;
  }

  private static String paxTime(long sec, int nanos) {
    if (sec < 0 && nanos > 0) {
      // sec + nanos/1e9 with sec negative: print as -(|sec| - 1).(1e9 - nanos)
      return "-" + (-sec - 1) + "." + String.format("%09d", 1_000_000_000 - nanos);
    }
    return nanos == 0 ? Long.toString(sec) : sec + "." + String.format("%09d", nanos);
  }

  private static void record(ByteArrayOutputStream pax, String key, byte[] value) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    int body = 1 + k.length + 1 + value.length + 1; // " key=value\n"
    int len = body + Integer.toString(body).length();
    if (Integer.toString(len).length() != Integer.toString(body).length()) {
      len = body + Integer.toString(len).length();
    }
    pax.writeBytes(ascii(Integer.toString(len)));
    pax.write(' ');
    pax.writeBytes(k);
    pax.write('=');
    pax.writeBytes(value);
    pax.write('\n');
  }

  /** Where to split a long ASCII name into ustar prefix and name, or -1. */
  private static int splitPoint(byte[] name) {
    for (int i = Math.min(name.length - 1, 155); i > 0; i--) {
      if (name[i] == '/' && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
        return i;
      }
    }
    return -1;
  }

  private static boolean isAscii(byte[] b) {
    for (byte x : b) {
      if (x <= 0) {
        return false;
      }
    }
    return true;
  }

  private static byte[] truncatedAscii(byte[] b, int max) {
    byte[] r = new byte[Math.min(max, b.length)];
    for (int i = 0; i < r.length; i++) {
      r[i] = b[i] > 0 ? b[i] : (byte) '_';
    }
    return r;
  }

  private static byte[] baseName(byte[] name) {
    int end = name.length;
    while (end > 0 && name[end - 1] == '/') {
      end--;
    }
    int start = end;
    while (start > 0 && name[start - 1] != '/') {
      start--;
    }
    return Arrays.copyOfRange(name, start, end);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
