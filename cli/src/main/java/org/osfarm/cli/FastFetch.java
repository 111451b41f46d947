package org.osfarm.cli;

import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;

/**
 * The start-up fast lane of {@code osfarm fetch}, like {@link FastBuild}'s: a plain command line
 * runs without loading picocli, whose classes the class-data-sharing archive cannot hold (they are
 * compiled for Java 5) and whose model, built by reflection for every command, took about a tenth
 * of a second of a fetch that otherwise lasts one second, and kept the JIT compiler busy while the
 * fetch needed it for SHA-256.
 *
 * <p>It accepts only {@code [--repo DIR] fetch URL} followed by {@code fetch}'s options each as its
 * own word with its value in the next word. Anything else (help, {@code --opt=value},
 * {@code @files}, repeated single-value options, values that look like options, a value picocli
 * would reject) is declined, and picocli parses the command line as always. What it accepts,
 * picocli parses to the same fields ({@code FastFetchTest} checks both on the same command lines).
 */
final class FastFetch {
  private FastFetch() {}

  /**
   * Parses a plain {@code fetch} command line, or returns null to leave it to picocli (also for a
   * value picocli would reject: an invalid URL, path or number; picocli reports it).
   */
  static FetchCommand parse(String[] args) {
    try {
      return parsePlain(args);
    } catch (RuntimeException | java.net.URISyntaxException e) {
      return null;
    }
  }

  private static FetchCommand parsePlain(String[] args) throws java.net.URISyntaxException {
    FetchCommand f = new FetchCommand();
    boolean seenFetch = false;
    java.util.Set<String> single = new java.util.HashSet<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (FastBuild.unusual(a)) {
        return null;
      }
      if (!seenFetch) {
        if (a.equals("fetch")) {
          seenFetch = true;
        } else if (a.equals("--repo")
            && single.add("repo")
            && i + 1 < args.length
            && FastBuild.plain(args[i + 1])) {
          i++; // fetch uses no repository
        } else {
          return null;
        }
        continue;
      }
      if (!a.startsWith("-")) {
        if (f.url != null) {
          return null;
        }
        f.url = new URI(a);
        continue;
      }
      if (i + 1 >= args.length || !FastBuild.plain(args[i + 1])) {
        return null;
      }
      String v = args[++i];
      if (a.equals("--seed")) {
        f.seeds.add(Path.of(v));
        continue;
      }
      if (!single.add(a.equals("-o") ? "--output" : a)) {
        return null; // a single-value option given twice
      }
      switch (a) {
        case "-o", "--output" -> f.output = Path.of(v);
        case "--block-size" -> f.blockSize = Integer.parseInt(v);
        case "--seed-index" -> f.seedIndex = Path.of(v);
        case "--expect" -> f.expect = v;
        case "--link-rate" -> f.linkRate = Double.parseDouble(v);
        case "--disk-rate" -> f.diskRate = Double.parseDouble(v);
        default -> {
          return null; // an option this lane does not know: picocli decides
        }
      }
    }
    return seenFetch && f.url != null && f.output != null ? f : null;
  }

  /**
   * Runs a plain {@code fetch} command line.
   *
   * @return the exit code, or null when picocli must parse the command line
   */
  static Integer tryRun(String[] args, PrintWriter out, PrintWriter err) throws Exception {
    FetchCommand f = parse(args);
    if (f == null) {
      return null;
    }
    try {
      return f.run(out, err);
    } catch (Exception e) {
      return Main.exitCode(e, err);
    }
  }
}
