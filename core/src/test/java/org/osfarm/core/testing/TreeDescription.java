package org.osfarm.core.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.osfarm.core.Attr;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.EntrySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.TarSource;
import org.osfarm.core.tar.TarHeader;

/**
 * Describes a tar or a directory as a sorted map from normalized path to a line with every field
 * tar carries, the content's SHA-256, and the hard-link group (all names of the same file). Two
 * trees are equal for osfarm's round trip exactly when their descriptions are equal.
 */
public final class TreeDescription {
  private TreeDescription() {}

  /** What to compare. */
  public enum Mode {
    /** Every field, names of owners and kept extended-header records included (tar vs tar). */
    STRICT,
    /** Fields a file system holds (tar or dir vs dir): no owner names, no kept header records. */
    FILESYSTEM
  }

  public static Map<String, String> ofTar(Path tar, Mode mode) throws IOException {
    try (TarSource s = TarSource.open(tar)) {
      return describe(s, mode);
    }
  }

  public static Map<String, String> ofDirectory(Path dir) throws IOException {
    try (DirectorySource s = new DirectorySource(dir, ProgressListener.NONE)) {
      return describe(s, Mode.FILESYSTEM);
    }
  }

  public static Map<String, String> describe(EntrySource src, Mode mode) throws IOException {
    Map<String, String> lines = new TreeMap<>();
    Map<String, String> linkOf = new HashMap<>();
    List<String> order = new ArrayList<>();
    TarHeader h;
    while ((h = src.next()) != null) {
      String path = normalize(h.name());
      StringBuilder sb = new StringBuilder();
      char type = (char) h.typeflag();
      sb.append(type == '1' ? '0' : type);
      sb.append(String.format(" mode=%04o uid=%d gid=%d", h.mode(), h.uid(), h.gid()));
      if (mode == Mode.STRICT) {
        sb.append(" uname=")
            .append(Bytes.escape(h.uname()))
            .append(" gname=")
            .append(Bytes.escape(h.gname()));
      }
      sb.append(" mtime=").append(h.mtimeSeconds()).append('.');
      sb.append(String.format("%09d", h.mtimeNanos()));
      if (type == '0') {
        sb.append(" size=").append(h.size()).append(" sha256=").append(sha(src.content()));
      }
      if (type == '2') {
        sb.append(" link=").append(Bytes.escape(h.linkName()));
      }
      if (type == '3' || type == '4') {
        sb.append(" dev=").append(h.devMajor()).append(',').append(h.devMinor());
      }
      for (Attr a : h.xattrs()) {
        sb.append(" xattr:").append(a.nameString()).append('=').append(Bytes.escape(a.value()));
      }
      if (mode == Mode.STRICT) {
        for (Attr a : h.extras()) {
          sb.append(" pax:").append(a.nameString()).append('=').append(Bytes.escape(a.value()));
        }
      }
      if (type == '1') {
        String target = normalize(h.linkName());
        linkOf.put(path, target);
        lines.put(path, null); // filled from the target below
      } else {
        lines.put(path, sb.toString());
      }
      order.add(path);
    }
    // Hard links: each name gets its file's line and the sorted list of all its names.
    Map<String, List<String>> groups = new HashMap<>();
    for (Map.Entry<String, String> e : linkOf.entrySet()) {
      String t = e.getValue();
      while (linkOf.containsKey(t)) {
        t = linkOf.get(t);
      }
      groups.computeIfAbsent(t, k -> new ArrayList<>(List.of(k))).add(e.getKey());
    }
    for (Map.Entry<String, List<String>> g : groups.entrySet()) {
      List<String> names = g.getValue();
      names.sort(null);
      String base = lines.get(g.getKey());
      for (String n : names) {
        lines.put(n, base + " links=" + names);
      }
    }
    return lines;
  }

  private static String normalize(byte[] name) {
    String s = Bytes.escape(Bytes.join(Bytes.split(name)));
    return s.isEmpty() ? "." : s;
  }

  private static String sha(InputStream in) throws IOException {
    MessageDigest md = Digest.newMessageDigest();
    byte[] buf = new byte[1 << 16];
    int n;
    while ((n = in.read(buf)) > 0) {
      md.update(buf, 0, n);
    }
    return Digest.of(md).hex();
  }
}
