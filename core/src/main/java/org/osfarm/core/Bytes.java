package org.osfarm.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Names and paths are bytes (Linux names need not be UTF-8). This is how they are shown and parsed
 * at the edges: valid UTF-8 shows as itself; other bytes, backslash and control characters show as
 * {@code \xNN}, which {@link #unescape} reverses.
 */
public final class Bytes {
  private Bytes() {}

  public static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Shows bytes as text, escaping what is not printable UTF-8. Reversible with {@link #unescape}.
   */
  public static String escape(byte[] b) {
    try {
      String s =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(java.nio.ByteBuffer.wrap(b))
              .toString();
      boolean plain = true;
      for (int i = 0; i < s.length() && plain; i++) {
        char c = s.charAt(i);
        plain = c >= 0x20 && c != 0x7f && c != '\\';
      }
      if (plain) {
        return s;
      }
    } catch (CharacterCodingException e) {
      // fall through to byte-wise escaping
    }
    StringBuilder sb = new StringBuilder();
    int i = 0;
    while (i < b.length) {
      int c = b[i] & 0xff;
      int n = utf8SequenceLength(b, i);
      if (n > 1) {
        sb.append(new String(b, i, n, StandardCharsets.UTF_8));
        i += n;
      } else if (c >= 0x20 && c < 0x7f && c != '\\') {
        sb.append((char) c);
        i++;
      } else {
        sb.append(String.format("\\x%02x", c));
        i++;
      }
    }
    return sb.toString();
  }

  private static int utf8SequenceLength(byte[] b, int i) {
    int c = b[i] & 0xff;
    int n;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
    } else {
      return 1;
    }
    if (i + n > b.length) {
      return 1;
    }
    try {
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(b, i, n));
      return n;
    } catch (CharacterCodingException e) {
      return 1;
    }
  }

  /** Reverses {@link #escape}: {@code \xNN} becomes the byte NN, everything else its UTF-8. */
  public static byte[] unescape(String s) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '\\'
          && i + 4 <= s.length()
          && s.charAt(i + 1) == 'x'
          && Character.digit(s.charAt(i + 2), 16) >= 0
          && Character.digit(s.charAt(i + 3), 16) >= 0) {
        out.write(Integer.parseInt(s.substring(i + 2, i + 4), 16));
        i += 4;
      } else {
        int cp = s.codePointAt(i);
        byte[] u = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
        out.write(u, 0, u.length);
        i += Character.charCount(cp);
      }
    }
    return out.toByteArray();
  }

  /** Splits a path on '/', dropping empty and "." components. */
  public static List<byte[]> split(byte[] path) {
    List<byte[]> parts = new ArrayList<>();
    int start = 0;
    for (int i = 0; i <= path.length; i++) {
      if (i == path.length || path[i] == '/') {
        if (i > start && !(i - start == 1 && path[start] == '.')) {
          parts.add(Arrays.copyOfRange(path, start, i));
        }
        start = i + 1;
      }
    }
    return parts;
  }

  /** Joins path components with '/'. */
  public static byte[] join(List<byte[]> parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < parts.size(); i++) {
      if (i > 0) {
        out.write('/');
      }
      out.writeBytes(parts.get(i));
    }
    return out.toByteArray();
  }

  /** True if {@code name} is a valid single path component: non-empty, no '/', NUL, "." or "..". */
  public static boolean isValidName(byte[] name) {
    if (name.length == 0 || (name.length == 1 && name[0] == '.')) {
      return false;
    }
    if (name.length == 2 && name[0] == '.' && name[1] == '.') {
      return false;
    }
    for (byte c : name) {
      if (c == '/' || c == 0) {
        return false;
      }
    }
    return true;
  }
}
