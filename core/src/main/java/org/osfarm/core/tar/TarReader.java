package org.osfarm.core.tar;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.osfarm.core.Attr;
import org.osfarm.core.InvalidInputException;

/**
 * Reads tar archives: v7, ustar, GNU (long names and links, base-256 numbers) and pax (local and
 * global extended headers). Names, link targets and extended-header values are kept as raw bytes,
 * so non-UTF-8 names and binary extended attributes survive. Sparse files and other rarities are
 * rejected with a clear error rather than misread.
 *
 * <p>Every structural problem (bad checksum, truncated stream, malformed extended header) is an
 * {@link InvalidInputException} naming the entry and offset.
 */
public final class TarReader {
  private static final int BLOCK = 512;
  private static final String XATTR_PREFIX = "SCHILY.xattr.";
  private static final long MAX_EXTENDED_HEADER = 64L << 20;

  private final InputStream in;
  private final byte[] block = new byte[BLOCK];
  private long offset;
  private long remaining; // content bytes of the current entry not yet consumed
  private long padding;
  private final Map<String, byte[]> globals = new LinkedHashMap<>();
  private boolean done;

  public TarReader(InputStream in) {
    this.in = in;
  }

  /** Bytes consumed from the underlying stream so far. */
  public long offset() {
    return offset;
  }

  /**
   * The next entry, or null at the end of the archive. Skips unread content of the previous one.
   */
  public TarHeader next() throws IOException {
    if (done) {
      return null;
    }
    skip(remaining + padding);
    remaining = 0;
    padding = 0;
    Map<String, byte[]> pax = new LinkedHashMap<>(globals);
    byte[] longName = null;
    byte[] longLink = null;
    while (true) {
      long headerAt = offset;
      if (!readBlock(true)) {
        done = true;
        return null; // EOF without end-of-archive blocks: accepted, as GNU tar does
      }
      if (isZero(block)) {
        // End of archive: a second zero block should follow; tolerate its absence.
        done = true;
        return null;
      }
      verifyChecksum(headerAt);
      byte type = block[156];
      long size = number(124, 12, headerAt, "size");
      if (size < 0) {
        throw bad(headerAt, "negative size");
      }
      switch (type) {
        case 'x', 'g' -> {
          byte[] data = readSmall(size, headerAt, "extended header");
          Map<String, byte[]> recs = parsePax(data, headerAt);
          if (type == 'g') {
            globals.putAll(recs);
          }
          pax.putAll(recs);
        }
        case 'L' -> longName = trimNul(readSmall(size, headerAt, "GNU long name"));
        case 'K' -> longLink = trimNul(readSmall(size, headerAt, "GNU long link"));
        case 'S' ->
            throw bad(
                headerAt,
                "GNU sparse files are not supported; re-create the archive without --sparse");
        case 'D', 'M', 'N', 'V' ->
            throw bad(headerAt, "GNU tar entry type '" + (char) type + "' is not supported");
        default -> {
          return entry(headerAt, type, size, pax, longName, longLink);
        }
      }
    }
  }

