package org.osfarm.cli;

import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "ls", description = "List a directory of a snapshot, like ls -l (REF[:PATH]).")
final class LsCommand implements Callable<Integer> {
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").withZone(ZoneOffset.UTC);

  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF[:PATH]")
  String target;

  @Override
  public Integer call() {
    RefPath rp = RefPath.parse(target);
    PrintWriter out = spec.commandLine().getOut();
    try (Repository repo = top.openRepository()) {
      Digest id = repo.resolve(rp.ref());
      Entry e = repo.lookup(id, rp.path());
      List<Entry> entries = e.type() == EntryType.DIR ? repo.readTree(e.content()) : List.of(e);
      for (Entry c : entries) {
        out.println(line(c));
      }
    }
    return 0;
  }

  static String line(Entry e) {
    StringBuilder sb = new StringBuilder();
    sb.append(e.type() == EntryType.FILE ? '-' : e.type().letter());
    int m = e.mode();
    sb.append((m & 0400) != 0 ? 'r' : '-').append((m & 0200) != 0 ? 'w' : '-');
    sb.append(exec(m & 0100, m & 04000, 's'));
    sb.append((m & 040) != 0 ? 'r' : '-').append((m & 020) != 0 ? 'w' : '-');
    sb.append(exec(m & 010, m & 02000, 's'));
    sb.append((m & 04) != 0 ? 'r' : '-').append((m & 02) != 0 ? 'w' : '-');
    sb.append(exec(m & 01, m & 01000, 't'));
    String size =
        e.type() == EntryType.CHAR || e.type() == EntryType.BLOCK
            ? e.devMajor() + ", " + e.devMinor()
            : Long.toString(e.size());
    sb.append(String.format(" %5d %5d %10s ", e.uid(), e.gid(), size));
    sb.append(TIME.format(Instant.ofEpochSecond(e.mtimeSeconds()))).append(' ');
    sb.append(e.name().length == 0 ? "." : Bytes.escape(e.name()));
    if (e.type() == EntryType.SYMLINK) {
      sb.append(" -> ").append(Bytes.escape(e.link()));
    } else if (e.type() == EntryType.HARDLINK) {
      sb.append(" link to ").append(Bytes.escape(e.link()));
    }
    return sb.toString();
  }

  private static char exec(int x, int special, char letter) {
    if (special != 0) {
      return x != 0 ? letter : Character.toUpperCase(letter);
    }
    return x != 0 ? 'x' : '-';
  }
}
