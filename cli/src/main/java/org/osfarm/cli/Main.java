package org.osfarm.cli;

import java.io.PrintWriter;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.InvalidInputException;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.RepositoryException;
import picocli.CommandLine;

/** Entry point of the {@code osfarm} command. */
public final class Main {
  /** Exit code for a user error (bad input, missing ref...). */
  static final int EXIT_ERROR = 1;

  /** Exit code for damage found in the repository. */
  static final int EXIT_DAMAGE = 3;

  private Main() {}

  public static void main(String[] args) throws Exception {
    if (Boolean.getBoolean("osfarm.cds.training")) {
      CdsTraining.run(); // the launcher's archive training run (see the osfarm script)
      return;
    }
    PrintWriter out = new PrintWriter(System.out, true);
    PrintWriter err = new PrintWriter(System.err, true);
    Integer fast = FastBuild.tryAnswer(args, out, err);
    if (fast == null) {
      fast = FastFetch.tryRun(args, out, err);
    }
    System.exit(fast != null ? fast : run(args, out, err));
  }

  /**
   * The subcommand a command line names (its first word that is not a global option), if it is a
   * known one; null for none, an unknown one, or help and version (then every subcommand is
   * registered, for the listing and the suggestions).
   */
  static String subcommandName(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--repo")) {
        i++; // its value
      } else if (a.startsWith("--repo=")) {
        continue;
      } else if (a.startsWith("-")) {
        return null;
      } else {
        for (Class<?> c : OsfarmCommand.SUBCOMMANDS) {
          if (names(c).contains(a)) {
            return a;
          }
        }
        return null;
      }
    }
    return null;
  }

  private static java.util.List<String> names(Class<?> c) {
    CommandLine.Command a = c.getAnnotation(CommandLine.Command.class);
    java.util.List<String> n = new java.util.ArrayList<>(java.util.List.of(a.aliases()));
    n.add(a.name());
    return n;
  }

  /**
   * The exit code of a command that failed with {@code t}, after saying why on {@code err}; throws
   * {@code t} again when it is no error a user can hit (a bug: picocli prints its trace).
   */
  static int exitCode(Exception t, PrintWriter err) throws Exception {
    if (t instanceof java.io.UncheckedIOException u && u.getCause() != null) {
      err.println("osfarm: " + u.getMessage() + ": " + u.getCause().getMessage());
      return EXIT_ERROR;
    }
    if (t instanceof CorruptObjectException) {
      err.println("osfarm: repository damage: " + t.getMessage() + " (run 'osfarm fsck')");
      return EXIT_DAMAGE;
    }
    if (t instanceof InvalidInputException
        || t instanceof NotFoundException
        || t instanceof RepositoryException
        || t instanceof IllegalArgumentException
        || t instanceof java.io.IOException) {
      err.println("osfarm: " + t.getMessage());
      return EXIT_ERROR;
    }
    throw t;
  }

  /** Runs a command line; returns the exit code. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine cl = new CommandLine(new OsfarmCommand());
    String named = subcommandName(args);
    for (Class<?> c : OsfarmCommand.SUBCOMMANDS) {
      if (named == null || names(c).contains(named)) {
        cl.addSubcommand(c);
      }
    }
    cl.setOut(out);
    cl.setErr(err);
    cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> exitCode(ex, err));
    return cl.execute(args);
  }
}
