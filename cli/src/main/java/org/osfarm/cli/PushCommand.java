package org.osfarm.cli;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import org.osfarm.transfer.ObjectTransfer;
import org.osfarm.transfer.TransferResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "push",
    description = {
      "Copy a snapshot to a served repository, sending only the objects it lacks.",
      "",
      "Copy a snapshot to the repository served at URL ('osfarm serve'), sending only objects "
          + "it lacks, then move its ref (compare-and-swap). The service needs a token ($OSFARM_TOKEN"
          + " or --token-file) unless it runs with --allow-push."
    })
final class PushCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "URL")
  URI url;

  @Parameters(index = "1", paramLabel = "REF")
  String ref;

  @Option(names = "--ref", paramLabel = "REMOTE", description = "Remote ref to set (default: REF).")
  String remoteRef;

  @Option(
      names = "--token-file",
      paramLabel = "FILE",
      description =
          "File holding the service's token ('osfarm token create'), sent as 'Authorization:"
              + " Bearer'. Default: $OSFARM_TOKEN.")
  Path tokenFile;

  /** The token from {@code file}, else {@code $OSFARM_TOKEN}, else null. */
  static String token(Path file) {
    String t;
    if (file != null) {
      try {
        t = Files.readString(file).strip();
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read the token file " + file + ": " + e, e);
      }
      if (t.isEmpty()) {
        throw new IllegalArgumentException("the token file " + file + " is empty");
      }
      return t;
    }
    t = System.getenv("OSFARM_TOKEN");
    return t == null || t.isBlank() ? null : t.strip();
  }

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      TransferResult r =
          ObjectTransfer.push(
              repo, ref, url, token(tokenFile), remoteRef != null ? remoteRef : ref, progress);
      progress.close();
      TransferRendering.print(spec.commandLine().getErr(), "pushed", r);
      spec.commandLine().getOut().println(r.snapshot().hex());
    }
    return 0;
  }
}
