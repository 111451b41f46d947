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
 * kernel installed ({@code boot/vmlinuz-VERSION} and {@code [usr/]lib/modules/VERSION}).
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
