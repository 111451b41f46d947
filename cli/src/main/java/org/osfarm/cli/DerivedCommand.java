package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Related;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "derived",
    description =
        "List snapshots derived from REF: kind (base: an overlay or install made from it;"
            + " parent: a later version of its ref), id, refs, time, message.")
final class DerivedCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Option(
      names = {"-r", "--recursive"},
      description = "Also what was derived from those.")
  boolean recursive;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        Catalog c = CatalogCommand.openSynced(repo)) {
      for (Related r : c.derived(repo.resolve(ref), recursive)) {
        out.println(
            "  ".repeat(r.depth() - 1)
                + r.kind()
                + " "
                + r.snapshot().hex()
                + " "
                + CatalogCommand.refs(r.refs())
                + " "
                + CatalogCommand.time(r.time())
                + " "
                + r.message());
      }
    }
    return 0;
  }
}
