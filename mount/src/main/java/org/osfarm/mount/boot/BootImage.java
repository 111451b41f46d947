package org.osfarm.mount.boot;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;

/**
 * Makes the tiny boot image: an ext4 disk image ({@code mke2fs -d}, no root needed) holding {@code
 * boot/vmlinuz}, {@code boot/initrd.img} and {@code boot/cmdline}. The initramfs holds busybox, the
 * few kernel modules the init needs (none with a kernel that has them built in), libfuse3 and
 * fusermount3, a jlink'd Java runtime with only the modules the mount client uses, the mount client
 * ({@code osfarm-mount.jar}) and the init script; the init mounts a snapshot from an osfarm URL as
 * the root with a writable overlay on a scratch disk (see {@code init} next to this class). {@link
 * BootVm} boots it under QEMU.
 *
 * <p>Steps, each a method: kernel parts from a snapshot with a kernel or from a kernel file; host
 * programs and their shared libraries ({@code ldd}); the Java runtime ({@code jdeps} finds the
 * modules, {@code jlink} links them); the cpio archive; its compression; the ext4 image. Not
 * thread-safe; the work directory is the caller's.
 */
public final class BootImage {
  /** The main class of the mount client in {@code osfarm-mount.jar}. */
  public static final String MOUNT_MAIN = "org.osfarm.mount.MountMain";

  /** JVM options of the mount client in the guest: small and quick to start, even under TCG. */
  static final String JAVA_OPTS =
      "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Xss512k -Xmx256m"
          + " -XX:MaxMetaspaceSize=128m --enable-native-access=ALL-UNNAMED";

  /** How the initramfs is compressed (both are decompressed by Debian's kernels). */
  public enum Compression {
    XZ,
    ZSTD,
    NONE
  }

  /** Where the kernel comes from. */
  public sealed interface KernelSource {
    /**
     * A Debian kernel installed (or extracted) in a snapshot: {@code boot/vmlinuz-VERSION} and the
     * few modules the init loads.
     *
     * @param repo the repository holding {@code snapshot}
     * @param snapshot a snapshot with a Debian kernel
     */
    record FromSnapshot(Repository repo, Digest snapshot) implements KernelSource {}

    /**
     * An x86 bzImage with everything the boot needs built in ({@code scripts/tiny-kernel}): the
     * initramfs then carries no modules.
     *
     * @param bzImage the kernel file
     */
    record FromFile(Path bzImage) implements KernelSource {}
  }

  /**
   * What to make.
   *
   * @param kernel where the kernel (and its modules, if any) comes from
   * @param mountJar {@code osfarm-mount.jar}, the mount client with its dependencies
   * @param jdk the JDK whose {@code jlink} and {@code jdeps} make the runtime
   * @param url the osfarm URL booted when the kernel command line names none (may be null)
   * @param ref the ref or snapshot id booted when the kernel command line names none (may be null)
   * @param compression of the initramfs
   * @param output the disk image to write (replaced atomically)
   * @param work a scratch directory (emptied and used)
   */
  public record Request(
      KernelSource kernel,
      Path mountJar,
      Path jdk,
      String url,
      String ref,
      Compression compression,
      Path output,
      Path work) {}

  /**
   * What was made.
   *
   * @param image the disk image
   * @param imageBytes its size
   * @param kernelVersion the kernel's version
   * @param kernelBytes the compressed kernel ({@code vmlinuz})
   * @param initramfsBytes the compressed initramfs
   * @param initramfsRawBytes the cpio archive before compression
   * @param parts uncompressed bytes of each part of the initramfs
   * @param javaModules the modules of the linked Java runtime
   * @param kernelModules the kernel modules, in load order (none for a kernel file)
   */
  public record Result(
      Path image,
      long imageBytes,
      String kernelVersion,
      long kernelBytes,
      long initramfsBytes,
      long initramfsRawBytes,
      Map<String, Long> parts,
      List<String> javaModules,
      List<String> kernelModules) {}

  private BootImage() {}

