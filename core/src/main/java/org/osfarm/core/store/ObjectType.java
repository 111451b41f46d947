package org.osfarm.core.store;

/** What an object holds. The type is stored beside the object, not hashed into its id. */
public enum ObjectType {
  /** File content (a whole small file, or one chunk of a large one). */
  BLOB(1),
  /** The ordered chunk ids and lengths of a large file. */
  CHUNKLIST(2),
  /** One directory: its entries sorted by name. */
  TREE(3),
  /** A snapshot: root tree, parents, time, message, provenance. */
  SNAPSHOT(4);

  private final int code;

  ObjectType(int code) {
    this.code = code;
  }

  /** The byte that encodes this type on disk. */
  public int code() {
    return code;
  }

  /** Decodes a type byte; throws {@link IllegalArgumentException} on an unknown one. */
  public static ObjectType ofCode(int code) {
    for (ObjectType t : values()) {
      if (t.code == code) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown object type " + code);
  }
}
