package org.osfarm.server;

/** Checks of names that end up in refs and file names. */
final class Validation {
  private Validation() {}

  /** An image name: a plain word, never a path. */
  static String imageName(String name) {
    if (name == null || name.isBlank()) {
      throw new Problem(400, "invalid-name", "Invalid image name", "the image needs a name");
    }
    if (!name.matches("[A-Za-z0-9][A-Za-z0-9._+-]{0,63}") || name.contains("..")) {
      throw new Problem(
          400,
          "invalid-name",
          "Invalid image name",
          "image name '"
              + (name.length() > 80 ? name.substring(0, 80) + "…" : name)
              + "': use letters, digits, '.', '_', '+', '-' (at most 64), no '/' or '..'");
    }
    return name;
  }
}
