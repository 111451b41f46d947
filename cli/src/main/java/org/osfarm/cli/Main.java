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

  public static void main(String[] args) {
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  /** Runs a command line; returns the exit code. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine cl = new CommandLine(new OsfarmCommand());
    cl.setOut(out);
    cl.setErr(err);
    cl.setExecutionExceptionHandler(
        (ex, cmd, parseResult) -> {
          Throwable t = ex;
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
          throw ex;
        });
    return cl.execute(args);
  }
}
