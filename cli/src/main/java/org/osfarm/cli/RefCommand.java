package org.osfarm.cli;

import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "ref", description = "Manage refs.", subcommands = RefCommand.Delete.class)
final class RefCommand {
  @ParentCommand OsfarmCommand top;

  @Command(
      name = "delete",
      description =
          "Delete a ref. Its reflog stays, so gc keeps its snapshots until the log expires.")
  static final class Delete implements Callable<Integer> {
    @ParentCommand RefCommand parent;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME")
    String name;

    @Override
    public Integer call() {
      try (Repository repo = parent.top.openRepository()) {
        repo.deleteRef(name);
        spec.commandLine().getErr().println(name + ": deleted");
      }
      return 0;
    }
  }
}
