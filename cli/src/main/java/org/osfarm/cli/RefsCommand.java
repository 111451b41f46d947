package org.osfarm.cli;

import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "refs", description = "List refs: snapshot id and name.")
final class RefsCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository()) {
      for (Map.Entry<String, Digest> e : repo.refs().list().entrySet()) {
        spec.commandLine().getOut().println(e.getValue().hex() + " " + e.getKey());
      }
    }
    return 0;
  }
}
