package org.osfarm.build;

import java.util.Locale;

/** What a build writes besides the snapshot. */
public enum OutputFormat {
  DIR("dir"),
  TAR("tar"),
  TAR_GZ("tar.gz"),
  TAR_ZST("tar.zst"),
  /** A raw ext4 file system image (no partition table), made by {@code mke2fs -d}. */
  RAW("raw"),
  /** The raw ext4 image converted by {@code qemu-img}. */
  QCOW2("qcow2"),
  /** An OCI image layout directory with one layer per osfarm layer. */
  OCI("oci");

  private final String label;

  OutputFormat(String label) {
    this.label = label;
  }

  public String label() {
    return label;
  }

  /** Parses a format name. */
  public static OutputFormat parse(String s) {
    String k = s.toLowerCase(Locale.ROOT);
    for (OutputFormat f : values()) {
      if (f.label.equals(k)) {
        return f;
      }
    }
    return switch (k) {
      case "tgz", "gz" -> TAR_GZ;
      case "zst", "tzst" -> TAR_ZST;
      case "img", "ext4" -> RAW;
      case "directory" -> DIR;
      default ->
          throw new IllegalArgumentException(
              "unknown format '" + s + "': use dir, tar, tar.gz, tar.zst, raw, qcow2 or oci");
    };
  }

  /** The format a file name suggests, or null. */
  public static OutputFormat fromFileName(String name) {
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
    if (n.endsWith(".img") || n.endsWith(".raw") || n.endsWith(".ext4")) {
      return RAW;
    }
    if (n.endsWith(".qcow2")) {
      return QCOW2;
    }
    return null;
  }
}
