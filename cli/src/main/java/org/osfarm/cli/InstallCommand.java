package org.osfarm.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.Installer;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "install",
    description = {
      "Install packages into the dormant image REF (apt-get in an unprivileged chroot, no boot)"
          + " and publish the result as NAME. Prints the new snapshot id.",
      "Memoized: the same package set for an image whose dpkg status, apt and dpkg configuration"
          + " and user database are the same is answered from the cache."
    })
final class InstallCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String base;

  @Parameters(index = "1..*", arity = "1..*", paramLabel = "PKG")
  List<String> packages;

  @Option(names = "--ref", required = true, paramLabel = "NAME", description = "Ref to publish.")
  String ref;

  @Option(names = "--refresh", description = "Run apt even if the memo has an answer.")
  boolean refresh;

  @Option(
      names = "--work",
      paramLabel = "DIR",
      description = "Directory for the unpacked image (default: the system's temporary directory).")
  Path work;

  @Override
  public Integer call() throws Exception {
    try (Repository repo = top.openRepository();
        Catalog c = Catalog.open(repo)) {
      long t0 = System.nanoTime();
      Installer.Result r = Installer.install(c, repo.resolve(base), packages, ref, refresh, work);
      spec.commandLine()
          .getErr()
          .printf(
              "%s: %s in %.2f s (memo key %s)%n",
              ref,
              r.memoized() ? "from the memo" : "installed",
              (System.nanoTime() - t0) / 1e9,
              r.key().substring(0, 16));
      spec.commandLine().getOut().println(r.snapshot().hex());
    }
    return 0;
  }
}
