package org.osfarm.cli;

import java.util.concurrent.Callable;
import org.osfarm.core.Channels;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "promote",
    description = {
      "Move a channel (ref channels/CHANNEL) to a snapshot or another channel's.",
      "",
      "Move channel CHANNEL (ref channels/CHANNEL) to a snapshot, or to what another channel "
          + "holds (--from). A compare-and-swap: it fails if the channel moved meanwhile, or is not "
          + "at --expect. With 'require-signatures yes' only trusted signed snapshots are promoted."
    })
final class PromoteCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "SNAPSHOT|REF",
      description = "What to promote (a ref, snapshot id or prefix, or a channel name).")
  String target;

  @Option(
      names = "--to",
      required = true,
      paramLabel = "CHANNEL",
      description = "Channel to move: development, testing, production or another valid name.")
  String to;

  @Option(names = "--from", paramLabel = "CHANNEL", description = "Promote what CHANNEL holds.")
  String from;

  @Option(
      names = "--expect",
      paramLabel = "OLD",
      description = "Fail unless the channel now holds OLD (id or ref; 'none': must be empty).")
  String expect;

  @Override
  public Integer call() {
    if ((target == null) == (from == null)) {
      throw new IllegalArgumentException("give either SNAPSHOT|REF or --from CHANNEL (not both)");
    }
    try (Repository repo = top.openRepository()) {
      Channels ch = new Channels(repo);
      Channels.Promotion p =
          from != null ? ch.promoteFrom(from, to, expect) : ch.promote(target, to, expect);
      spec.commandLine()
          .getErr()
          .println(
              "channel "
                  + p.channel()
                  + ": "
                  + (p.from() == null ? "(empty)" : p.from().shortHex(12))
                  + " -> "
                  + p.to().shortHex(12)
                  + (p.signer() != null ? ", signed by " + p.signer().describe() : "")
                  + " ("
                  + p.update().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ')
                  + ")");
      spec.commandLine().getOut().println(p.to().hex());
    }
    return 0;
  }
}
