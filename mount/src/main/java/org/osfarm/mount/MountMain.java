package org.osfarm.mount;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The mount client without the rest of osfarm (packaged as {@code osfarm-mount.jar} for the boot
 * image): {@code MountMain SOURCE REF MOUNTPOINT [options]}, the options of {@code osfarm mount}.
 * Exit status 0 when mounted (background) or cleanly unmounted (foreground), 1 on an error, 2 on
 * bad usage.
 */
public final class MountMain {
  static final String USAGE =
      "usage: osfarm-mount SOURCE REF MOUNTPOINT [--cache DIR] [--cache-size 2G] [--pin FILE]..."
          + " [--offline] [--cache-local] [--writable SCRATCH] [--follow] [--follow-interval 30s]"
          + " [--trust KEYFILE] [--foreground] [--stats-file FILE]\n"
          + "       osfarm-mount --umount MOUNTPOINT";

  private MountMain() {}

  public static void main(String[] args) {
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  static int run(String[] args, PrintWriter out, PrintWriter err) {
    if (args.length == 2 && args[0].equals("--umount")) {
      try {
        Unmount.run(Path.of(args[1]));
        return 0;
      } catch (IOException e) {
        err.println("osfarm-mount: " + e.getMessage());
        return 1;
      }
    }
    MountOptions o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      err.println("osfarm-mount: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    List<String> childArgs = new ArrayList<>(Arrays.asList(args));
    return serve(o, MountMain.class.getName(), childArgs, out, err);
  }

  /**
   * Mounts: in the foreground, serves until unmounted or signalled; else starts a background
   * process ({@code mainClass childArgs... --foreground}) and returns once it has mounted.
   */
  public static int serve(
      MountOptions o, String mainClass, List<String> childArgs, PrintWriter out, PrintWriter err) {
    try {
      if (!o.foreground()) {
        // else the wait below would take the existing mount for the new one
        Mount.checkNotMounted(o.mountpoint());
        String type = o.writable() != null ? "overlay" : MountTable.FUSE_TYPE;
        long pid =
            Background.start(
                mainClass,
                childArgs,
                o.mountpoint(),
                type,
                o.cacheDir().resolve("mount.log"),
                600_000);
        out.println(
            "mounted on "
                + o.mountpoint()
                + " (served by process "
                + pid
                + "; log "
                + o.cacheDir().resolve("mount.log")
                + "); 'osfarm umount "
                + o.mountpoint()
                + "' unmounts it");
        return 0;
      }
      System.setProperty(
          "java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$s: %5$s%6$s%n");
      Mount m = Mount.start(o);
      Thread hook =
          new Thread(
              () -> {
                try {
                  m.close();
                } catch (IOException e) {
                  err.println("osfarm-mount: " + e.getMessage());
                }
              });
      Runtime.getRuntime().addShutdownHook(hook);
      out.println("mounted " + m.snapshot().hex() + " on " + o.mountpoint());
      out.flush();
      m.awaitUnmounted();
      m.close();
      return 0;
    } catch (IOException | RuntimeException e) {
      err.println("osfarm-mount: " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 1;
    }
  }

  static MountOptions parse(String[] args) {
    List<String> pos = new ArrayList<>();
    String cache = null;
    long cacheSize = MountOptions.DEFAULT_CACHE_SIZE;
    List<Path> pins = new ArrayList<>();
    boolean offline = false;
    boolean cacheLocal = false;
    boolean follow = false;
    boolean foreground = false;
    Path writable = null;
    Path trust = null;
    Path stats = null;
    Duration interval = MountOptions.DEFAULT_FOLLOW_INTERVAL;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      String v = null;
      if (a.startsWith("--") && a.contains("=")) {
        v = a.substring(a.indexOf('=') + 1);
        a = a.substring(0, a.indexOf('='));
      }
      switch (a) {
        case "--offline" -> offline = true;
        case "--cache-local" -> cacheLocal = true;
        case "--follow" -> follow = true;
        case "--foreground", "-f" -> foreground = true;
        case "--cache",
            "--cache-size",
            "--pin",
            "--writable",
            "--trust",
            "--stats-file",
            "--follow-interval" -> {
          if (v == null) {
            if (i + 1 >= args.length) {
              throw new IllegalArgumentException(a + " needs a value");
            }
            v = args[++i];
          }
          switch (a) {
            case "--cache" -> cache = v;
            case "--cache-size" -> cacheSize = MountOptions.parseSize(v);
            case "--pin" -> pins.add(Path.of(v));
            case "--writable" -> writable = Path.of(v);
            case "--trust" -> trust = Path.of(v);
            case "--stats-file" -> stats = Path.of(v);
            default -> interval = MountOptions.parseDuration(v);
          }
        }
        default -> {
          if (a.startsWith("-") && a.length() > 1) {
            throw new IllegalArgumentException("unknown option " + a);
          }
          pos.add(a);
        }
      }
    }
    if (pos.size() != 3) {
      throw new IllegalArgumentException("expected SOURCE REF MOUNTPOINT, got " + pos);
    }
    return new MountOptions(
        pos.get(0),
        pos.get(1),
        Path.of(pos.get(2)),
        cache == null ? null : Path.of(cache).toAbsolutePath(),
        cacheSize,
        pins,
        offline,
        cacheLocal,
        writable,
        follow,
        interval,
        trust,
        foreground,
        stats == null ? null : stats.toAbsolutePath(),
        null);
  }
}
