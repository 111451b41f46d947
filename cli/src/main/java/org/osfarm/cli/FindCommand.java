package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.FindQuery;
import org.osfarm.catalog.Match;
import org.osfarm.catalog.PackageSpec;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "find",
    description = {
      "List every snapshot (refs, id, time) that matches, with the matching entries.",
      "Repeated --path, --digest, --name: any of them. Repeated --package, --label, --text: all"
          + " of them. Different options intersect."
    })
final class FindCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Option(names = "--path", paramLabel = "PATH", description = "An exact path (/usr/sbin/sshd).")
  List<String> paths = new ArrayList<>();

  @Option(names = "--digest", paramLabel = "HEX", description = "SHA-256 of a file's content.")
  List<String> digests = new ArrayList<>();

  @Option(
      names = "--package",
      paramLabel = "PKG",
      description = "An installed package: NAME, NAME=VERSION, NAME<VERSION, <=, >, >=.")
  List<String> packages = new ArrayList<>();

  @Option(names = "--name", paramLabel = "GLOB", description = "An entry name (sshd*, *.conf).")
  List<String> names = new ArrayList<>();

  @Option(
      names = "--label",
      paramLabel = "K=V",
      description = "A label; V may be a glob (role=web*, role=*).")
  List<String> labels = new ArrayList<>();

  @Option(names = "--text", paramLabel = "WORD", description = "A word in a text file under /etc.")
  List<String> words = new ArrayList<>();

  @Option(names = "--latest", description = "Only snapshots that a ref names now.")
  boolean latest;

  @Override
  public Integer call() {
    FindQuery.Builder q = FindQuery.builder().latest(latest);
    paths.forEach(q::path);
    names.forEach(q::name);
    words.forEach(q::word);
    for (String d : digests) {
      String h = d.toLowerCase(java.util.Locale.ROOT);
      if (!Digest.isHex(h)) {
        throw new IllegalArgumentException("--digest " + d + ": expected 64 hex digits (SHA-256)");
      }
      q.digest(Digest.fromHex(h));
    }
    for (String p : packages) {
      q.pkg(PackageSpec.parse(p));
    }
    for (String l : labels) {
      int eq = l.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("--label " + l + ": expected KEY=VALUE");
      }
      q.label(l.substring(0, eq), l.substring(eq + 1));
    }
    FindQuery query = q.build();
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        Catalog c = CatalogCommand.openSynced(repo)) {
      for (Match m : c.find(query)) {
        out.println(
            CatalogCommand.refs(m.refs())
                + " "
                + m.snapshot().hex()
                + " "
                + CatalogCommand.time(m.time()));
        for (Match.Found f : m.entries()) {
          StringBuilder sb = new StringBuilder("  ");
          sb.append(f.path().isEmpty() ? "-" : f.path()).append(' ').append(f.type());
          if (f.type().equals("file")) {
            sb.append(' ').append(f.size()).append(' ').append(f.digest().hex());
          }
          if (!f.detail().isEmpty()) {
            sb.append(' ').append(f.detail());
          }
          out.println(sb);
        }
      }
    }
    return 0;
  }
}
