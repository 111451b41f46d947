package org.osfarm.cli;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Callable;
import org.osfarm.core.GcReport;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "gc",
    description = {
      "Remove objects no ref or reflog entry reaches, and leftovers of interrupted publishes.",
      "Safe while publishes run: it waits for them and they wait for it."
    })
final class GcCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Option(
      names = "--expire-reflog",
      paramLabel = "DAYS",
      description = "First drop reflog entries older than DAYS (current ref values are kept).")
  Integer expireDays;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      if (expireDays != null) {
        int n = repo.expireReflogs(Instant.now().minus(Duration.ofDays(expireDays)));
        spec.commandLine().getErr().println("expired " + n + " reflog entries");
      }
      GcReport r = repo.gc(progress);
      progress.close();
      spec.commandLine()
          .getOut()
          .printf(
              "kept %,d reachable objects, removed %,d objects, freed %,d bytes%n",
              r.reachableObjects(), r.objectsRemoved(), r.bytesFreed());
    }
    return 0;
  }
}
