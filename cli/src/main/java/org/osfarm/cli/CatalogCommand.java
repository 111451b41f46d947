package org.osfarm.cli;

import java.io.PrintWriter;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "catalog",
    description = "Maintain the catalog, the index behind find, packages, provenance and derived.",
    subcommands = {CatalogCommand.Sync.class, CatalogCommand.Rebuild.class})
final class CatalogCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    spec.commandLine().usage(spec.commandLine().getErr());
    return 1;
  }

  /** Opens the repository's catalog, caught up with its refs. */
  static Catalog openSynced(Repository repo) {
    Catalog c = Catalog.open(repo);
    c.sync();
    return c;
  }

  static String time(Instant t) {
    return t == null ? "-" : t.truncatedTo(ChronoUnit.SECONDS).toString();
  }

  static String refs(List<String> refs) {
    return refs.isEmpty() ? "-" : String.join(",", refs);
  }

  @Command(name = "sync", description = "Index snapshots that refs name and the catalog lacks.")
  static final class Sync implements Callable<Integer> {
    @ParentCommand CatalogCommand parent;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      try (Repository repo = parent.top.openRepository();
          Catalog c = Catalog.open(repo)) {
        Catalog.SyncReport r = c.sync();
        spec.commandLine()
            .getErr()
            .printf("indexed %d snapshots, %d refs, %.2f s%n", r.indexed(), r.refs(), r.seconds());
      }
      return 0;
    }
  }

  @Command(
      name = "rebuild",
      description =
          "Throw the catalog away and index the repository again (it is derived data: the"
              + " answers are the same).")
  static final class Rebuild implements Callable<Integer> {
    @ParentCommand CatalogCommand parent;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      try (Repository repo = parent.top.openRepository();
          Catalog c = Catalog.open(repo)) {
        Catalog.SyncReport r = c.rebuild();
        PrintWriter err = spec.commandLine().getErr();
        err.printf("rebuilt: %d snapshots, %d refs, %.2f s%n", r.indexed(), r.refs(), r.seconds());
      }
      return 0;
    }
  }
}
