package org.osfarm.build;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Confinement of build steps in a user namespace. Unprivileged, mmdebstrap's unshare mode maps the
 * caller to root and its subordinate ids to the rest. As real root, mmdebstrap would not create a
 * user namespace at all, so osfarm first enters one that maps root to root's subordinate range
 * ({@code /etc/subuid}): inside, "root" is host uid 100000 (say) and cannot write anything of the
 * host's, so a hostile maintainer script can only damage its own build tree.
 */
final class Userns {
  private static final int COUNT = 65536;
  private static volatile int[] range;

  private Userns() {}

  static boolean isRoot() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (l.startsWith("Uid:")) {
          return l.split("\\s+")[2].equals("0");
        }
      }
    } catch (IOException e) {
      // not Linux: treat as unprivileged
    }
    return false;
  }

  /** Host uid and gid that root inside a build namespace maps to. */
  static int[] nsRoot() {
    if (!isRoot()) {
      return null;
    }
    int[] r = range;
    if (r == null) {
      r = new int[] {subordinate(Path.of("/etc/subuid")), subordinate(Path.of("/etc/subgid"))};
      range = r;
    }
    return r;
  }

  private static int subordinate(Path file) {
    try {
      if (Files.exists(file)) {
        for (String l : Files.readAllLines(file)) {
          String[] f = l.strip().split(":");
          if (f.length == 3
              && (f[0].equals("root") || f[0].equals("0"))
              && Long.parseLong(f[2]) >= COUNT) {
            return Integer.parseInt(f[1]);
          }
        }
      }
    } catch (IOException | NumberFormatException e) {
      throw new BuildException("cannot read " + file + ": " + e.getMessage(), e);
    }
    throw new BuildException(
        "osfarm runs as root, and builds run in a user namespace mapped to root's subordinate ids,"
            + " but "
            + file
            + " has no range of 65536 ids for root: add the line 'root:100000:65536' to"
            + " /etc/subuid and /etc/subgid (scripts/setup does)");
  }

  private static List<String> enter(boolean privateMounts) {
    int[] r = nsRoot();
    List<String> c = new ArrayList<>();
    if (r != null) {
      c.addAll(
          List.of(
              "unshare",
              "--user",
              "--map-users=" + r[0] + ",0," + COUNT,
              "--map-groups=" + r[1] + ",0," + COUNT,
              "--setuid",
              "0",
              "--setgid",
              "0"));
      if (privateMounts) {
        c.addAll(List.of("--mount", "--pid", "--fork"));
      }
      c.add("--");
    }
    return c;
  }

  /** The command line running mmdebstrap in unshare mode, confined even when we are root. */
  static List<String> mmdebstrap(List<String> args) {
    List<String> c = enter(false);
    c.add("mmdebstrap");
    c.add("--mode=unshare");
    c.addAll(args);
    return c;
  }

  /** The command line running {@code cmd} as root of a fresh user namespace. */
  static List<String> run(List<String> cmd) {
    List<String> c = enter(true);
    if (nsRoot() == null) {
      c.add("mmdebstrap");
      c.add("--unshare-helper");
    }
    c.addAll(cmd);
    return c;
  }

  /** Gives {@code p} to the namespace's root, so build steps can write there. */
  static void own(Path p) throws IOException {
    int[] r = nsRoot();
    if (r != null) {
      Files.setAttribute(p, "unix:uid", r[0]);
      Files.setAttribute(p, "unix:gid", r[1]);
    }
  }

  /** Gives {@code p} back to the caller (root) after a namespace step created it. */
  static void reclaim(Path p) throws IOException {
    if (nsRoot() != null) {
      Files.setAttribute(p, "unix:uid", 0);
      Files.setAttribute(p, "unix:gid", 0);
    }
  }
}