  private TarHeader entry(
      long at, byte type, long size, Map<String, byte[]> pax, byte[] longName, byte[] longLink)
      throws IOException {
    boolean ustar =
        block[257] == 'u'
            && block[258] == 's'
            && block[259] == 't'
            && block[260] == 'a'
            && block[261] == 'r';
    boolean posixUstar = ustar && block[262] == 0;
    byte[] name = field(0, 100);
    if (posixUstar && block[345] != 0) {
      byte[] prefix = field(345, 155);
      byte[] full = new byte[prefix.length + 1 + name.length];
      System.arraycopy(prefix, 0, full, 0, prefix.length);
      full[prefix.length] = '/';
      System.arraycopy(name, 0, full, prefix.length + 1, name.length);
      name = full;
    }
    if (longName != null) {
      name = longName;
    }
    byte[] link = field(157, 100);
    if (longLink != null) {
      link = longLink;
    }
    if (type == 0) {
      type = '0';
    }
    if (type == '7') {
      type = '0'; // contiguous file: a regular file everywhere that matters
    }
    if (type != '0'
        && type != '1'
        && type != '2'
        && type != '3'
        && type != '4'
        && type != '5'
        && type != '6') {
      throw bad(
          at,
          "unsupported tar entry type '"
              + (char) type
              + "' for "
              + new String(name, StandardCharsets.UTF_8));
    }
    int mode = (int) (number(100, 8, at, "mode") & 07777);
    long uid = number(108, 8, at, "uid");
    long gid = number(116, 8, at, "gid");
    long mtime = number(136, 12, at, "mtime");
    int nanos = 0;
    byte[] uname = ustar ? field(265, 32) : new byte[0];
    byte[] gname = ustar ? field(297, 32) : new byte[0];
    long major = ustar && (type == '3' || type == '4') ? number(329, 8, at, "devmajor") : 0;
    long minor = ustar && (type == '3' || type == '4') ? number(337, 8, at, "devminor") : 0;
    // Old tars mark directories by a trailing slash on a regular-file entry.
    if (type == '0' && name.length > 0 && name[name.length - 1] == '/') {
      type = '5';
    }
    for (String k : pax.keySet()) {
      if (k.startsWith("GNU.sparse.")) {
        // pax-format sparse files (GNU formats 0.0, 0.1, 1.0): the data is a sparse map, not the
        // file's content, so reading it as a regular file would store the wrong bytes.
        throw bad(
            at,
            "GNU sparse files are not supported ('"
                + new String(name, StandardCharsets.UTF_8)
                + "'); re-create the archive without --sparse");
      }
    }
    List<Attr> xattrs = new ArrayList<>();
    List<Attr> extras = new ArrayList<>();
    for (Map.Entry<String, byte[]> r : pax.entrySet()) {
      String k = r.getKey();
      byte[] v = r.getValue();
      switch (k) {
        case "path" -> name = v;
        case "linkpath" -> link = v;
        case "size" -> size = paxLong(k, v, at);
        case "uid" -> uid = paxLong(k, v, at);
        case "gid" -> gid = paxLong(k, v, at);
        case "uname" -> uname = v;
        case "gname" -> gname = v;
        case "SCHILY.devmajor" -> major = paxLong(k, v, at);
        case "SCHILY.devminor" -> minor = paxLong(k, v, at);
        case "mtime" -> {
          long[] t = paxTime(v, at);
          mtime = t[0];
          nanos = (int) t[1];
        }
        default -> {
          if (k.startsWith(XATTR_PREFIX)) {
            xattrs.add(
                new Attr(k.substring(XATTR_PREFIX.length()).getBytes(StandardCharsets.UTF_8), v));
          } else {
            extras.add(new Attr(k.getBytes(StandardCharsets.UTF_8), v));
          }
        }
      }
    }
    if (size < 0) {
      throw bad(at, "negative size");
    }
    // Only regular files carry content; others may claim a size (hard links in pax) but own none.
    remaining = (type == '0') ? size : 0;
    if (type != '0' && type != '1' && size > 0 && type != '5') {
      remaining = size; // skip whatever bytes the writer put there
    }
    padding = (BLOCK - (remaining % BLOCK)) % BLOCK;
    xattrs.sort(null);
    extras.sort(null);
    return new TarHeader(
        name,
        type,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtime,
        nanos,
        type == '0' ? size : 0,
        link,
        major,
        minor,
        xattrs,
        extras);
  }

