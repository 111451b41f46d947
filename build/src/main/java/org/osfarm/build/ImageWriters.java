package org.osfarm.build;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestOutputStream;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import org.osfarm.core.Change;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.tar.TarHeader;
import org.osfarm.core.tar.TarReader;
import org.osfarm.core.tar.TarWriter;

/** Writes a snapshot as a file output: tar*, raw ext4, qcow2, OCI layout. Atomic: temp, rename. */
final class ImageWriters {
  private ImageWriters() {}

  static void write(
      Repository repo,
      BuildPlan plan,
      Digest image,
      OutputFormat f,
      Path target,
      Path workRoot,
      BuildListener l)
      throws IOException {
    Files.createDirectories(workRoot);
    switch (f) {
      case TAR -> repo.export(image, List.of(), ExportFormat.TAR, target, ProgressListener.NONE);
      case TAR_GZ ->
          repo.export(image, List.of(), ExportFormat.TAR_GZ, target, ProgressListener.NONE);
      case TAR_ZST ->
          repo.export(image, List.of(), ExportFormat.TAR_ZST, target, ProgressListener.NONE);
      case RAW -> raw(repo, image, target, workRoot, l);
      case QCOW2 -> {
        Path raw = target.resolveSibling("image.raw");
        if (!Files.exists(raw)) {
          raw(repo, image, raw, workRoot, l);
        }
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
        ImageBuilder.run(
            List.of(
                "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), tmp.toString()));
        Files.move(
            tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      }
      case OCI -> oci(repo, plan, target, workRoot);
      case DIR -> throw new IllegalArgumentException("dir outputs are exported directly");
    }
  }

  /** A UUID made from the snapshot id, so the same snapshot always gives the same file system. */
  static String uuid(Digest id) {
    String h = id.hex();
    return h.substring(0, 8)
        + "-"
        + h.substring(8, 12)
        + "-"
        + h.substring(12, 16)
        + "-"
        + h.substring(16, 20)
        + "-"
        + h.substring(20, 32);
  }

  /**
   * mke2fs's configuration for raw images, instead of the host's {@code /etc/mke2fs.conf}: the
   * feature set of e2fsprogs 1.47.0's ext4 (Debian 12), so hosts with other defaults (say 1.47.1's
   * orphan_file) make the same file system.
   */
  static final String MKE2FS_CONF =
      """
      [defaults]
        base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
        default_mntopts = acl,user_xattr
        enable_periodic_fsck = 0
        blocksize = 4096
        inode_size = 256
        inode_ratio = 16384
      [fs_types]
        ext4 = {
          features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
        }
      """;

  /**
   * A raw ext4 file system of the image, by {@code mke2fs -d} inside a user namespace (the tree is
   * unpacked there, so files are owned by root as mke2fs sees them; no root, no loop device).
   * Device nodes are left out (the kernel's devtmpfs provides /dev).
   *
   * <p>Byte-reproducible: the same snapshot gives the same bytes, here and on another host with the
   * same e2fsprogs. UUID and directory hash seed come from the snapshot id; mke2fs runs with its
   * own configuration ({@link #MKE2FS_CONF}), {@code LC_ALL=C} (it reads each source directory with
   * scandir and alphasort, so the order of inodes follows the names) and {@code
   * E2FSPROGS_FAKE_TIME} at the snapshot's time (superblock, root and lost+found times). mke2fs
   * 1.47.0 copies every inode's atime and ctime from the unpacked tree (the time of unpacking), so
   * a debugfs pass then sets both to the snapshot's time for every path, under the same fake time
   * (the superblock's write time).
   */
  static void raw(Repository repo, Digest image, Path target, Path workRoot, BuildListener l)
      throws IOException {
    Snapshot snap = repo.readSnapshot(image);
    AtomicLong bytes = new AtomicLong();
    AtomicLong entries = new AtomicLong();
    long time = snap.time().getEpochSecond();
    java.io.ByteArrayOutputStream cmds = new java.io.ByteArrayOutputStream();
    byte[] at = (" ctime @" + time + "\n").getBytes(StandardCharsets.UTF_8);
    byte[] aat = (" atime @" + time + "\n").getBytes(StandardCharsets.UTF_8);
    long[] skipped = {0};
    java.util.function.Consumer<byte[]> touch =
        path -> {
          for (byte b : path) {
            if (b == '\n' || b == '\r') {
              skipped[0]++; // debugfs reads one command a line: such a name keeps its times
              return;
            }
          }
          for (byte[] field : new byte[][] {at, aat}) {
            cmds.writeBytes("sif \"".getBytes(StandardCharsets.UTF_8));
            for (byte b : path) {
              if (b == '"') {
                cmds.write('"'); // a doubled quote is a quote inside a quoted argument
              }
              cmds.write(b);
            }
            cmds.write('"');
            cmds.writeBytes(field);
          }
        };
    touch.accept("/".getBytes(StandardCharsets.UTF_8));
    repo.walk(
        image,
        (p, e) -> {
          entries.incrementAndGet();
          if (e.type() == EntryType.FILE) {
            bytes.addAndGet((e.size() + 4095) / 4096 * 4096);
          }
          boolean inDev = p.length > 4 && p[0] == 'd' && p[1] == 'e' && p[2] == 'v' && p[3] == '/';
          if (!inDev) {
            byte[] abs = new byte[p.length + 1];
            abs[0] = '/';
            System.arraycopy(p, 0, abs, 1, p.length);
            touch.accept(abs);
          }
        });
    long size = (long) ((bytes.get() + entries.get() * 512L) * 1.25) + (96L << 20);
    size = (size + (1 << 20) - 1) >> 20 << 20;
    Path work = Files.createTempDirectory(workRoot, "raw-");
    try {
      Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
      Userns.own(work);
      Path tar = work.resolve("image.tar");
      repo.export(image, List.of(), ExportFormat.TAR, tar, ProgressListener.NONE);
      Files.setPosixFilePermissions(tar, PosixFilePermissions.fromString("rw-r--r--"));
      Path conf = work.resolve("mke2fs.conf");
      Files.writeString(conf, MKE2FS_CONF);
      Path script = work.resolve("times.debugfs");
      Files.write(script, cmds.toByteArray());
      for (Path f : List.of(conf, script)) {
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
      }
      String uuid = uuid(image);
      String sh =
          "set -e; W=\"$1\"; export LC_ALL=C E2FSPROGS_FAKE_TIME="
              + time
              + " MKE2FS_CONFIG=\"$W/mke2fs.conf\"; mkdir \"$W/root\";"
              + " mmtarfilter --path-exclude='/dev/*' < \"$W/image.tar\""
              + " | tar -C \"$W/root\" --numeric-owner --xattrs --xattrs-include='*' -xp;"
              + " rm -f \"$W/image.tar\";"
              + " mke2fs -q -F -t ext4 -b 4096 -L root -U "
              + uuid
              + " -E hash_seed="
              + uuid
              + ",root_owner=0:0,nodiscard -d \"$W/root\" \"$W/image.raw\" "
              + (size >> 10)
              + "k; rm -rf \"$W/root\";"
              + " debugfs -w -f \"$W/times.debugfs\" \"$W/image.raw\" > /dev/null 2> \"$W/debugfs.err\";"
              + " if grep -v '^debugfs [0-9]' \"$W/debugfs.err\" | grep -q .; then"
              + " head -5 \"$W/debugfs.err\" >&2; exit 1; fi";
      l.step("output raw: mke2fs -d, " + (size >> 20) + " MiB");
      ImageBuilder.run(Userns.run(List.of("sh", "-c", sh, "sh", work.toString())));
      if (skipped[0] > 0) {
        l.log(skipped[0] + " path(s) with a newline in their name keep their unpacking times");
      }
      Path out = work.resolve("image.raw");
      Userns.reclaim(out);
      Files.move(out, target, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      ImageBuilder.deleteTree(work);
    }
  }

  // ---------------------------------------------------------------- OCI

  private static final String LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

  /** An OCI image layout with one layer per osfarm layer (a diff against its parent). */
  static void oci(Repository repo, BuildPlan plan, Path target, Path workRoot) throws IOException {
    List<Digest> snaps = new ArrayList<>();
    List<String> labels = new ArrayList<>();
    for (PlannedLayer pl : plan.layers()) {
      snaps.add(
          repo.refs()
              .get(pl.ref())
              .orElseThrow(() -> new BuildException("layer " + pl.ref() + " is missing")));
      labels.add(pl.kind().label() + " " + pl.key().hex());
    }
    oci(repo, snaps, labels, plan.arch(), target, workRoot);
  }

  /**
   * An OCI image layout at {@code target} with one layer per snapshot of {@code snaps} (each a diff
   * against the one before), labelled by {@code labels}.
   */
  static void oci(
      Repository repo,
      List<Digest> snaps,
      List<String> labels,
      String arch,
      Path target,
      Path workRoot)
      throws IOException {
    Path tmp = Files.createTempDirectory(target.getParent(), ".oci-");
    Path blobs = tmp.resolve("blobs/sha256");
    Files.createDirectories(blobs);
    List<Map<String, Object>> layers = new ArrayList<>();
    List<String> diffIds = new ArrayList<>();
    List<Map<String, Object>> history = new ArrayList<>();
    Digest parent = null;
    for (int i = 0; i < snaps.size(); i++) {
      Digest snap = snaps.get(i);
      String label = labels.get(i);
      Path blob = blobs.resolve("layer.tmp");
      java.security.MessageDigest gzSha = Digest.newMessageDigest();
      java.security.MessageDigest tarSha = Digest.newMessageDigest();
      long size;
      try (OutputStream file = Files.newOutputStream(blob);
          DigestOutputStream gzOut =
              new DigestOutputStream(new BufferedOutputStream(file, 1 << 20), gzSha);
          GZIPOutputStream gz = new FastGzip(gzOut);
          DigestOutputStream tarOut = new DigestOutputStream(gz, tarSha)) {
        layerTar(repo, parent, snap, tarOut, workRoot);
        tarOut.flush();
        gz.finish();
        gzOut.flush();
      }
      size = Files.size(blob);
      String gzHex = hex(gzSha.digest());
      Files.move(blob, blobs.resolve(gzHex), StandardCopyOption.REPLACE_EXISTING);
      Map<String, Object> d = new LinkedHashMap<>();
      d.put("mediaType", LAYER_TYPE);
      d.put("digest", "sha256:" + gzHex);
      d.put("size", size);
      d.put("annotations", Map.of("org.osfarm.layer", label));
      layers.add(d);
      diffIds.add("sha256:" + hex(tarSha.digest()));
      history.add(Map.of("created_by", "osfarm " + label.replaceFirst(" ", " layer ")));
      parent = snap;
    }
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("architecture", arch.equals("i386") ? "386" : arch);
    config.put("os", "linux");
    config.put("config", Map.of("Cmd", List.of("/bin/bash")));
    config.put("rootfs", Map.of("type", "layers", "diff_ids", diffIds));
    config.put("history", history);
    Map<String, Object> cfgDesc = blob(blobs, "application/vnd.oci.image.config.v1+json", config);
    Map<String, Object> manifest = new LinkedHashMap<>();
    manifest.put("schemaVersion", 2);
    manifest.put("mediaType", "application/vnd.oci.image.manifest.v1+json");
    manifest.put("config", cfgDesc);
    manifest.put("layers", layers);
    Map<String, Object> mDesc = blob(blobs, "application/vnd.oci.image.manifest.v1+json", manifest);
    mDesc.put("annotations", Map.of("org.opencontainers.image.ref.name", "latest"));
    Map<String, Object> index = new LinkedHashMap<>();
    index.put("schemaVersion", 2);
    index.put("mediaType", "application/vnd.oci.image.index.v1+json");
    index.put("manifests", List.of(mDesc));
    Files.writeString(tmp.resolve("index.json"), Canonical.JSON.writeValueAsString(index));
    Files.writeString(tmp.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
  }

  private static Map<String, Object> blob(Path blobs, String type, Object json) throws IOException {
    byte[] b = Canonical.JSON.writeValueAsBytes(json);
    String hex = Digest.of(b).hex();
    Files.write(blobs.resolve(hex), b);
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("mediaType", type);
    d.put("digest", "sha256:" + hex);
    d.put("size", b.length);
    return d;
  }

  /** The changes from {@code parent} to {@code snap} as a tar, deletions as OCI whiteouts. */
  private static void layerTar(
      Repository repo, Digest parent, Digest snap, OutputStream out, Path workRoot)
      throws IOException {
    List<byte[]> paths = new ArrayList<>();
    List<byte[]> deleted = new ArrayList<>();
    if (parent == null) {
      repo.exportTar(snap, List.of(), ExportFormat.TAR, nonClosing(out), ProgressListener.NONE);
      return;
    }
    Set<String> added = new HashSet<>();
    Set<String> gone = new HashSet<>();
    for (Change c : repo.diff(parent, snap)) {
      String p = new String(c.path(), StandardCharsets.ISO_8859_1);
      if (c.kind() == 'D') {
        if (!underAny(p, gone)) {
          deleted.add(c.path());
        }
        gone.add(p);
        continue;
      }
      Entry e = repo.lookup(snap, c.path());
      if (c.kind() == 'M' && e != null && e.type() == EntryType.DIR) {
        continue; // its changed children carry it; a whole subtree would duplicate the parent
      }
      if (!underAny(p, added)) {
        paths.add(c.path());
      }
      if (e != null && e.type() == EntryType.DIR) {
        added.add(p);
      }
    }
    TarWriter w = new TarWriter(nonClosing(out));
    if (!paths.isEmpty()) {
      Path t = Files.createTempFile(workRoot, "layer", ".tar");
      try {
        try (OutputStream o = Files.newOutputStream(t)) {
          repo.exportTar(snap, paths, ExportFormat.TAR, nonClosing(o), ProgressListener.NONE);
        }
        try (InputStream in = Files.newInputStream(t)) {
          TarReader r = new TarReader(in);
          for (TarHeader h; (h = r.next()) != null; ) {
            w.putHeader(h);
            if (h.typeflag() == '0' && h.size() > 0) {
              w.copy(r.content());
            }
          }
        }
      } finally {
        Files.deleteIfExists(t);
      }
    }
    for (byte[] d : deleted) {
      String p = new String(d, StandardCharsets.ISO_8859_1);
      int slash = p.lastIndexOf('/');
      String wh = (slash < 0 ? "" : p.substring(0, slash + 1)) + ".wh." + p.substring(slash + 1);
      w.putHeader(
          new TarHeader(
              wh.getBytes(StandardCharsets.ISO_8859_1),
              (byte) '0',
              0644,
              0,
              0,
              new byte[0],
              new byte[0],
              0,
              0,
              0,
              new byte[0],
              0,
              0,
              List.of(),
              List.of()));
    }
    w.finish();
  }

  private static boolean underAny(String p, Set<String> dirs) {
    for (int i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
      if (dirs.contains(p.substring(0, i))) {
        return true;
      }
    }
    return false;
  }

  private static OutputStream nonClosing(OutputStream out) {
    return new java.io.FilterOutputStream(out) {
      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
      }

      @Override
      public void close() throws IOException {
        out.flush();
      }
    };
  }

  private static String hex(byte[] b) {
    return java.util.HexFormat.of().formatHex(b);
  }

  /** gzip at the fastest level: layer blobs are written once per image and read by registries. */
  private static final class FastGzip extends GZIPOutputStream {
    FastGzip(OutputStream out) throws IOException {
      super(out, 1 << 16);
      def.setLevel(Deflater.BEST_SPEED);
    }
  }
}
