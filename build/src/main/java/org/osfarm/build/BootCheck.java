package org.osfarm.build;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.Repository;

/**
 * Boots a raw or qcow2 output under {@code qemu-system-x86_64} by direct kernel boot (the kernel
 * and initrd are read from the image's snapshot) and waits for a marker on the serial console.
 * Software emulation by default (see {@link #accel}). The disk is opened with {@code -snapshot}, so
 * a boot never changes the output: every boot is a fresh delivery of the same image.
 */
public final class BootCheck {
  private BootCheck() {}

  /**
   * @return the console output (the guest runs on for up to 60 s after the marker, until it powers
   *     off)
   * @throws BuildException if the image has no kernel, qemu fails, or the marker does not appear
   *     within {@code timeout}
   */
  public static String boot(
      Repository repo,
      Digest image,
      Path disk,
      OutputFormat format,
      String marker,
      Duration timeout,
      Path work)
      throws IOException {
    Entry boot = repo.lookup(image, "boot".getBytes(StandardCharsets.UTF_8));
    if (boot == null) {
      throw new BuildException("the image has no /boot: build it with a kernel (kernel: true)");
    }
    String vmlinuz = null;
    String initrd = null;
    for (Entry e : repo.readTree(boot.content())) {
      String n = e.nameString();
      if (n.startsWith("vmlinuz-")) {
        vmlinuz = n;
      } else if (n.startsWith("initrd.img-")) {
        initrd = n;
      }
    }
    if (vmlinuz == null || initrd == null) {
      throw new BuildException("the image's /boot has no vmlinuz-* and initrd.img-*");
    }
    Files.createDirectories(work);
    Path k = work.resolve(vmlinuz);
    Path i = work.resolve(initrd);
    copy(repo, image, "boot/" + vmlinuz, k);
    copy(repo, image, "boot/" + initrd, i);
    List<String> cmd = new ArrayList<>();
    cmd.addAll(
        List.of(
            "qemu-system-x86_64",
            "-machine",
            accel(),
            "-cpu",
            "max",
            "-m",
            "1024",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
            "-snapshot",
            "-kernel",
            k.toString(),
            "-initrd",
            i.toString(),
            "-append",
            "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=1",
            "-drive",
            "file="
                + disk
                + ",format="
                + (format == OutputFormat.QCOW2 ? "qcow2" : "raw")
                + ",if=virtio",
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0"));
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new BuildException(
          "cannot run qemu-system-x86_64 (apt-get install qemu-system-x86)", e);
    }
    StringBuilder console = new StringBuilder();
    Thread reader =
        Thread.ofVirtual()
            .start(
                () -> {
                  byte[] buf = new byte[8192];
                  try (InputStream in = p.getInputStream()) {
                    for (int n; (n = in.read(buf)) > 0; ) {
                      synchronized (console) {
                        console.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                        console.notifyAll();
                      }
                    }
                  } catch (IOException e) {
                    // qemu ended
                  }
                });
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      synchronized (console) {
        while (console.indexOf(marker) < 0 && p.isAlive()) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          if (left <= 0) {
            break;
          }
          console.wait(Math.min(left, 500));
        }
      }
      if (console.indexOf(marker) >= 0) {
        // let the guest finish (a marker script may power off) so lines are complete
        p.waitFor(60, TimeUnit.SECONDS);
        reader.join(2000);
        synchronized (console) {
          return console.toString();
        }
      }
      reader.join(2000);
      String tail;
      synchronized (console) {
        tail = console.substring(Math.max(0, console.length() - 3000));
      }
      throw new BuildException(
          "marker '"
              + marker
              + "' did not appear within "
              + timeout.toSeconds()
              + " s; console:\n"
              + tail);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BuildException("interrupted", e);
    } finally {
      p.destroyForcibly();
    }
  }

  /**
   * Software emulation ({@code -cpu max}) unless {@code OSFARM_QEMU_ACCEL=kvm}: nested KVM on CI
   * hosts often hangs the guest kernel before its first message, while TCG always works.
   */
  private static String accel() {
    return "kvm".equals(System.getenv("OSFARM_QEMU_ACCEL")) ? "accel=kvm" : "accel=tcg";
  }

  private static void copy(Repository repo, Digest image, String path, Path to) throws IOException {
    Entry e = repo.lookupFile(image, path.getBytes(StandardCharsets.UTF_8));
    try (InputStream in = repo.openContent(e)) {
      Files.copy(in, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
