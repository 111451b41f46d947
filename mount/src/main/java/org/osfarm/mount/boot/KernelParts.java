package org.osfarm.mount.boot;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.Repository;

/**
 * The kernel and the few modules the boot image needs, taken from a snapshot that has a Debian
 * kernel installed ({@code boot/vmlinuz-VERSION} and {@code [usr/]lib/modules/VERSION}), or a
 * kernel file with everything built in (no modules; {@link #fromFile}).
 *
 * <p>Dependencies are read from each module's own {@code .modinfo} section ({@code depends=}), so
 * the snapshot needs no {@code modules.dep} (an extracted, never configured kernel package works
 * too). Modules the kernel has built in ({@code modules.builtin}) are skipped. The result lists
 * module files in load order: every module after the modules it depends on.
 */
final class KernelParts {
  /** What the boot image's init needs, beyond what Debian's kernel has built in. */
  static final List<String> NEEDED =
      List.of(
          "virtio_pci",
          "virtio_blk",
          "virtio_net",
          // ext4 and jbd2 ask the crypto API for crc32c; loaded up front because the initramfs
          // has no modprobe for the kernel to call
          "crc32c_generic",
          "ext4",
          "fuse",
          "overlay");

  final String version;
  final Path vmlinuz;

  /** Module files in load order. */
  final List<Path> modules;

  private KernelParts(String version, Path vmlinuz, List<Path> modules) {
    this.version = version;
    this.vmlinuz = vmlinuz;
    this.modules = modules;
  }

