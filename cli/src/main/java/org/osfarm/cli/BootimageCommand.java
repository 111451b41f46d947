package org.osfarm.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.osfarm.build.BuildListener;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.ImageBuilder;
import org.osfarm.build.ImageSpec;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.mount.boot.BootImage;
import org.osfarm.mount.boot.BootVm;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "bootimage",
    description = {
      "Make (or with --boot, boot) a tiny image that boots a snapshot over HTTP.",
      "",
      "Make a tiny boot image: a disk image with a kernel and an initramfs holding the mount "
          + "client, which boots a snapshot from an osfarm URL as its root (lazily, over HTTP) with a"
          + " writable overlay on a scratch disk. With --boot, boot such an image under "
          + "qemu-system-x86_64 with the console on stdout."
    })
final class BootimageCommand implements Callable<Integer> {
  /** The ref of the kernel image built when --kernel-from is not given. */
  static final String KERNEL_REF = "images/osfarm-boot-kernel";

  @ParentCommand OsfarmCommand top;

  @Spec CommandSpec spec;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "FILE",
      description = "The boot image to write.")
  Path output;

  @Option(
      names = "--kernel-from",
      paramLabel = "REF",
      description =
          "A snapshot with a Debian kernel (linux-image-*) to take the kernel and modules from."
              + " Default: a minimal debian-bookworm image with a kernel, built (and then cached)"
              + " as "
              + KERNEL_REF
              + ".")
  String kernelFrom;

  @Option(
      names = "--kernel",
      paramLabel = "FILE",
      description =
          "An x86 kernel (bzImage) with everything the boot needs built in (virtio, ext4, fuse,"
              + " overlay, ...), e.g. the small one scripts/tiny-kernel builds; the initramfs then"
              + " carries no modules. Instead of --kernel-from.")
  Path kernel;

  @Option(
      names = "--url",
      paramLabel = "URL",
      description = "The osfarm URL booted by default (osfarm.url= on the kernel command line).")
  String url;

  @Option(
      names = "--ref",
      paramLabel = "REF",
      description = "The ref or snapshot id booted by default (osfarm.ref=).")
  String ref;

  @Option(
      names = "--mount-jar",
      paramLabel = "JAR",
      description =
          "The mount client (osfarm-mount.jar). Default: $OSFARM_MOUNT_JAR, else"
              + " mount/target/osfarm-mount.jar of this source tree.")
  Path mountJar;

  @Option(
      names = "--jdk",
      paramLabel = "DIR",
      description = "The JDK 25 whose jlink makes the runtime (default: the one running osfarm).")
  Path jdk;

  @Option(
      names = "--compression",
      paramLabel = "xz|zstd|none",
      defaultValue = "xz",
      description = "How the initramfs is compressed (default: ${DEFAULT-VALUE}).")
  String compression;

  @Option(names = "--boot", paramLabel = "IMAGE", description = "Boot IMAGE instead of making one.")
  Path boot;

  @Option(
      names = "--scratch",
      paramLabel = "FILE",
      description =
          "With --boot: the scratch disk (raw; created sparse when absent, formatted by the guest;"
              + " default: IMAGE.scratch).")
  Path scratch;

  @Option(
      names = "--scratch-size",
      paramLabel = "SIZE",
      defaultValue = "4G",
      description = "With --boot: size of a new scratch disk (default: ${DEFAULT-VALUE}).")
  String scratchSize;

  @Option(
      names = "--append",
      paramLabel = "WORDS",
      description =
          "With --boot: more kernel command-line words, e.g. 'osfarm.url=http://10.0.2.2:8080"
              + " osfarm.ref=images/web osfarm.check'.")
  String append;

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      defaultValue = "600",
      description = "With --boot: stop the guest after this long (default: ${DEFAULT-VALUE}).")
  long timeout;

  @Override
  public Integer call() throws IOException {
    if (boot != null) {
      return bootIt();
    }
    if (output == null) {
      throw new IllegalArgumentException("give the boot image to write: -o FILE");
    }
    BootImage.Compression c;
    try {
      c = BootImage.Compression.valueOf(compression.toUpperCase(java.util.Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--compression: xz, zstd or none, not " + compression);
    }
    Path jar = mountJar != null ? mountJar : defaultMountJar();
    Path jdkDir = jdk != null ? jdk : Path.of(System.getProperty("java.home"));
    if (kernel != null && kernelFrom != null) {
      throw new IllegalArgumentException(
          "give the kernel as a file (--kernel) or as a snapshot (--kernel-from), not both");
    }
    PrintWriter err = spec.commandLine().getErr();
    Path work = Files.createTempDirectory("osfarm-bootimage-");
    try (Repository repo = kernel != null ? null : top.openRepository()) {
      BootImage.KernelSource k =
          kernel != null
              ? new BootImage.KernelSource.FromFile(kernel.toAbsolutePath())
              : new BootImage.KernelSource.FromSnapshot(
                  repo, kernelFrom != null ? repo.resolve(kernelFrom) : defaultKernel(repo, err));
      BootImage.Result r =
          BootImage.make(
              new BootImage.Request(
                  k, jar, jdkDir, url, ref, c, output.toAbsolutePath(), work.resolve("w")),
              s -> err.println("bootimage: " + s));
      err.printf(
          "kernel %s: %s; initramfs: %s (%s as cpio)%n",
          r.kernelVersion(),
          human(r.kernelBytes()),
          human(r.initramfsBytes()),
          human(r.initramfsRawBytes()));
      for (Map.Entry<String, Long> e : r.parts().entrySet()) {
        err.printf("  %-60s %s%n", e.getKey(), human(e.getValue()));
      }
      err.println(
          "  kernel modules: "
              + (r.kernelModules().isEmpty()
                  ? "none (built into the kernel)"
                  : String.join(" ", r.kernelModules())));
      spec.commandLine().getOut().println(r.image() + " " + r.imageBytes());
    } finally {
      deleteTree(work);
    }
    return 0;
  }

  private int bootIt() throws IOException {
    Path s = scratch != null ? scratch : boot.resolveSibling(boot.getFileName() + ".scratch");
    Path work = Files.createTempDirectory("osfarm-boot-");
    try {
      BootVm.Run run =
          BootVm.boot(
              boot,
              s,
              parseSize(scratchSize),
              append,
              Duration.ofSeconds(timeout),
              work,
              text -> {
                System.out.print(text);
                System.out.flush();
              });
      System.err.printf(
          "%nbootimage: guest %s after %.1f s (accel %s)%n",
          run.poweredOff() ? "powered off" : "stopped at the timeout", run.seconds(), run.accel());
      return run.poweredOff() && !run.console().contains(BootVm.FAILED) ? 0 : 1;
    } finally {
      deleteTree(work);
    }
  }

  /** Builds (or finds in the build cache) a minimal bookworm image with a kernel. */
  private static Digest defaultKernel(Repository repo, PrintWriter err) throws IOException {
    ImageSpec spec =
        ImageSpec.builder()
            .name("osfarm-boot-kernel")
            .className("debian-bookworm")
            .arch("amd64")
            .group("core")
            .kernel(true)
            .build();
    err.println(
        "bootimage: no --kernel-from: building (or reusing) a bookworm image with a kernel as "
            + KERNEL_REF);
    ImageBuilder b =
        new ImageBuilder(
            repo, ClassRegistry.builtIn(), ImageBuilder.defaultCacheDir(System.getenv()));
    return b.build(
            spec,
            KERNEL_REF,
            List.of(),
            new BuildListener() {
              @Override
              public void step(String message) {
                err.println("build: " + message);
              }
            })
        .snapshot();
  }

  static Path defaultMountJar() {
    String env = System.getenv("OSFARM_MOUNT_JAR");
    if (env != null && !env.isBlank()) {
      return Path.of(env);
    }
    try {
      // the running osfarm.jar is cli/target/osfarm.jar of a source tree
      Path self =
          Path.of(
              BootimageCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      Path tree = self.getParent().getParent().getParent();
      return tree.resolve("mount/target/osfarm-mount.jar");
    } catch (Exception e) {
      return Path.of("mount/target/osfarm-mount.jar");
    }
  }

  static long parseSize(String s) {
    String t = s.strip().toUpperCase(java.util.Locale.ROOT);
    long mult = 1;
    char last = t.charAt(t.length() - 1);
    if ("KMGT".indexOf(last) >= 0) {
      mult = 1L << (10 * ("KMGT".indexOf(last) + 1));
      t = t.substring(0, t.length() - 1);
    }
    return Long.parseLong(t) * mult;
  }

  private static String human(long n) {
    return String.format("%.1f MiB", n / 1048576.0);
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var s = Files.walk(dir)) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
