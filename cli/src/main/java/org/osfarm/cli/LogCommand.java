package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.core.Digest;
import org.osfarm.core.ReflogEntry;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "log",
    description =
        "Show a ref's snapshot history (newest first), or with --reflog every move of the ref.")
final class LogCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Option(names = "--reflog", description = "Show the ref's reflog instead.")
  boolean reflog;

  @Option(
      names = {"-n", "--max-count"},
      paramLabel = "N",
      defaultValue = "1000")
  int max;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository()) {
      if (reflog) {
        for (ReflogEntry e : repo.refs().log(ref).reversed()) {
          out.printf(
              "%s %s -> %s %s%n",
              e.time(),
              e.oldId() == null ? "(none)" : e.oldId().shortHex(12),
              e.newId() == null ? "(deleted)" : e.newId().shortHex(12),
              e.message());
        }
        return 0;
      }
      Digest start = repo.resolve(ref);
      for (Map.Entry<Digest, Snapshot> e : repo.history(start, max)) {
        Snapshot s = e.getValue();
        out.printf("snapshot %s%n", e.getKey().hex());
        out.printf("Date:    %s%n", s.time());
        s.metadata()
            .forEach(
                (k, v) -> {
                  if (!k.equals("spec")) {
                    out.printf("Meta:    %s=%s%n", k, v);
                  }
                });
        out.printf("%n    %s%n%n", s.message().isEmpty() ? "(no message)" : s.message());
      }
    }
    return 0;
  }
}