  /**
   * Makes the boot image.
   *
   * @param progress receives one line per step
   * @throws BootImageException if an input is missing (no kernel in the snapshot, no jar, no
   *     busybox-static, ...) or a tool fails; the output is then left as it was
   */
  public static Result make(Request r, Consumer<String> progress) throws IOException {
    if (!Files.isRegularFile(r.mountJar())) {
      throw new BootImageException(
          "no mount client at "
              + r.mountJar()
              + " (build it: ./mvnw -pl mount -am package -DskipTests)");
    }
    Path jlink = r.jdk().resolve("bin/jlink");
    if (!Files.isExecutable(jlink)) {
      throw new BootImageException(
          "no jlink in " + r.jdk() + ": give a JDK 25 (not a JRE) to make the Java runtime");
    }
    deleteTree(r.work());
    Path root = r.work().resolve("root");
    Path stage = r.work().resolve("disk");
    Files.createDirectories(root);
    Files.createDirectories(stage.resolve("boot"));
    Map<String, Long> parts = new LinkedHashMap<>();

    Path kernelDir = r.work().resolve("kernel");
    KernelParts k =
        switch (r.kernel()) {
          case KernelSource.FromSnapshot s -> {
            progress.accept("kernel: reading the kernel and modules from " + s.snapshot().hex());
            yield KernelParts.extract(s.repo(), s.snapshot(), KernelParts.NEEDED, kernelDir);
          }
          case KernelSource.FromFile f -> {
            progress.accept("kernel: " + f.bzImage() + " (everything built in, no modules)");
            yield KernelParts.fromFile(f.bzImage(), kernelDir);
          }
        };
    List<String> kernelModules = new ArrayList<>();
    StringBuilder order = new StringBuilder();
    if (!k.modules.isEmpty()) {
      Path mods = Files.createDirectories(root.resolve("lib/modules"));
      for (Path m : k.modules) {
        Files.copy(m, mods.resolve(m.getFileName()));
        kernelModules.add(m.getFileName().toString());
        order.append(m.getFileName()).append('\n');
      }
      parts.put("kernel modules", sizeOf(mods));
    }

    progress.accept("host programs: busybox, mke2fs, fusermount3, libfuse3");
    Path osfarm = Files.createDirectories(root.resolve("osfarm"));
    Path busybox = HostFiles.busybox();
    copyExec(busybox, root.resolve("bin/busybox"));
    copyExec(busybox, osfarm.resolve("bin/busybox"));
    copyExec(
        HostFiles.find("mke2fs", "/usr/sbin/mke2fs", "/sbin/mke2fs"),
        root.resolve("usr/local/sbin/mke2fs"));
    copyExec(
        HostFiles.find("fusermount3", "/usr/bin/fusermount3", "/bin/fusermount3"),
        root.resolve("usr/bin/fusermount3"));
    Path libfuse =
        HostFiles.find(
            "libfuse3 (apt-get install libfuse3-3)",
            "/usr/lib/x86_64-linux-gnu/libfuse3.so.3",
            "/lib/x86_64-linux-gnu/libfuse3.so.3");
    copyFile(libfuse.toRealPath(), osfarm.resolve("lib/libfuse3.so.3"));
    Path mke2fsConf = Path.of("/etc/mke2fs.conf");
    if (Files.isRegularFile(mke2fsConf)) {
      copyFile(mke2fsConf, root.resolve("etc/mke2fs.conf"));
    }

    progress.accept("java: jdeps and jlink");
    List<String> javaModules = JavaRuntime.modules(r.jdk(), r.mountJar());
    Path jre = osfarm.resolve("jre");
    JavaRuntime.link(r.jdk(), javaModules, jre);
    parts.put("java runtime (" + String.join(",", javaModules) + ")", sizeOf(jre));
    Path jar = osfarm.resolve("osfarm-mount.jar");
    Files.createDirectories(jar.getParent());
    BootJar.write(r.mountJar(), jar);
    List<String> missing = BootJar.missingClasses(r.jdk(), jar);
    if (!missing.isEmpty()) {
      throw new BootImageException(
          r.mountJar()
              + " lacks classes the mount client uses (the guest would fail when it reaches"
              + " them): "
              + String.join(", ", missing));
    }
    parts.put("mount client (osfarm-mount.jar, linux-amd64 classes, stored)", Files.size(jar));

    // shared libraries of every dynamically linked program, from the host (one glibc for all)
    List<Path> elves = new ArrayList<>();
    elves.add(root.resolve("usr/local/sbin/mke2fs"));
    elves.add(root.resolve("usr/bin/fusermount3"));
    elves.add(osfarm.resolve("lib/libfuse3.so.3"));
    try (Stream<Path> s = Files.walk(jre)) {
      s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
          .filter(p -> p.toString().endsWith(".so") || p.getParent().endsWith("bin"))
          .sorted()
          .forEach(elves::add);
    }
    long libBytes = HostFiles.copyLibraries(elves, root, jre);
    parts.put("shared libraries (glibc, ...)", libBytes);
    parts.put("busybox", Files.size(busybox));

    progress.accept("init");
    Path etc = Files.createDirectories(root.resolve("etc/osfarm"));
    Files.writeString(etc.resolve("modules"), order.toString());
    Files.writeString(
        etc.resolve("boot.conf"),
        "# defaults of the osfarm boot image; osfarm.url= and osfarm.ref= override them\n"
            + "OSFARM_URL="
            + shellQuote(r.url() == null ? "" : r.url())
            + "\nOSFARM_REF="
            + shellQuote(r.ref() == null ? "" : r.ref())
            + "\nJAVA_OPTS="
            + shellQuote(JAVA_OPTS)
            + "\nMOUNT_MAIN="
            + MOUNT_MAIN
            + "\n");
    writeResource("init", root.resolve("init"), "rwxr-xr-x");
    writeResource("udhcpc.sh", etc.resolve("udhcpc.sh"), "rwxr-xr-x");
    writeResource("check.sh", osfarm.resolve("check.sh"), "rw-r--r--");
    Files.writeString(root.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    Files.writeString(root.resolve("etc/group"), "root:x:0:\n");
    Files.createDirectories(root.resolve("root"));
    Files.createSymbolicLink(root.resolve("etc/mtab"), Path.of("/proc/mounts"));

    progress.accept(
        "initramfs: cpio"
            + (r.compression() == Compression.NONE
                ? ""
                : ", " + r.compression().name().toLowerCase()));
    Path cpio = r.work().resolve("initrd.cpio");
    try (CpioWriter w =
        new CpioWriter(new BufferedOutputStream(Files.newOutputStream(cpio), 1 << 16))) {
      w.directory("dev", 0755);
      w.charDevice("dev/console", 0600, 5, 1);
      w.charDevice("dev/null", 0666, 1, 3);
      w.addTree(root);
    }
    long rawBytes = Files.size(cpio);
    Path initrd = stage.resolve("boot/initrd.img");
    compress(cpio, initrd, r.compression());
    Path vmlinuz = stage.resolve("boot/vmlinuz");
    Files.copy(k.vmlinuz, vmlinuz);
    Files.writeString(stage.resolve("boot/cmdline"), cmdline(r.url(), r.ref()) + "\n");
    Files.writeString(
        stage.resolve("boot/README"),
        "osfarm boot image: kernel "
            + k.version
            + ". Boot it (direct kernel boot; the second disk is the scratch disk):\n"
            + "  osfarm bootimage --boot THIS.img --scratch scratch.img\n"
            + "or extract boot/vmlinuz and boot/initrd.img (debugfs -R 'dump /boot/vmlinuz"
            + " vmlinuz' THIS.img) and run qemu-system-x86_64 -kernel vmlinuz -initrd initrd.img"
            + " -append \"$(cat cmdline)\" -drive file=THIS.img,format=raw,if=virtio,readonly=on"
            + " -drive file=scratch.img,format=raw,if=virtio -nic user,model=virtio-net-pci"
            + " -nographic\n");

    progress.accept("disk image: mke2fs -d");
    Path tmpImage = r.output().resolveSibling(r.output().getFileName() + ".partial");
    Files.deleteIfExists(tmpImage);
    long content = sizeOf(stage);
    // made with room to spare, then shrunk to its minimum (resize2fs -M truncates the file): 4 KiB
    // blocks, no journal, no reserved group descriptors, 64 inodes; about 60 KiB of metadata
    long kib = (content + content / 33) / 1024 + 768;
    Tools.run(
        List.of(
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-O",
            "^has_journal,^resize_inode",
            "-m",
            "0",
            "-N",
            "64",
            "-L",
            "osfarm-boot",
            "-E",
            "root_owner=0:0",
            "-d",
            stage.toString(),
            tmpImage.toString(),
            kib + "k"),
        null,
        null);
    Tools.run(List.of("resize2fs", "-M", tmpImage.toString()), null, null);
    Tools.run(List.of("e2fsck", "-fn", tmpImage.toString()), null, null);
    Files.move(tmpImage, r.output(), StandardCopyOption.REPLACE_EXISTING);
    return new Result(
        r.output(),
        Files.size(r.output()),
        k.version,
        Files.size(vmlinuz),
        Files.size(initrd),
        rawBytes,
        parts,
        javaModules,
        kernelModules);
  }

  /** The kernel command line of the image: serial console, and the defaults. */
  static String cmdline(String url, String ref) {
    StringBuilder sb = new StringBuilder("console=ttyS0 panic=-1 quiet");
    if (url != null && !url.isBlank()) {
      sb.append(" osfarm.url=").append(url);
    }
    if (ref != null && !ref.isBlank()) {
      sb.append(" osfarm.ref=").append(ref);
    }
    return sb.toString();
  }

  private static void compress(Path cpio, Path to, Compression c) throws IOException {
    switch (c) {
      // the kernel's xz decoder checks CRC32 only; BCJ for x86 helps the programs and libraries
      case XZ ->
          Tools.run(
              List.of(
                  "xz", "-c", "-T1", "--check=crc32", "--x86", "--lzma2=preset=9", cpio.toString()),
              to,
              null);
      case ZSTD -> Tools.run(List.of("zstd", "-q", "-c", "-19", cpio.toString()), to, null);
      case NONE -> Files.copy(cpio, to);
    }
  }

  static String shellQuote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  private static void writeResource(String name, Path to, String perms) throws IOException {
    try (InputStream in = BootImage.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IOException("resource " + name + " is missing from the build");
      }
      Files.createDirectories(to.getParent());
      Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
    }
    Files.setPosixFilePermissions(to, PosixFilePermissions.fromString(perms));
  }

  static void copyExec(Path from, Path to) throws IOException {
    copyFile(from, to);
    Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  static void copyFile(Path from, Path to) throws IOException {
    Files.createDirectories(to.getParent());
    Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
  }

  static long sizeOf(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      long n = 0;
      for (Path p : (Iterable<Path>) s::iterator) {
        if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          n += Files.size(p);
        }
      }
      return n;
    }
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
