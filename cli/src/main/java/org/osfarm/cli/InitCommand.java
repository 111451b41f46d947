package org.osfarm.cli;

import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "init",
    description = "Create the repository (other commands also create it on first use).")
final class InitCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository()) {
      spec.commandLine().getOut().println("repository at " + repo.directory().toAbsolutePath());
    }
    return 0;
  }
}
