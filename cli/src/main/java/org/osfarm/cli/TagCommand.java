package org.osfarm.cli;

import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "tag",
    description = "Point ref NAME at the snapshot REF names (create or move it).")
final class TagCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "NAME")
  String name;

  @Parameters(index = "1", paramLabel = "REF")
  String target;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository()) {
      var u = repo.tag(name, target);
      spec.commandLine()
          .getErr()
          .println(name + ": " + u.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
    }
    return 0;
  }
}
