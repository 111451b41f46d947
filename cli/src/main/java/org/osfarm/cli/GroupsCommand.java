package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.DistroClass;
import org.osfarm.build.SpecException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "groups", description = "List the package groups of a class.")
final class GroupsCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "CLASS")
  String className;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    DistroClass c;
    try {
      c = ClassRegistry.builtIn().get(className);
    } catch (SpecException e) {
      spec.commandLine().getErr().println("osfarm: " + e.getMessage());
      return 1;
    }
    for (Map.Entry<String, java.util.List<String>> g : new TreeMap<>(c.groups()).entrySet()) {
      String what =
          g.getKey().equals("core")
              ? "(layer: " + c.variant() + " variant) "
              : g.getKey().equals("base") ? "(layer) " : "";
      out.printf("%-14s %s%s%n", g.getKey(), what, String.join(" ", g.getValue()));
    }
    return 0;
  }
}
