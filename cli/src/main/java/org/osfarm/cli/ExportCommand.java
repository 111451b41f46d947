package org.osfarm.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.Repository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "export",
    description = {
      "Write a snapshot out: the whole image, or only the given PATHs and their subtrees.",
      "OUT '-' writes a tar to stdout. A file is written atomically (complete or not at all)."
    })
final class ExportCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REF")
  String ref;

  @Parameters(
      index = "1..*",
      paramLabel = "PATH",
      description = "Paths in the image (default: all).")
  List<String> paths = new ArrayList<>();

  @Option(
      names = {"-o", "--output"},
      required = true,
      paramLabel = "OUT")
  String output;

  @Option(
      names = "--format",
      paramLabel = "F",
      description = "tar, tar.gz, tar.zst or dir (default: from OUT's name, else tar).")
  String format;

  @Override
  public Integer call() throws IOException {
    ExportFormat f =
        format != null
            ? ExportFormat.parse(format)
            : java.util.Objects.requireNonNullElse(
                ExportFormat.fromFileName(output), ExportFormat.TAR);
    List<byte[]> sel = new ArrayList<>();
    for (String p : paths) {
      sel.add(Bytes.unescape(p));
    }
    try (Repository repo = top.openRepository();
        ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      Digest id = repo.resolve(ref);
      if (output.equals("-")) {
        if (f == ExportFormat.DIR) {
          throw new IllegalArgumentException("format dir needs a directory, not '-'");
        }
        repo.exportTar(id, sel, f, System.out, progress);
        System.out.flush();
      } else {
        repo.export(id, sel, f, Path.of(output), progress);
      }
    }
    return 0;
  }
}
