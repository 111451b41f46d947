package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.core.FsckReport;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "fsck",
    description =
        "Verify every object reachable from refs and reflogs (hash, structure, sizes). Exit 3 on damage.")
final class FsckCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      FsckReport r = repo.fsck(progress);
      progress.close();
      for (String p : r.problems()) {
        out.println("damage: " + p);
      }
      for (String n : r.notes()) {
        out.println("note: " + n);
      }
      out.printf(
          "%s: %,d snapshots, %,d objects checked, %d problems%n",
          r.clean() ? "ok" : "DAMAGED", r.snapshots(), r.objects(), r.problems().size());
      return r.clean() ? 0 : Main.EXIT_DAMAGE;
    }
  }
}
