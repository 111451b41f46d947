package org.osfarm.core;

/** The kind of a file-system entry, as tar and POSIX know them. */
public enum EntryType {
  FILE(1, '-'),
  DIR(2, 'd'),
  SYMLINK(3, 'l'),
  /** A further name of a regular file; the entry's link is the path of the first name. */
  HARDLINK(4, 'h'),
  CHAR(5, 'c'),
  BLOCK(6, 'b'),
  FIFO(7, 'p'),
  SOCKET(8, 's');

  private final int code;
  private final char letter;

  EntryType(int code, char letter) {
    this.code = code;
    this.letter = letter;
  }

  public int code() {
    return code;
  }

  /** The letter {@code ls -l} shows for this type ({@code h} for a hard link). */
  public char letter() {
    return letter;
  }

  /** A lowercase name for manifests: file, dir, symlink, hardlink, char, block, fifo, socket. */
  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }

  public static EntryType ofCode(int code) {
    for (EntryType t : values()) {
      if (t.code == code) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown entry type " + code);
  }
}
