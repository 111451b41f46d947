package org.osfarm.mount.rebase;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.stream.Stream;
import org.osfarm.core.Digest;
import org.osfarm.core.InvalidInputException;
import org.osfarm.mount.MountTable;

/**
 * The on-disk layout of a writable mount's scratch directory (see the mount contract): {@code
 * upper/} and {@code work/} for overlayfs, {@code lower/} where the read-only view is mounted,
 * {@code osfarm-scratch.properties} with {@code base}, {@code source} and {@code ref}, and the
 * {@code rebase-backup-<time>/} directories a rebase leaves behind.
 */
final class ScratchDir {
  static final String PROPERTIES = "osfarm-scratch.properties";
  static final String BACKUP_PREFIX = "rebase-backup-";

  private final Path dir;
  private final Properties props;

  private ScratchDir(Path dir, Properties props) {
    this.dir = dir;
    this.props = props;
  }

  /**
   * Opens a scratch directory.
   *
   * @throws InvalidInputException if it has no upper directory or no valid properties file
   */
  static ScratchDir open(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    if (!Files.isDirectory(abs.resolve("upper"), LinkOption.NOFOLLOW_LINKS)) {
      throw new InvalidInputException(
          dir + " is not a scratch directory (no upper/ directory; see 'osfarm mount --writable')");
    }
    Path file = abs.resolve(PROPERTIES);
    if (!Files.isRegularFile(file)) {
      throw new InvalidInputException(
          dir
              + " has no "
              + PROPERTIES
              + ": cannot tell which snapshot its changes were made over");
    }
    Properties p = new Properties();
    p.load(new StringReader(Files.readString(file, StandardCharsets.UTF_8)));
    String base = p.getProperty("base", "");
    if (!Digest.isHex(base)) {
      throw new InvalidInputException(
          file + ": 'base' must be a snapshot id (64 hex digits), not '" + base + "'");
    }
    return new ScratchDir(abs, p);
  }

  Path dir() {
    return dir;
  }

  Path upper() {
    return dir.resolve("upper");
  }

  Digest base() {
    return Digest.fromHex(props.getProperty("base"));
  }

  /** The {@code source} property: a repository directory or an osfarm URL (may be null). */
  String source() {
    return props.getProperty("source");
  }

  /**
   * Refuses while anything is mounted on or under the scratch directory, or an overlay uses its
   * upper directory (the kernel owns the upper directory while the overlay is mounted).
   */
  void checkNotMounted() throws IOException {
    checkNotMounted(MountTable.read());
  }

  void checkNotMounted(List<MountTable.Mount> mounts) {
    String real = dir.toString();
    try {
      real = dir.toRealPath().toString();
    } catch (IOException e) {
      // keep the absolute path
    }
    for (MountTable.Mount m : mounts) {
      String mountPoint = m.mountpoint().toString();
      if (mountPoint.equals(real) || mountPoint.startsWith(real + "/")) {
        throw new InvalidInputException(
            dir + " is in use: " + mountPoint + " is mounted; unmount it first ('osfarm umount')");
      }
      String upper = m.option("upperdir");
      if (upper != null && (upper.equals(real + "/upper") || upper.equals(dir + "/upper"))) {
        throw new InvalidInputException(
            dir
                + " is in use: the overlay on "
                + mountPoint
                + " uses its upper directory; unmount it first ('osfarm umount')");
      }
    }
  }

  /** Backup directories whose journal does not say the rebase finished or was rolled back. */
  List<Path> unfinished() throws IOException {
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.sorted().toList()) {
        if (p.getFileName().toString().startsWith(BACKUP_PREFIX)
            && Files.isRegularFile(p.resolve(Journal.FILE))
            && !Journal.finished(p.resolve(Journal.FILE))) {
          out.add(p);
        }
      }
    }
    return out;
  }

  /**
   * Rewrites the properties with {@code base=id}: a temporary file, fsynced, renamed over the old
   * one, so a crash leaves either the old or the new file.
   */
  void writeBase(Digest id) throws IOException {
    props.setProperty("base", id.hex());
    StringWriter w = new StringWriter();
    for (String k : props.stringPropertyNames().stream().sorted().toList()) {
      w.write(k + "=" + props.getProperty(k).replace("\\", "\\\\").replace("\n", "\\n") + "\n");
    }
    Path file = dir.resolve(PROPERTIES);
    Path tmp = dir.resolve("." + PROPERTIES + ".tmp");
    Files.writeString(tmp, w.toString(), StandardCharsets.UTF_8);
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    fsyncDir(dir);
  }

  static void fsyncDir(Path d) throws IOException {
    try (FileChannel ch = FileChannel.open(d, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }
}
