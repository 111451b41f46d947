package org.osfarm.core;

import java.util.Locale;

/** What {@code export} writes. */
public enum ExportFormat {
  TAR("tar"),
  TAR_GZ("tar.gz"),
  TAR_ZST("tar.zst"),
  DIR("dir");

  private final String label;

  ExportFormat(String label) {
    this.label = label;
  }

  public String label() {
    return label;
  }

  /** Parses "tar", "tar.gz" (or "tgz"), "tar.zst", "dir". */
  public static ExportFormat parse(String s) {
    String k = s.toLowerCase(Locale.ROOT);
    return switch (k) {
      case "tar" -> TAR;
      case "tar.gz", "tgz", "gz" -> TAR_GZ;
      case "tar.zst", "tzst", "zst" -> TAR_ZST;
      case "dir", "directory" -> DIR;
      default ->
          throw new IllegalArgumentException(
              "unknown format '" + s + "': use tar, tar.gz, tar.zst or dir");
    };
  }

  /** The format a file name suggests, or null. */
  public static ExportFormat fromFileName(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    if (n.endsWith(".tar.gz") || n.endsWith(".tgz")) {
      return TAR_GZ;
    }
    if (n.endsWith(".tar.zst") || n.endsWith(".tzst")) {
      return TAR_ZST;
    }
    if (n.endsWith(".tar")) {
      return TAR;
    }
    return null;
  }
}
