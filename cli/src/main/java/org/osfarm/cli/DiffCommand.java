package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.core.Bytes;
import org.osfarm.core.Change;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "diff",
    description =
        "Paths added (A), removed (D) and changed (M, with what changed) from REF1 to REF2.")
final class DiffCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF1")
  String a;

  @Parameters(index = "1", paramLabel = "REF2")
  String b;

  @picocli.CommandLine.Option(
      names = "--packages",
      description =
          "Compare installed packages instead of paths: added (+), removed (-), upgraded (>),"
              + " downgraded (<), with versions.")
  boolean packages;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    if (packages) {
      return PackagesCommand.diff(top, a, b, out);
    }
    try (Repository repo = top.openRepository()) {
      for (Change c : repo.diff(repo.resolve(a), repo.resolve(b))) {
        out.println(c.kind() + " " + Bytes.escape(c.path()) + "  " + String.join(", ", c.what()));
      }
    }
    return 0;
  }
}
