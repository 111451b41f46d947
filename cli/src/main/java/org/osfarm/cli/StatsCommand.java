package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import org.osfarm.core.RepositoryStats;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "stats", description = "Snapshots, objects, logical and stored bytes, dedup ratio.")
final class StatsCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository()) {
      RepositoryStats s = repo.stats();
      out.printf("refs             %,d%n", s.refs());
      out.printf("snapshots        %,d%n", s.snapshots());
      out.printf("objects          %,d%n", s.objects());
      out.printf("logical bytes    %,d%n", s.logicalBytes());
      out.printf("unique content   %,d%n", s.uniqueContentBytes());
      out.printf("stored bytes     %,d%n", s.storedBytes());
      out.printf("dedup ratio      %.2f%n", s.dedupRatio());
    }
    return 0;
  }
}
