package org.osfarm.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Overlay;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "overlay",
    description =
        "Make a customized clone of REF as an overlay: only the changes are stored (kilobytes),"
            + " exporting it yields the whole image. Prints the new snapshot id.")
final class OverlayCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String base;

  @Option(names = "--ref", required = true, paramLabel = "NAME", description = "Ref to create.")
  String ref;

  @Option(
      names = "--set",
      paramLabel = "PATH=FILE",
      description = "Put the content of local FILE at PATH in the image.")
  List<String> set = new ArrayList<>();

  @Option(names = "--rm", paramLabel = "PATH", description = "Remove PATH (and what is under it).")
  List<String> rm = new ArrayList<>();

  @Option(
      names = "--hostname",
      paramLabel = "H",
      description = "Set /etc/hostname (and the 127.0.1.1 line of /etc/hosts).")
  String hostname;

  @Option(
      names = {"-m", "--message"},
      paramLabel = "TEXT",
      description = "Snapshot message.")
  String message;

  @Override
  public Integer call() throws Exception {
    Map<String, Path> files = new LinkedHashMap<>();
    for (String s : set) {
      int eq = s.indexOf('=');
      if (eq <= 0 || eq == s.length() - 1) {
        throw new IllegalArgumentException("--set " + s + ": expected PATH=FILE");
      }
      files.put(s.substring(0, eq), Path.of(s.substring(eq + 1)));
    }
    Overlay.Spec o = new Overlay.Spec(files, rm, hostname, message);
    try (Repository repo = top.openRepository();
        Catalog c = Catalog.open(repo)) {
      Overlay.Result r = Overlay.create(c, repo.resolve(base), ref, o);
      spec.commandLine()
          .getErr()
          .printf("%s: %d new objects, %d bytes stored%n", ref, r.newObjects(), r.newBytes());
      spec.commandLine().getOut().println(r.snapshot().hex());
    }
    return 0;
  }
}
