package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.PackageChange;
import org.osfarm.catalog.PackageInfo;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "packages",
    description = "List an image's installed packages (from its dpkg status): name version arch.")
final class PackagesCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository();
        Catalog c = Catalog.open(repo)) {
      Digest id = repo.resolve(ref);
      if (!c.hasPackages(id)) {
        throw new IllegalArgumentException(
            ref + " has no var/lib/dpkg/status: not a Debian image, no packages to list");
      }
      List<PackageInfo> pkgs = c.packages(id);
      int w = pkgs.stream().mapToInt(p -> p.name().length()).max().orElse(0);
      int v = pkgs.stream().mapToInt(p -> p.version().length()).max().orElse(0);
      for (PackageInfo p : pkgs) {
        out.printf("%-" + w + "s  %-" + v + "s  %s%n", p.name(), p.version(), p.architecture());
      }
    }
    return 0;
  }

  /** {@code osfarm diff REF1 REF2 --packages}. */
  static int diff(OsfarmCommand top, String a, String b, PrintWriter out) {
    try (Repository repo = top.openRepository();
        Catalog c = Catalog.open(repo)) {
      Digest da = repo.resolve(a);
      Digest db = repo.resolve(b);
      for (String r : new String[] {a, b}) {
        if (!c.hasPackages(repo.resolve(r))) {
          throw new IllegalArgumentException(r + " has no var/lib/dpkg/status: no packages");
        }
      }
      for (PackageChange ch : c.packageChanges(da, db)) {
        switch (ch.kind()) {
          case ADDED -> out.println("+ " + ch.name() + " " + ch.after().version());
          case REMOVED -> out.println("- " + ch.name() + " " + ch.before().version());
          case UPGRADED ->
              out.println(
                  "> " + ch.name() + " " + ch.before().version() + " -> " + ch.after().version());
          case DOWNGRADED ->
              out.println(
                  "< " + ch.name() + " " + ch.before().version() + " -> " + ch.after().version());
        }
      }
    }
    return 0;
  }
}
