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
    name = "push",
    description = {
      "Copy a snapshot to the repository served at URL ('osfarm serve --allow-push'),",
      "sending only objects it lacks, then move its ref (compare-and-swap)."
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

  @Override
  public Integer call() {
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      TransferResult r =
          ObjectTransfer.push(repo, ref, url, remoteRef != null ? remoteRef : ref, progress);
      progress.close();
      TransferRendering.print(spec.commandLine().getErr(), "pushed", r);
      spec.commandLine().getOut().println(r.snapshot().hex());
    }
    return 0;
  }
}
