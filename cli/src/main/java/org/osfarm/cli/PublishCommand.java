package org.osfarm.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.EntrySource;
import org.osfarm.core.PublishResult;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "publish",
    description = {
      "Store an image as a new snapshot and point REF at it.",
      "SOURCE is a tar archive (plain, .gz or .zst), a directory, or '-' for a tar on stdin.",
      "Prints the snapshot id as the last line of stdout."
    })
final class PublishCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SOURCE")
  String source;

  @Option(
      names = "--ref",
      required = true,
      paramLabel = "NAME",
      description = "Ref to create or move.")
  String ref;

  @Option(
      names = {"-m", "--message"},
      paramLabel = "MESSAGE",
      description = "Why this snapshot exists.")
  String message;

  @Option(
      names = "--threads",
      paramLabel = "N",
      description = "Worker threads (default: processors).")
  Integer threads;

  @Override
  public Integer call() throws IOException {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(err);
        EntrySource src = open(progress)) {
      if (threads != null) {
        repo.setThreads(threads);
      }
      PublishResult r = repo.publish(src, ref, message, Map.of(), progress);
      progress.close();
      err.printf(
          "published %s: %,d entries, %,.1f MB read, %,d new objects, %,.1f MB stored, %.1f s%n",
          ref,
          r.entries(),
          r.logicalBytes() / 1e6,
          r.newObjects(),
          r.newBytes() / 1e6,
          r.seconds());
      out.println(r.snapshot().hex());
    }
    return 0;
  }

  private EntrySource open(ProgressRenderer progress) throws IOException {
    if (source.equals("-")) {
      return new TarSource(System.in);
    }
    Path p = Path.of(source);
    if (Files.isDirectory(p)) {
      return new DirectorySource(p, progress);
    }
    if (!Files.exists(p)) {
      throw new java.io.FileNotFoundException("no such file or directory: " + source);
    }
    return TarSource.open(p);
  }
}