  /**
   * Copies the kernel and the modules {@code wanted} (with their dependencies) from {@code
   * snapshot} into {@code dir}.
   *
   * @throws BootImageException if the snapshot has no kernel or lacks a module
   */
  static KernelParts extract(Repository repo, Digest snapshot, List<String> wanted, Path dir)
      throws IOException {
    Files.createDirectories(dir);
    Entry boot;
    try {
      boot = repo.lookup(snapshot, bytes("boot"));
    } catch (NotFoundException e) {
      throw noKernel(snapshot);
    }
    String version = null;
    if (boot.type() == EntryType.DIR) {
      for (Entry e : repo.readTree(boot.content())) {
        String n = e.nameString();
        if (n.startsWith("vmlinuz-") && e.type() == EntryType.FILE) {
          String v = n.substring("vmlinuz-".length());
          if (version == null || v.compareTo(version) > 0) {
            version = v; // the newest when several are installed
          }
        }
      }
    }
    if (version == null) {
      throw noKernel(snapshot);
    }
    Path vmlinuz = dir.resolve("vmlinuz");
    copy(repo, repo.lookupFile(snapshot, bytes("boot/vmlinuz-" + version)), vmlinuz);

    Entry modulesDir = null;
    String modulesPath = null;
    for (String p : List.of("usr/lib/modules/" + version, "lib/modules/" + version)) {
      try {
        Entry e = repo.lookup(snapshot, bytes(p));
        if (e.type() == EntryType.DIR) {
          modulesDir = e;
          modulesPath = p;
          break;
        }
      } catch (NotFoundException e) {
        // the other layout (merged /usr or not)
      }
    }
    if (modulesDir == null) {
      throw new BootImageException(
          "the snapshot has boot/vmlinuz-" + version + " but no lib/modules/" + version);
    }
    Set<String> builtin = new HashSet<>();
    Map<String, Entry> byName = new HashMap<>();
    for (Entry e : repo.readTree(modulesDir.content())) {
      if (e.nameString().equals("modules.builtin") && e.type() == EntryType.FILE) {
        try (InputStream in = repo.openContent(e)) {
          for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
            if (!line.isBlank()) {
              builtin.add(moduleName(line.substring(line.lastIndexOf('/') + 1)));
            }
          }
        }
      } else if (e.nameString().equals("kernel") && e.type() == EntryType.DIR) {
        index(repo, e, byName);
      }
    }
    // resolve dependencies depth first: a module is added after everything it depends on
    LinkedHashSet<String> order = new LinkedHashSet<>();
    Map<String, Path> files = new HashMap<>();
    for (String w : wanted) {
      visit(repo, moduleName(w), byName, builtin, order, files, dir, new HashSet<>(), version);
    }
    List<Path> modules = new ArrayList<>();
    for (String m : order) {
      modules.add(files.get(m));
    }
    return new KernelParts(version, vmlinuz, modules);
  }

  /**
   * A kernel given as a file: an x86 bzImage with what the boot needs built in (see {@code
   * scripts/tiny-kernel}), so no modules. The file is checked for the Linux boot header and its
   * version string read from it; it is copied into {@code dir}.
   *
   * @throws BootImageException if the file is missing or not a bzImage
   */
  static KernelParts fromFile(Path bzImage, Path dir) throws IOException {
    if (!Files.isRegularFile(bzImage)) {
      throw new BootImageException(
          "no kernel file "
              + bzImage
              + " (build one: scripts/tiny-kernel DIR makes DIR/bzImage, or give a Debian kernel"
              + " with --kernel-from)");
    }
    byte[] head;
    try (InputStream in = Files.newInputStream(bzImage)) {
      head = in.readNBytes(64 * 1024);
    }
    String version = bzImageVersion(head);
    if (version == null) {
      throw new BootImageException(
          bzImage
              + " is not an x86 Linux kernel image (bzImage): it lacks the boot header (HdrS"
              + " at 0x202); give arch/x86/boot/bzImage or a vmlinuz, not vmlinux or a"
              + " compressed archive");
    }
    Files.createDirectories(dir);
    Path vmlinuz = dir.resolve("vmlinuz");
    Files.copy(bzImage, vmlinuz, StandardCopyOption.REPLACE_EXISTING);
    return new KernelParts(version, vmlinuz, List.of());
  }

  /**
   * The version of an x86 bzImage from its first bytes (the real-mode header of the Linux boot
   * protocol: boot flag 0xAA55 at 0x1FE, "HdrS" at 0x202, the offset of the version string less
   * 0x200 at 0x20E), or null when the bytes are not a bzImage.
   */
  static String bzImageVersion(byte[] head) {
    if (head.length < 0x210
        || (head[0x1FE] & 0xff) != 0x55
        || (head[0x1FF] & 0xff) != 0xAA
        || head[0x202] != 'H'
        || head[0x203] != 'd'
        || head[0x204] != 'r'
        || head[0x205] != 'S') {
      return null;
    }
    int at = ((head[0x20E] & 0xff) | (head[0x20F] & 0xff) << 8) + 0x200;
    if (at <= 0x200 || at >= head.length) {
      return "unknown";
    }
    int end = at;
    while (end < head.length && head[end] != 0 && head[end] != ' ') {
      end++;
    }
    return end > at ? new String(head, at, end - at, StandardCharsets.US_ASCII) : "unknown";
  }

  private static void visit(
      Repository repo,
      String name,
      Map<String, Entry> byName,
      Set<String> builtin,
      LinkedHashSet<String> order,
      Map<String, Path> files,
      Path dir,
      Set<String> onPath,
      String version)
      throws IOException {
    if (order.contains(name) || builtin.contains(name)) {
      return;
    }
    if (!onPath.add(name)) {
      throw new BootImageException("kernel modules depend on each other in a cycle at " + name);
    }
    Entry e = byName.get(name);
    if (e == null) {
      throw new BootImageException(
          "kernel " + version + " has no module " + name + " and does not have it built in");
    }
    String fileName = e.nameString();
    Path raw = dir.resolve(name + ".ko");
    if (fileName.endsWith(".ko")) {
      copy(repo, e, raw);
    } else {
      Path packed = dir.resolve(fileName);
      copy(repo, e, packed);
      String tool = fileName.endsWith(".xz") ? "xz" : fileName.endsWith(".zst") ? "zstd" : "gzip";
      Tools.run(List.of(tool, "-dc", packed.toString()), raw, null);
      Files.delete(packed);
    }
    for (String dep : depends(Files.readAllBytes(raw))) {
      visit(repo, dep, byName, builtin, order, files, dir, onPath, version);
    }
    onPath.remove(name);
    order.add(name);
    files.put(name, raw);
  }

  /** The {@code depends=} list of a module's {@code .modinfo} section. */
  static List<String> depends(byte[] ko) {
    byte[] key = "\0depends=".getBytes(StandardCharsets.US_ASCII);
    outer:
    for (int i = 0; i + key.length <= ko.length; i++) {
      for (int j = 0; j < key.length; j++) {
        if (ko[i + j] != key[j]) {
          continue outer;
        }
      }
      int start = i + key.length;
      int end = start;
      while (end < ko.length && ko[end] != 0) {
        end++;
      }
      String v = new String(ko, start, end - start, StandardCharsets.US_ASCII);
      List<String> deps = new ArrayList<>();
      for (String d : v.split(",")) {
        if (!d.isBlank()) {
          deps.add(moduleName(d.strip()));
        }
      }
      return deps;
    }
    return List.of();
  }

  private static void index(Repository repo, Entry dir, Map<String, Entry> byName) {
    for (Entry e : repo.readTree(dir.content())) {
      if (e.type() == EntryType.DIR) {
        index(repo, e, byName);
      } else if (e.type() == EntryType.FILE && e.nameString().contains(".ko")) {
        byName.putIfAbsent(moduleName(e.nameString()), e);
      }
    }
  }

  /** A module's name: its file name without {@code .ko[.xz|.zst|.gz]}, dashes as underscores. */
  static String moduleName(String file) {
    int i = file.indexOf(".ko");
    String n = i >= 0 ? file.substring(0, i) : file;
    return n.replace('-', '_');
  }

  private static BootImageException noKernel(Digest snapshot) {
    return new BootImageException(
        "snapshot "
            + snapshot.hex()
            + " has no kernel (boot/vmlinuz-*): take the kernel from an image built with"
            + " a kernel (kernel: true, or linux-image-amd64 installed)");
  }

  private static void copy(Repository repo, Entry e, Path to) throws IOException {
    try (InputStream in = repo.openContent(e)) {
      Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
