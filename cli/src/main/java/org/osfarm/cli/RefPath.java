package org.osfarm.cli;

import org.osfarm.core.Bytes;

/** {@code REF[:PATH]} as the commands take it; PATH may use {@code \xNN} escapes. */
record RefPath(String ref, byte[] path) {
  static RefPath parse(String s) {
    int colon = s.indexOf(':');
    if (colon < 0) {
      return new RefPath(s, new byte[0]);
    }
    return new RefPath(s.substring(0, colon), Bytes.unescape(s.substring(colon + 1)));
  }
}
