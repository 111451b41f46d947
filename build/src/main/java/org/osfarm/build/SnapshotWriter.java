package org.osfarm.build;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;

/**
 * Writes any snapshot of a repository as one file in an output format, for callers that have a
 * snapshot rather than a build (the service's downloads, {@code osfarm export}).
 *
 * <p>Formats: the tar family as core exports them; {@code raw} (ext4 by {@code mke2fs -d}, as a
 * build writes it); {@code qcow2} (that raw image converted by {@code qemu-img}); {@code oci} as a
 * tar of an OCI image layout ({@code skopeo inspect oci-archive:FILE}), with one layer per osfarm
 * layer when the snapshot was built (following {@code build.layer.parent}), else one layer. The
 * target is written through a temporary file next to it and renamed, so it either appears whole or
 * not at all. Thread-safe for distinct targets; may take minutes for large images.
 */
public final class SnapshotWriter {
  private SnapshotWriter() {}

  /**
   * Writes {@code snapshot} to the file {@code target} in {@code format}.
   *
   * @param workDir scratch space on the same file system as {@code target} (created if missing)
   * @throws IllegalArgumentException for {@link OutputFormat#DIR}
   * @throws BuildException when a program (mke2fs, qemu-img, tar) is missing or fails
   */
  public static void write(
      Repository repo,
      Digest snapshot,
      OutputFormat format,
      Path target,
      Path workDir,
      BuildListener l)
      throws IOException {
    Files.createDirectories(workDir);
    if (format == OutputFormat.RAW || format == OutputFormat.QCOW2) {
      ImageBuilder.checkReachable(workDir); // mke2fs runs in the build's user namespace
    }
    Path tmp = Files.createTempFile(target.toAbsolutePath().getParent(), ".write-", ".part");
    try {
      switch (format) {
        case TAR, TAR_GZ, TAR_ZST ->
            repo.export(
                snapshot,
                List.of(),
                ExportFormat.parse(format.label()),
                tmp,
                ProgressListener.NONE);
        case RAW -> ImageWriters.raw(repo, snapshot, tmp, workDir, l);
        case QCOW2 -> {
          Path raw = Files.createTempFile(workDir, "qcow2-", ".raw");
          try {
            ImageWriters.raw(repo, snapshot, raw, workDir, l);
            l.step("output qcow2: qemu-img convert");
            ImageBuilder.run(
                List.of(
                    "qemu-img",
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "qcow2",
                    raw.toString(),
                    tmp.toString()));
          } finally {
            Files.deleteIfExists(raw);
          }
        }
        case OCI -> ociArchive(repo, snapshot, tmp, workDir, l);
        case DIR ->
            throw new IllegalArgumentException("dir is not a file format; export it instead");
      }
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** The layer parent named in a snapshot's metadata if this repository holds it, else null. */
  private static Digest presentParent(Repository repo, String hex) {
    if (hex == null) {
      return null;
    }
    try {
      Digest d = Digest.fromHex(hex);
      repo.readSnapshot(d);
      return d;
    } catch (RuntimeException e) { // not a digest, or not here (a pulled image without layers)
      return null;
    }
  }

  private static void ociArchive(
      Repository repo, Digest snapshot, Path target, Path workDir, BuildListener l)
      throws IOException {
    List<Digest> snaps = new ArrayList<>();
    List<String> labels = new ArrayList<>();
    Set<Digest> seen = new HashSet<>();
    String arch = null;
    for (Digest d = snapshot; d != null && seen.add(d); ) {
      Snapshot s = repo.readSnapshot(d);
      Map<String, String> m = s.metadata();
      snaps.add(d);
      String kind = m.get("build.layer.kind");
      labels.add(
          kind != null ? kind + " " + m.getOrDefault("build.layer.key", d.hex()) : "snapshot " + d);
      if (arch == null) {
        arch = m.get("build.arch");
      }
      d = presentParent(repo, m.get("build.layer.parent"));
    }
    Collections.reverse(snaps);
    Collections.reverse(labels);
    Path dir = Files.createTempDirectory(workDir, "oci-");
    try {
      Path layout = dir.resolve("layout");
      l.step("output oci: " + snaps.size() + " layer(s)");
      ImageWriters.oci(repo, snaps, labels, arch != null ? arch : "amd64", layout, workDir);
      ImageBuilder.run(
          List.of(
              "tar",
              "--sort=name",
              "--owner=0",
              "--group=0",
              "--numeric-owner",
              "--mtime=@0",
              "-C",
              layout.toString(),
              "-cf",
              target.toString(),
              "."));
    } finally {
      ImageBuilder.deleteTree(dir);
    }
  }
}
