package org.osfarm.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.Callable;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "cat", description = "Write a file of a snapshot to stdout (REF:PATH).")
final class CatCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;

  @Parameters(index = "0", paramLabel = "REF:PATH")
  String target;

  @Override
  public Integer call() throws IOException {
    RefPath rp = RefPath.parse(target);
    if (rp.path().length == 0) {
      throw new IllegalArgumentException("give a file as REF:PATH");
    }
    try (Repository repo = top.openRepository()) {
      Digest id = repo.resolve(rp.ref());
      Entry e = repo.lookupFile(id, rp.path());
      if (e.type() == EntryType.SYMLINK) {
        throw new IllegalArgumentException(
            Bytes.escape(rp.path()) + " is a symlink to " + Bytes.escape(e.link()));
      }
      if (e.type() != EntryType.FILE) {
        throw new IllegalArgumentException(
            Bytes.escape(rp.path()) + " is a " + e.type().label() + ", not a file");
      }
      try (InputStream in = repo.openContent(e)) {
        in.transferTo(System.out);
      }
      System.out.flush();
    }
    return 0;
  }
}
