package org.osfarm.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Converts the kernel's binary POSIX ACL ({@code system.posix_acl_access} and {@code _default}
 * xattr values) to the text GNU tar stores in {@code SCHILY.acl.access} / {@code
 * SCHILY.acl.default} records, with numeric ids, so GNU tar's {@code --acls} restores ACLs of
 * images osfarm read from a directory.
 */
final class PosixAcl {
  private PosixAcl() {}

  /** The text form, one entry per line, or null if {@code value} is not a valid binary ACL. */
  static byte[] toText(byte[] value) {
    if (value.length < 4 || (value.length - 4) % 8 != 0) {
      return null;
    }
    ByteBuffer b = ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
    if (b.getInt() != 2) {
      return null;
    }
    StringBuilder sb = new StringBuilder();
    while (b.remaining() >= 8) {
      int tag = Short.toUnsignedInt(b.getShort());
      int perm = Short.toUnsignedInt(b.getShort());
      long id = Integer.toUnsignedLong(b.getInt());
      String head =
          switch (tag) {
            case 0x01 -> "user::";
            case 0x02 -> "user:" + id + ":";
            case 0x04 -> "group::";
            case 0x08 -> "group:" + id + ":";
            case 0x10 -> "mask::";
            case 0x20 -> "other::";
            default -> null;
          };
      if (head == null) {
        return null;
      }
      sb.append(head)
          .append((perm & 4) != 0 ? 'r' : '-')
          .append((perm & 2) != 0 ? 'w' : '-')
          .append((perm & 1) != 0 ? 'x' : '-')
          .append('\n');
    }
    return sb.toString().getBytes(StandardCharsets.US_ASCII);
  }
}
