package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "label",
    description =
        "Attach searchable labels (KEY=VALUE) to the snapshot REF names, remove them (--rm KEY),"
            + " and print its labels.")
final class LabelCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Parameters(index = "1..*", paramLabel = "KEY=VALUE")
  List<String> labels = new ArrayList<>();

  @Option(names = "--rm", paramLabel = "KEY", description = "Remove a label.")
  List<String> remove = new ArrayList<>();

  @Override
  public Integer call() {
    Map<String, String> set = new TreeMap<>();
    for (String l : labels) {
      int eq = l.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("label '" + l + "': expected KEY=VALUE");
      }
      set.put(l.substring(0, eq), l.substring(eq + 1));
    }
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        Catalog c = CatalogCommand.openSynced(repo)) {
      Digest id = repo.resolve(ref);
      Map<String, String> now =
          set.isEmpty() && remove.isEmpty()
              ? c.labels(id)
              : c.label(id, set, new LinkedHashSet<>(remove));
      now.forEach((k, v) -> out.println(k + "=" + v));
    }
    return 0;
  }
}
