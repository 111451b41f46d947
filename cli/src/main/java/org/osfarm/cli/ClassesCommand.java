package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.DistroClass;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

@Command(
    name = "classes",
    description =
        "List the distro classes: family, suite, mirror, keyring, architectures, default groups.")
final class ClassesCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    for (DistroClass c : ClassRegistry.builtIn().all()) {
      out.printf(
          "%-16s %-7s %-9s %-34s %-11s groups:%s  keyring:%s  (%s)%n",
          c.name(),
          c.family(),
          c.suite(),
          c.mirror(),
          String.join(",", c.architectures()),
          String.join(",", c.defaultGroups()),
          c.keyring(),
          c.description());
    }
    return 0;
  }
}
