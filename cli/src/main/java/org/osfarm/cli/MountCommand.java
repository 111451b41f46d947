package org.osfarm.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.osfarm.mount.MountMain;
import org.osfarm.mount.MountOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "mount",
    description = {
      "Mount a snapshot read-only through FUSE; files are fetched when read into a bounded cache.",
      "Returns once mounted; a background process serves the mount until 'osfarm umount'."
    })
final class MountCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "Repository directory or URL.")
  String source;

  @Parameters(index = "1", paramLabel = "REF", description = "Ref name or snapshot id.")
  String ref;

  @Parameters(index = "2", paramLabel = "MOUNTPOINT", description = "An existing directory.")
  Path mountpoint;

  @Option(names = "--cache", paramLabel = "DIR", description = "Cache directory.")
  Path cache;

  @Option(
      names = "--cache-size",
      paramLabel = "SIZE",
      defaultValue = "2G",
      description = "Cache bound (pinned files excepted), default ${DEFAULT-VALUE}.")
  String cacheSize;

  @Option(
      names = "--pin",
      paramLabel = "FILE",
      description = "File of paths (one per line) to fetch now and never evict.")
  List<Path> pins = new ArrayList<>();

  @Option(names = "--offline", description = "Never contact SOURCE: cached and pinned data only.")
  boolean offline;

  @Option(
      names = "--cache-local",
      description =
          "Copy what is read from a local repository into the cache too (default: read it"
              + " directly; for a repository on a slow or network file system).")
  boolean cacheLocal;

  @Option(
      names = "--writable",
      paramLabel = "SCRATCH",
      description = "A writable overlay (overlayfs, root) with its changes in SCRATCH/upper.")
  Path writable;

  @Option(names = "--follow", description = "Serve REF's newest snapshot as it moves.")
  boolean follow;

  @Option(
      names = "--follow-interval",
      paramLabel = "DURATION",
      defaultValue = "30s",
      description = "How often --follow looks, default ${DEFAULT-VALUE}.")
  String followInterval;

  @Option(names = "--trust", paramLabel = "KEYFILE", description = "Check snapshot signatures.")
  Path trust;

  @Option(names = "--foreground", description = "Serve in this process until unmounted.")
  boolean foreground;

  @Option(
      names = "--stats-file",
      paramLabel = "FILE",
      description = "Rewrite FILE every second with the mount's statistics (JSON).")
  Path statsFile;

  @Override
  public Integer call() {
    MountOptions o;
    try {
      o =
          new MountOptions(
              source,
              ref,
              mountpoint,
              cache == null ? null : cache.toAbsolutePath(),
              MountOptions.parseSize(cacheSize),
              pins,
              offline,
              cacheLocal,
              writable,
              follow,
              MountOptions.parseDuration(followInterval),
              trust,
              foreground,
              statsFile == null ? null : statsFile.toAbsolutePath(),
              null);
    } catch (IllegalArgumentException e) {
      spec.commandLine().getErr().println("osfarm mount: " + e.getMessage());
      return 2;
    }
    List<String> args = new ArrayList<>(spec.root().commandLine().getParseResult().originalArgs());
    return MountMain.serve(
        o, Main.class.getName(), args, spec.commandLine().getOut(), spec.commandLine().getErr());
  }
}
