package org.osfarm.cli;

import java.io.PrintWriter;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.Callable;
import org.osfarm.core.Channels;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "channels",
    description = "List channels: snapshot, who signed it, when the channel last moved and how.")
final class ChannelsCommand implements Callable<Integer> {
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository()) {
      out.printf(
          "%-12s  %-12s  %-20s  %s%n", "CHANNEL", "SNAPSHOT", "MOVED", "SIGNER  (LAST MOVE)");
      for (Channels.ChannelState c : new Channels(repo).list()) {
        out.printf(
            "%-12s  %-12s  %-20s  %s%s%n",
            c.name(),
            c.snapshot() == null ? "-" : c.snapshot().shortHex(12),
            c.moved() == null ? "-" : TIME.format(c.moved()),
            c.signer(),
            c.how().isEmpty() ? "" : "  (" + c.how() + ")");
      }
    }
    return 0;
  }
}
