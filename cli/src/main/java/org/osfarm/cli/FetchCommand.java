package org.osfarm.cli;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.core.Digest;
import org.osfarm.core.ProgressListener;
import org.osfarm.transfer.BlockFetcher;
import org.osfarm.transfer.FetchResult;
import org.osfarm.transfer.SeedIndex;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "fetch",
    description = {
      "Fetch an image file from 'osfarm serve --images', reusing blocks of local seeds.",
      "",
      "Fetch an image file offered by 'osfarm serve --images', copying every block found in the"
          + " seeds locally while the missing blocks stream in; verified end to end; resumes."
    })
final class FetchCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "URL/NAME")
  URI url;

  @Option(
      names = {"-o", "--output"},
      required = true,
      paramLabel = "OUT")
  Path output;

  @Option(names = "--seed", paramLabel = "PATH", description = "A seed file or directory.")
  List<Path> seeds = new ArrayList<>();

  @Option(names = "--block-size", paramLabel = "N", description = "Default 4096.")
  int blockSize = 4096;

  @Option(
      names = "--seed-index",
      paramLabel = "DIR",
      description = "Default ~/.cache/osfarm/seed-index.")
  Path seedIndex;

  @Option(names = "--expect", paramLabel = "ROOT", description = "Refuse content other than this.")
  String expect;

  @Option(
      names = "--link-rate",
      paramLabel = "MB/S",
      description = "v_n for the bound (default: measured).")
  double linkRate;

  @Option(
      names = "--disk-rate",
      paramLabel = "MB/S",
      description = "v_d for the bound (default: measured).")
  double diskRate;

  @Override
  public Integer call() throws Exception {
    return run(spec.commandLine().getOut(), spec.commandLine().getErr());
  }

  /** Runs the fetch (also without picocli: see {@link FastFetch}); returns the exit code. */
  int run(java.io.PrintWriter out, java.io.PrintWriter err) throws IOException {
    BlockFetcher.Options o =
        new BlockFetcher.Options(
            blockSize,
            seeds,
            new SeedIndex(seedIndex != null ? seedIndex : SeedIndex.defaultDir()),
            expect == null ? null : Digest.fromHex(expect),
            Runtime.getRuntime().availableProcessors());
    // The renderer asks isatty(2) through the FFM linker, whose first use costs a few tenths of a
    // second: more than a whole fetch of an unchanged image. Ask the kernel's fd link first.
    try (ProgressRenderer progress = stderrMayBeTerminal() ? new ProgressRenderer(err) : null) {
      FetchResult r =
          BlockFetcher.fetch(url, output, o, progress == null ? ProgressListener.NONE : progress);
      if (progress != null) {
        progress.close();
      }
      TransferRendering.print(out, r, diskRate * 1e6, linkRate * 1e6);
    }
    return 0;
  }

  /** False when /proc says fd 2 is no terminal; true when it is one or when it cannot tell. */
  static boolean stderrMayBeTerminal() {
    try {
      String t = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
      return t.startsWith("/dev/pts/") || t.startsWith("/dev/tty") || t.equals("/dev/console");
    } catch (IOException | RuntimeException e) {
      return true;
    }
  }
}
