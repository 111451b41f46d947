package org.osfarm.server;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * SHA-512 crypt ({@code $6$salt$hash}), the password hash of glibc's crypt(3) and {@code
 * /etc/shadow}, as {@code openssl passwd -6} and {@code mkpasswd -m sha-512} write it.
 *
 * <p>Algorithm: Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512" (2007-2008, the reference in
 * glibc's {@code sha512-crypt.c}), with the default 5000 rounds and a salt of at most 16 characters
 * of {@code [./0-9A-Za-z]}. Used so that a job row never holds a password in clear: the image gets
 * the hash with {@code chpasswd -e}.
 */
final class ShaCrypt {
  private static final String ITOA64 =
      "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  private static final int ROUNDS = 5000;

  private ShaCrypt() {}

  /** The salt alphabet, for callers that make salts. */
  static char saltChar(int i) {
    return ITOA64.charAt(i & 0x3f);
  }

  /** {@code $6$salt$...} of {@code password} with {@code salt} (1 to 16 characters). */
  static String sha512(String password, String salt) {
    if (salt.isEmpty()
        || salt.length() > 16
        || !salt.chars().allMatch(c -> ITOA64.indexOf(c) >= 0)) {
      throw new IllegalArgumentException("salt must be 1 to 16 characters of [./0-9A-Za-z]");
    }
    byte[] p = password.getBytes(StandardCharsets.UTF_8);
    byte[] s = salt.getBytes(StandardCharsets.US_ASCII);
    MessageDigest md = sha512();

    // B = H(P S P)
    md.update(p);
    md.update(s);
    md.update(p);
    byte[] b = md.digest();

    // A = H(P S B* bits-of-len(P))
    md.update(p);
    md.update(s);
    int n;
    for (n = p.length; n > 64; n -= 64) {
      md.update(b, 0, 64);
    }
    md.update(b, 0, n);
    for (n = p.length; n > 0; n >>= 1) {
      if ((n & 1) != 0) {
        md.update(b, 0, 64);
      } else {
        md.update(p);
      }
    }
    byte[] a = md.digest();

    // P' from H(P repeated |P| times), S' from H(S repeated 16 + A[0] times)
    for (int i = 0; i < p.length; i++) {
      md.update(p);
    }
    byte[] pBytes = repeat(md.digest(), p.length);
    for (int i = 0; i < 16 + (a[0] & 0xff); i++) {
      md.update(s);
    }
    byte[] sBytes = repeat(md.digest(), s.length);

    byte[] c = a;
    for (int i = 0; i < ROUNDS; i++) {
      if ((i & 1) != 0) {
        md.update(pBytes);
      } else {
        md.update(c);
      }
      if (i % 3 != 0) {
        md.update(sBytes);
      }
      if (i % 7 != 0) {
        md.update(pBytes);
      }
      if ((i & 1) != 0) {
        md.update(c);
      } else {
        md.update(pBytes);
      }
      c = md.digest();
    }

    StringBuilder out = new StringBuilder("$6$").append(salt).append('$');
    int[][] order = {
      {0, 21, 42},
      {22, 43, 1},
      {44, 2, 23},
      {3, 24, 45},
      {25, 46, 4},
      {47, 5, 26},
      {6, 27, 48},
      {28, 49, 7},
      {50, 8, 29},
      {9, 30, 51},
      {31, 52, 10},
      {53, 11, 32},
      {12, 33, 54},
      {34, 55, 13},
      {56, 14, 35},
      {15, 36, 57},
      {37, 58, 16},
      {59, 17, 38},
      {18, 39, 60},
      {40, 61, 19},
      {62, 20, 41}
    };
    for (int[] g : order) {
      b64(out, c[g[0]] & 0xff, c[g[1]] & 0xff, c[g[2]] & 0xff, 4);
    }
    b64(out, 0, 0, c[63] & 0xff, 2);
    return out.toString();
  }

  /** Whether {@code hash} ({@code $6$salt$...}) is the hash of {@code password}. */
  static boolean verify(String password, String hash) {
    if (!hash.startsWith("$6$")) {
      return false;
    }
    int end = hash.indexOf('$', 3);
    if (end < 0) {
      return false;
    }
    String salt = hash.substring(3, end);
    return MessageDigest.isEqual(
        sha512(password, salt).getBytes(StandardCharsets.US_ASCII),
        hash.getBytes(StandardCharsets.US_ASCII));
  }

  private static void b64(StringBuilder out, int b2, int b1, int b0, int chars) {
    int w = (b2 << 16) | (b1 << 8) | b0;
    for (int i = 0; i < chars; i++) {
      out.append(ITOA64.charAt(w & 0x3f));
      w >>>= 6;
    }
  }

  private static byte[] repeat(byte[] digest, int length) {
    byte[] r = new byte[length];
    for (int i = 0; i < length; i++) {
      r[i] = digest[i % digest.length];
    }
    return r;
  }

  private static MessageDigest sha512() {
    try {
      return MessageDigest.getInstance("SHA-512");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
