package org.osfarm.cli;

import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * The start-up fast lane of {@code osfarm build}: a request already answered is answered again from
 * the request cache before picocli is loaded. picocli's classes are compiled for Java 5, so the
 * class-data-sharing archive cannot hold them, and building its model by reflection took most of a
 * cached request's time.
 *
 * <p>This parser accepts only plain command lines: {@code [--repo DIR] build} followed by {@code
 * build}'s options each as its own word with its value in the next word, and at most one spec file.
 * Anything else (help, {@code --plan}, {@code --opt=value}, clustered short options,
 * {@code @files}, repeated single-value options, values that look like options) is declined, and
 * picocli parses the command line as always. What it accepts, picocli parses to the same fields
 * ({@code FastBuildTest} checks both on the same command lines).
 */
final class FastBuild {
  private FastBuild() {}

  /**
   * Parses a plain {@code build} command line into a {@link BuildCommand}, or returns null to leave
   * it to picocli.
   */
  static BuildCommand parse(String[] args) {
    OsfarmCommand top = new OsfarmCommand();
    BuildCommand b = new BuildCommand();
    b.top = top;
    int i = 0;
    boolean seenBuild = false;
    boolean repoSet = false;
    boolean spec = false;
    java.util.Set<String> single = new java.util.HashSet<>();
    for (; i < args.length; i++) {
      String a = args[i];
      if (unusual(a)) {
        return null;
      }
      if (!seenBuild) {
        if (a.equals("build")) {
          seenBuild = true;
          continue;
        }
        if (a.equals("--repo") && !repoSet && i + 1 < args.length && plain(args[i + 1])) {
          top.repo = Path.of(args[++i]);
          repoSet = true;
          continue;
        }
        return null;
      }
      if (!a.startsWith("-")) {
        if (spec) {
          return null;
        }
        b.specFile = Path.of(a);
        spec = true;
        continue;
      }
      switch (a) {
        case "--kernel" -> {
          if (!single.add("kernel")) {
            return null;
          }
          b.kernel = true;
          continue;
        }
        case "-v", "--verbose" -> {
          if (!single.add("verbose")) {
            return null;
          }
          b.verbose = true;
          continue;
        }
        default -> {}
      }
      if (i + 1 >= args.length || !plain(args[i + 1])) {
        return null;
      }
      String v = args[++i];
      switch (a) {
        case "--repo" -> {
          if (repoSet) {
            return null;
          }
          top.repo = Path.of(v);
          repoSet = true;
        }
        case "-g", "--group" -> b.groups.add(v);
        case "-p", "--package" -> b.packages.add(v);
        case "-o", "--output" -> b.outputs.add(Path.of(v));
        case "--format" -> b.formats.add(v);
        default -> {
          String key =
              switch (a) {
                case "--class" -> "class";
                case "-a", "--arch" -> "arch";
                case "-w", "--root-password" -> "pw";
                case "--hostname" -> "hostname";
                case "--name" -> "name";
                case "--ref" -> "ref";
                case "--cache-dir" -> "cache";
                default -> null;
              };
          if (key == null || !single.add(key)) {
            return null; // an option this lane does not know (e.g. --plan): picocli decides
          }
          switch (key) {
            case "class" -> b.className = v;
            case "arch" -> b.arch = v;
            case "pw" -> b.rootPassword = v;
            case "hostname" -> b.hostname = v;
            case "name" -> b.name = v;
            case "ref" -> b.ref = v;
            default -> b.cacheDir = Path.of(v);
          }
        }
      }
    }
    return seenBuild ? b : null;
  }

  /** A value word: not empty, no option, no {@code @file}. */
  static boolean plain(String v) {
    return !v.isEmpty() && !v.startsWith("-") && !v.startsWith("@");
  }

  /** A word the fast lanes leave to picocli: an {@code @file}, {@code --}, {@code --opt=value}. */
  static boolean unusual(String a) {
    return a.startsWith("@") || a.equals("--") || a.contains("=") && a.startsWith("-");
  }

  /**
   * Answers a plain {@code build} command line from the request cache.
   *
   * @return the exit code, or null when the full command line must run
   */
  static Integer tryAnswer(String[] args, PrintWriter out, PrintWriter err) {
    BuildCommand b;
    try {
      b = parse(args);
    } catch (RuntimeException e) {
      return null; // e.g. an invalid path: picocli reports it
    }
    return b == null ? null : b.answerFromCache(out, err);
  }
}
