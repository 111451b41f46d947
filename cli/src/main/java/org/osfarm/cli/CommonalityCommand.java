package org.osfarm.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.osfarm.transfer.Commonality;
import org.osfarm.transfer.SeedIndex;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "commonality",
    description = "Print the fraction of A's blocks whose content is found in B (files or dirs).")
final class CommonalityCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "A")
  Path a;

  @Parameters(index = "1", paramLabel = "B")
  Path b;

  @Option(names = "--block-size", paramLabel = "N", description = "Default 4096.")
  int blockSize = 4096;

  @Option(
      names = "--seed-index",
      paramLabel = "DIR",
      description = "Default ~/.cache/osfarm/seed-index.")
  Path seedIndex;

  @Override
  public Integer call() throws Exception {
    Commonality.Result r =
        Commonality.of(
            a, b, blockSize, new SeedIndex(seedIndex != null ? seedIndex : SeedIndex.defaultDir()));
    spec.commandLine()
        .getOut()
        .printf(
            "%.4f  (%,d of %,d blocks of %s found in %s; %.4f of the %,d non-zero blocks)%n",
            r.fraction(),
            r.found(),
            r.blocks(),
            a,
            b,
            r.fractionNonZero(),
            r.blocks() - r.zeroBlocks());
    return 0;
  }
}
