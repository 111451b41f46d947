package org.osfarm.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.osfarm.mount.Unmount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(
    name = "umount",
    description = "Unmount an osfarm mount (its writable overlay first, then the read-only view).")
final class UmountCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() throws IOException {
    Unmount.run(mountpoint);
    return 0;
  }
}
