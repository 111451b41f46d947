package org.osfarm.cli;

import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.core.Digest;
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
      "Fetch an image file offered by 'osfarm serve --images', copying every block found in the",
      "seeds locally while the missing blocks stream in; verified end to end; resumes."
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
    BlockFetcher.Options o =
        new BlockFetcher.Options(
            blockSize,
            seeds,
            new SeedIndex(seedIndex != null ? seedIndex : SeedIndex.defaultDir()),
            expect == null ? null : Digest.fromHex(expect),
            Runtime.getRuntime().availableProcessors());
    try (ProgressRenderer progress = new ProgressRenderer(spec.commandLine().getErr())) {
      FetchResult r = BlockFetcher.fetch(url, output, o, progress);
      progress.close();
      TransferRendering.print(spec.commandLine().getOut(), r, diskRate * 1e6, linkRate * 1e6);
    }
    return 0;
  }
}
