package org.osfarm.mount.boot;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Boots a boot image under {@code qemu-system-x86_64} by direct kernel boot (kernel and initramfs
 * read from the image with {@code debugfs}), with the image as the first virtio disk, the scratch
 * disk as the second and user networking (the host is 10.0.2.2 in the guest), the serial console on
 * stdout. KVM when {@code /dev/kvm} can be opened, TCG otherwise or when {@code
 * OSFARM_QEMU_ACCEL=tcg}.
 */
public final class BootVm {
  /** Printed by the boot check in the snapshot's root. */
  public static final String MARKER = "OSFARM-BOOT-OK";

  /** Printed by the boot check with the mount client's statistics (one JSON object). */
  public static final String STATS = "OSFARM-BOOT-STATS";

  /** Printed by the init when the boot fails. */
  public static final String FAILED = "OSFARM-BOOT-FAILED";

  /**
   * How a boot went.
   *
   * @param console everything the guest printed on its serial console
   * @param accel the accelerator asked for
   * @param seconds from start to the end of the guest (or the timeout)
   * @param poweredOff whether the guest powered off by itself
   */
  public record Run(String console, String accel, double seconds, boolean poweredOff) {}

  private BootVm() {}

  /**
   * Boots {@code image} and waits until the guest powers off or {@code timeout} passes.
   *
   * @param scratch the scratch disk (raw); created sparse with {@code scratchBytes} when absent
   * @param append more kernel command-line words (after the image's own)
   * @param console receives the console output as it comes (may be a no-op)
   * @throws BootImageException if qemu cannot run
   */
  public static Run boot(
      Path image,
      Path scratch,
      long scratchBytes,
      String append,
      Duration timeout,
      Path work,
      Consumer<String> console)
      throws IOException {
    Files.createDirectories(work);
    Path kernel = work.resolve("vmlinuz");
    Path initrd = work.resolve("initrd.img");
    dump(image, "/boot/vmlinuz", kernel);
    dump(image, "/boot/initrd.img", initrd);
    Path cmdlineFile = work.resolve("cmdline");
    dump(image, "/boot/cmdline", cmdlineFile);
    String cmdline = Files.readString(cmdlineFile).strip();
    if (append != null && !append.isBlank()) {
      cmdline += " " + append.strip();
    }
    if (!Files.exists(scratch)) {
      try (RandomAccessFile f = new RandomAccessFile(scratch.toFile(), "rw")) {
        f.setLength(scratchBytes);
      }
    }
    String accel = accel();
    Run run = run(image, scratch, kernel, initrd, cmdline, accel, timeout, console);
    if (accel.equals("kvm") && run.seconds() < 20 && !run.console().contains("osfarm-boot")) {
      // KVM opened but QEMU could not run a guest on it (nested hosts refuse some MSRs)
      console.accept("osfarm: KVM failed, booting under TCG\n");
      run = run(image, scratch, kernel, initrd, cmdline, "tcg", timeout, console);
    }
    return run;
  }

  private static Run run(
      Path image,
      Path scratch,
      Path kernel,
      Path initrd,
      String cmdline,
      String accel,
      Duration timeout,
      Consumer<String> console)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.addAll(
        List.of(
            "qemu-system-x86_64",
            "-machine",
            "q35,accel=" + accel,
            "-cpu",
            // KVM refuses some of -cpu max's MSRs on nested hosts; host is what KVM runs anyway
            accel.startsWith("kvm") ? "host" : "max",
            "-m",
            "1024",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
            "-kernel",
            kernel.toString(),
            "-initrd",
            initrd.toString(),
            "-append",
            cmdline,
            "-drive",
            "file=" + image + ",format=raw,if=virtio,readonly=on",
            "-drive",
            "file=" + scratch + ",format=raw,if=virtio",
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0"));
    long start = System.nanoTime();
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new BootImageException(
          "cannot run qemu-system-x86_64 (apt-get install qemu-system-x86)", e);
    }
    p.getOutputStream().close();
    StringBuilder out = new StringBuilder();
    Thread reader =
        Thread.ofVirtual()
            .start(
                () -> {
                  byte[] buf = new byte[8192];
                  try (InputStream in = p.getInputStream()) {
                    for (int n; (n = in.read(buf)) > 0; ) {
                      String s = new String(buf, 0, n, StandardCharsets.UTF_8);
                      synchronized (out) {
                        out.append(s);
                      }
                      console.accept(s);
                    }
                  } catch (IOException e) {
                    // qemu ended
                  }
                });
    boolean exited;
    try {
      exited = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
      if (!exited) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
      reader.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new BootImageException("interrupted", e);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    synchronized (out) {
      return new Run(out.toString(), accel, seconds, exited);
    }
  }

  /** KVM when /dev/kvm opens, else TCG; OSFARM_QEMU_ACCEL (kvm or tcg) wins. */
  static String accel() {
    String env = System.getenv("OSFARM_QEMU_ACCEL");
    if (env != null && !env.isBlank()) {
      return env;
    }
    Path kvm = Path.of("/dev/kvm");
    if (Files.isReadable(kvm) && Files.isWritable(kvm)) {
      try (RandomAccessFile f = new RandomAccessFile(kvm.toFile(), "rw")) {
        return "kvm";
      } catch (IOException e) {
        return "tcg";
      }
    }
    return "tcg";
  }

  private static void dump(Path image, String path, Path to) throws IOException {
    Files.deleteIfExists(to);
    Tools.run(List.of("debugfs", "-R", "dump " + path + " " + to, image.toString()), null, null);
    if (!Files.exists(to)) {
      throw new BootImageException(image + " has no " + path + ": is it an osfarm boot image?");
    }
  }
}