  /** The current entry's content. Reads past it return -1; a truncated archive throws. */
  public InputStream content() {
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (remaining <= 0) {
          return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, remaining));
        if (n < 0) {
          throw new InvalidInputException(
              "the archive is truncated at offset " + offset + " (inside a file's content)");
        }
        remaining -= n;
        offset += n;
        return n;
      }
    };
  }

  private boolean readBlock(boolean eofOk) throws IOException {
    int got = 0;
    while (got < BLOCK) {
      int n = in.read(block, got, BLOCK - got);
      if (n < 0) {
        if (got == 0 && eofOk) {
          return false;
        }
        throw new InvalidInputException(
            "the archive is truncated at offset " + (offset + got) + " (inside a header)");
      }
      got += n;
    }
    offset += BLOCK;
    return true;
  }

  private void skip(long n) throws IOException {
    byte[] buf = n > 0 ? new byte[(int) Math.min(n, 64 * 1024)] : null;
    while (n > 0) {
      int r = in.read(buf, 0, (int) Math.min(n, buf.length));
      if (r < 0) {
        throw new InvalidInputException("the archive is truncated at offset " + offset);
      }
      n -= r;
      offset += r;
    }
  }

  private byte[] readSmall(long size, long at, String what) throws IOException {
    if (size > MAX_EXTENDED_HEADER) {
      throw bad(at, what + " of " + size + " bytes is too large");
    }
    byte[] data = new byte[(int) size];
    int got = 0;
    while (got < size) {
      int n = in.read(data, got, (int) size - got);
      if (n < 0) {
        throw new InvalidInputException(
            "the archive is truncated at offset " + (offset + got) + " (inside a " + what + ")");
      }
      got += n;
    }
    offset += size;
    skip((BLOCK - (size % BLOCK)) % BLOCK);
    return data;
  }

  private Map<String, byte[]> parsePax(byte[] d, long at) {
    Map<String, byte[]> recs = new LinkedHashMap<>();
    int p = 0;
    while (p < d.length) {
      if (d[p] == 0) {
        break; // some writers pad with NULs
      }
      int sp = p;
      long len = 0;
      while (sp < d.length && d[sp] >= '0' && d[sp] <= '9') {
        len = len * 10 + (d[sp] - '0');
        if (len > d.length) {
          throw bad(at, "malformed extended header record length");
        }
        sp++;
      }
      if (sp == p
          || sp >= d.length
          || d[sp] != ' '
          || len <= 0
          || p + len > d.length
          || d[(int) (p + len - 1)] != '\n') {
        throw bad(at, "malformed extended header record");
      }
      int end = (int) (p + len - 1);
      int eq = -1;
      for (int i = sp + 1; i < end; i++) {
        if (d[i] == '=') {
          eq = i;
          break;
        }
      }
      if (eq < 0) {
        throw bad(at, "extended header record without '='");
      }
      String key = new String(d, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
      recs.put(key, Arrays.copyOfRange(d, eq + 1, end));
      p += (int) len;
    }
    return recs;
  }

  private long paxLong(String key, byte[] v, long at) {
    try {
      return Long.parseLong(new String(v, StandardCharsets.US_ASCII).trim());
    } catch (NumberFormatException e) {
      throw bad(at, "extended header '" + key + "' is not a number");
    }
  }

  private long[] paxTime(byte[] v, long at) {
    String s = new String(v, StandardCharsets.US_ASCII).trim();
    try {
      boolean neg = s.startsWith("-");
      String body = neg ? s.substring(1) : s;
      int dot = body.indexOf('.');
      long sec = Long.parseLong(dot < 0 ? body : body.substring(0, dot));
      long nanos = 0;
      if (dot >= 0) {
        String frac = (body.substring(dot + 1) + "000000000").substring(0, 9);
        nanos = Long.parseLong(frac);
      }
      if (neg) {
        // -1.25 means 1.25 s before the epoch: -2 s + 0.75 s
        if (nanos > 0) {
          return new long[] {-sec - 1, 1_000_000_000L - nanos};
        }
        return new long[] {-sec, 0};
      }
      return new long[] {sec, nanos};
    } catch (NumberFormatException e) {
      throw bad(at, "extended header 'mtime' is not a time: " + s);
    }
  }

  private void verifyChecksum(long at) {
    long stored;
    try {
      stored = octal(148, 8);
    } catch (NumberFormatException e) {
      throw bad(at, "not a tar header (no checksum); is this a tar archive?");
    }
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < BLOCK; i++) {
      int b = (i >= 148 && i < 156) ? ' ' : block[i];
      unsigned += b & 0xff;
      signed += (byte) b;
    }
    if (stored != unsigned && stored != signed) {
      throw bad(at, "header checksum mismatch: the archive is corrupt or not a tar archive");
    }
  }

  private long number(int off, int len, long at, String what) {
    if ((block[off] & 0x80) != 0) {
      // GNU base-256: big-endian two's complement in the remaining bits
      long v = (block[off] & 0x40) != 0 ? -1L : 0L;
      v = (v << 6) | (block[off] & 0x3f);
      for (int i = 1; i < len; i++) {
        v = (v << 8) | (block[off + i] & 0xff);
      }
      return v;
    }
    try {
      return octal(off, len);
    } catch (NumberFormatException e) {
      throw bad(at, "field '" + what + "' is not an octal number");
    }
  }

  private long octal(int off, int len) {
    int i = off;
    int end = off + len;
    while (i < end && (block[i] == ' ' || block[i] == 0)) {
      i++;
    }
    if (i == end) {
      return 0;
    }
    long v = 0;
    boolean any = false;
    for (; i < end; i++) {
      byte c = block[i];
      if (c == 0 || c == ' ') {
        break;
      }
      if (c < '0' || c > '7') {
        throw new NumberFormatException();
      }
      v = (v << 3) | (c - '0');
      any = true;
    }
    if (!any) {
      throw new NumberFormatException();
    }
    return v;
  }

  private byte[] field(int off, int len) {
    int end = off;
    while (end < off + len && block[end] != 0) {
      end++;
    }
    return Arrays.copyOfRange(block, off, end);
  }

  private static byte[] trimNul(byte[] b) {
    int end = b.length;
    while (end > 0 && b[end - 1] == 0) {
      end--;
    }
    return Arrays.copyOf(b, end);
  }

  private static boolean isZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private InvalidInputException bad(long at, String why) {
    return new InvalidInputException("invalid tar archive at offset " + at + ": " + why);
  }
}
