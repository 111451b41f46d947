package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Provenance;
import org.osfarm.catalog.Related;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "provenance",
    description =
        "Show how a snapshot came to be: its spec, builder, layer keys and other metadata, and"
            + " its lineage (parents: earlier versions; bases: what it was derived from).")
final class ProvenanceCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Option(
      names = "--depth",
      paramLabel = "N",
      defaultValue = "10",
      description = "How many steps of lineage to follow (default: ${DEFAULT-VALUE}).")
  int depth;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        Catalog c = CatalogCommand.openSynced(repo)) {
      Provenance p = c.provenance(repo.resolve(ref), Math.max(1, depth));
      out.println("snapshot " + p.snapshot().hex());
      out.println("refs     " + CatalogCommand.refs(p.refs()));
      out.println("time     " + CatalogCommand.time(p.time()));
      out.println("message  " + p.message());
      for (Map.Entry<String, String> e : p.metadata().entrySet()) {
        String v = e.getValue().replace("\n", "\n    ");
        out.println("meta     " + e.getKey() + ": " + v);
      }
      for (Map.Entry<String, String> e : p.labels().entrySet()) {
        out.println("label    " + e.getKey() + "=" + e.getValue());
      }
      for (Related r : p.lineage()) {
        out.println(
            "  ".repeat(r.depth() - 1)
                + (r.kind().equals("base") ? "base     " : "parent   ")
                + r.snapshot().hex()
                + " "
                + (r.present()
                    ? CatalogCommand.refs(r.refs())
                        + " "
                        + CatalogCommand.time(r.time())
                        + " "
                        + r.message()
                    : "(not in this repository)"));
      }
    }
    return 0;
  }
}
