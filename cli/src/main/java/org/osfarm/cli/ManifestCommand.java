package org.osfarm.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "manifest",
    description = {
      "One line per entry: path type mode uid gid size mtime digest.",
      "digest is the SHA-256 of a file's content, '->target' for a symlink, '=>path' for a hard link,",
      "'major,minor' for a device, '-' otherwise. Bytes that are not printable UTF-8, spaces and",
      "backslashes are written as \\xNN."
    })
final class ManifestCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository()) {
      repo.manifest(repo.resolve(ref), out::println);
    }
    out.flush();
    return 0;
  }
}
