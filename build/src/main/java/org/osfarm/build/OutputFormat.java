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

  /** The build output that writes what core's export writes in {@code f}. */
  public static OutputFormat of(org.osfarm.core.ExportFormat f) {
    return parse(f.label());
  }

  /** Parses a format name: core's export formats (and their aliases), raw, qcow2, oci. */
  public static OutputFormat parse(String s) {
    String k = s.toLowerCase(Locale.ROOT);
    for (OutputFormat f : values()) {
      if (f.label.equals(k)) {
        return f;
      }
    }
    switch (k) {
      case "img", "ext4":
        return RAW;
      default:
        break;
    }
    try {
      return parse(org.osfarm.core.ExportFormat.parse(k).label());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "unknown format '" + s + "': use dir, tar, tar.gz, tar.zst, raw, qcow2 or oci");
    }
  }

  /** The format a file name suggests, or null. */
  public static OutputFormat fromFileName(String name) {
    org.osfarm.core.ExportFormat tar = org.osfarm.core.ExportFormat.fromFileName(name);
    if (tar != null) {
      return of(tar);
    }
    String n = name.toLowerCase(Locale.ROOT);
    if (n.endsWith(".img") || n.endsWith(".raw") || n.endsWith(".ext4")) {
      return RAW;
    }
    if (n.endsWith(".qcow2")) {
      return QCOW2;
    }
    return null;
  }
}
