package org.osfarm.cli;

import java.net.URI;
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
    name = "pull",
    description = {
      "Copy a snapshot from a served repository, fetching only the objects missing here.",
      "",
      "Copy a snapshot from the repository served at URL ('osfarm serve') into this one, "
          + "fetching only objects this repository lacks (from any image). Resumes if interrupted."
    })
final class PullCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "URL")
  URI url;

  @Parameters(index = "1", paramLabel = "REF", description = "Remote ref or snapshot id.")
  String ref;

  @Option(names = "--ref", paramLabel = "LOCAL", description = "Local ref to set (default: REF).")
  String localRef;

  @Option(
      names = "--token-file",
      paramLabel = "FILE",
      description =
          "File holding a token for a service that closes reading (OSFARM_OPEN_READ=false)."
              + " Default: $OSFARM_TOKEN.")
  java.nio.file.Path tokenFile;

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      String target = localRef != null ? localRef : ref;
      TransferResult r =
          ObjectTransfer.pull(repo, url, PushCommand.token(tokenFile), ref, target, progress);
      progress.close();
      TransferRendering.print(spec.commandLine().getErr(), "pulled", r);
      spec.commandLine().getOut().println(r.snapshot().hex());
    }
    return 0;
  }
}
