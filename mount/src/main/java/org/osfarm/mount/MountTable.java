package org.osfarm.mount;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The kernel's mount table ({@code /proc/self/mountinfo}), to see what is mounted where. */
public final class MountTable {
  private MountTable() {}

  /** One mount: where, what type, its source and its super-block options. */
  public record Mount(Path mountpoint, String type, String source, String superOptions) {
    /** A super-block option's value (e.g. {@code lowerdir} of an overlay), or null. */
    public String option(String name) {
      for (String o : superOptions.split(",")) {
        if (o.startsWith(name + "=")) {
          return o.substring(name.length() + 1);
        }
      }
      return null;
    }
  }

  /** The FUSE type of osfarm's read-only view. */
  public static final String FUSE_TYPE = "fuse.osfarm";

  /** All mounts, in mount order. */
  public static List<Mount> read() throws IOException {
    return parse(Files.readAllLines(Path.of("/proc/self/mountinfo")));
  }

  /** Parses lines in the format of {@code /proc/self/mountinfo}. */
  public static List<Mount> parse(List<String> mountinfo) {
    List<Mount> out = new ArrayList<>();
    for (String line : mountinfo) {
      // id parent major:minor root mountpoint options [optional...] - type source superoptions
      String[] f = line.split(" ");
      int dash = -1;
      for (int i = 6; i < f.length; i++) {
        if (f[i].equals("-")) {
          dash = i;
          break;
        }
      }
      if (dash < 0 || dash + 1 >= f.length) {
        continue;
      }
      out.add(
          new Mount(
              Path.of(unescape(f[4])),
              f[dash + 1],
              dash + 2 < f.length ? unescape(f[dash + 2]) : "",
              dash + 3 < f.length ? unescape(f[dash + 3]) : ""));
    }
    return out;
  }

  /** The topmost mount on {@code mountpoint}, or null. */
  public static Mount top(Path mountpoint) throws IOException {
    Path p = mountpoint.toAbsolutePath().normalize();
    Mount found = null;
    for (Mount m : read()) {
      if (m.mountpoint().equals(p)) {
        found = m;
      }
    }
    return found;
  }

  /** True if a mount of {@code type} is on {@code mountpoint}. */
  public static boolean isMounted(Path mountpoint, String type) throws IOException {
    Path p = mountpoint.toAbsolutePath().normalize();
    for (Mount m : read()) {
      if (m.mountpoint().equals(p) && m.type().equals(type)) {
        return true;
      }
    }
    return false;
  }

  /** Undoes the kernel's octal escapes ({@code \040} for a space). */
  static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length()) {
        try {
          sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
          i += 3;
          continue;
        } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
          // not an escape
        }
      }
      sb.append(c);
    }
    return sb.toString();
  }
}
