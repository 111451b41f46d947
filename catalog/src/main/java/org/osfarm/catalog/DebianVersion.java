package org.osfarm.catalog;

/**
 * Debian version comparison, as {@code dpkg --compare-versions} does it: epoch, then upstream
 * version and revision compared by alternating non-digit and digit runs, where '~' sorts before
 * everything, even the end of the string (deb-version(7)).
 */
public final class DebianVersion {
  private DebianVersion() {}

  /** Negative, zero or positive as {@code a} is older than, equal to or newer than {@code b}. */
  public static int compare(String a, String b) {
    long ea = epoch(a);
    long eb = epoch(b);
    if (ea != eb) {
      return Long.compare(ea, eb);
    }
    String ra = stripEpoch(a);
    String rb = stripEpoch(b);
    int da = ra.lastIndexOf('-');
    int db = rb.lastIndexOf('-');
    String ua = da < 0 ? ra : ra.substring(0, da);
    String ub = db < 0 ? rb : rb.substring(0, db);
    int c = compareParts(ua, ub);
    if (c != 0) {
      return c;
    }
    return compareParts(da < 0 ? "" : ra.substring(da + 1), db < 0 ? "" : rb.substring(db + 1));
  }

  private static long epoch(String v) {
    int i = v.indexOf(':');
    if (i < 0) {
      return 0;
    }
    try {
      return Long.parseLong(v.substring(0, i));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad version '" + v + "': the epoch must be a number");
    }
  }

  private static String stripEpoch(String v) {
    int i = v.indexOf(':');
    return i < 0 ? v : v.substring(i + 1);
  }

  private static int order(char c) {
    if (Character.isLetter(c)) {
      return c;
    }
    if (c == '~') {
      return -1;
    }
    return c + 256;
  }

  private static int compareParts(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() || j < b.length()) {
      int first = 0;
      while ((i < a.length() && !Character.isDigit(a.charAt(i)))
          || (j < b.length() && !Character.isDigit(b.charAt(j)))) {
        int ac = i < a.length() && !Character.isDigit(a.charAt(i)) ? order(a.charAt(i)) : 0;
        int bc = j < b.length() && !Character.isDigit(b.charAt(j)) ? order(b.charAt(j)) : 0;
        if (ac != bc) {
          return ac - bc;
        }
        i++;
        j++;
      }
      while (i < a.length() && a.charAt(i) == '0') {
        i++;
      }
      while (j < b.length() && b.charAt(j) == '0') {
        j++;
      }
      while (i < a.length()
          && Character.isDigit(a.charAt(i))
          && j < b.length()
          && Character.isDigit(b.charAt(j))) {
        if (first == 0) {
          first = a.charAt(i) - b.charAt(j);
        }
        i++;
        j++;
      }
      if (i < a.length() && Character.isDigit(a.charAt(i))) {
        return 1;
      }
      if (j < b.length() && Character.isDigit(b.charAt(j))) {
        return -1;
      }
      if (first != 0) {
        return first;
      }
    }
    return 0;
  }
}
