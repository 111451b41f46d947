package org.osfarm.core;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Named pointers to snapshots, changed only by compare-and-swap, every change appended to a reflog.
 *
 * <p>Layout: {@code refs/<name>} holds the snapshot id in hex; {@code logs/<name>} one line per
 * change: {@code old new epoch-millis message} ({@code -} for "none"). An update takes {@code
 * refs.lock} (an fcntl lock: a killed updater never leaves it held), compares, writes the new value
 * to a temp file, fsyncs, renames it over the ref, then appends and fsyncs the reflog. A deleted
 * ref keeps its reflog, so its snapshots stay reachable for gc until the log is expired.
 */
public final class RefDatabase {
  private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9_+@=-][A-Za-z0-9._+@=-]*");
  private static final ReentrantLock IN_PROCESS = new ReentrantLock();

  private final Path refsDir;
  private final Path logsDir;
  private final Path lockFile;

  RefDatabase(Path root) {
    this.refsDir = root.resolve("refs");
    this.logsDir = root.resolve("logs");
    this.lockFile = root.resolve("refs.lock");
    try {
      Files.createDirectories(refsDir);
      Files.createDirectories(logsDir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Checks a ref name: segments separated by '/', each of letters, digits and {@code ._+@=-}, not
   * starting with '.', not ending in {@code .lock} or {@code .tmp}.
   *
   * @throws IllegalArgumentException with the reason
   */
  public static void validateName(String name) {
    if (name == null || name.isEmpty() || name.length() > 1024) {
      throw new IllegalArgumentException("invalid ref name: empty or too long");
    }
    for (String seg : name.split("/", -1)) {
      if (!SEGMENT.matcher(seg).matches() || seg.endsWith(".lock") || seg.endsWith(".tmp")) {
        throw new IllegalArgumentException(
            "invalid ref name '"
                + name
                + "': use '/'-separated segments of letters, digits and ._+@=- not starting with '.'");
      }
    }
  }

  /**
   * The snapshot a ref of the repository at {@code root} points to, read without opening the
   * repository (no object store is loaded, nothing is created): for cheap read-only checks such as
   * the build's request cache. Empty if the ref or the repository does not exist.
   */
  public static Optional<Digest> peek(Path root, String name) {
    validateName(name);
    if (!Files.isRegularFile(root.resolve(Repository.CONF))) {
      return Optional.empty();
    }
    Path f = root.resolve("refs").resolve(name);
    try {
      return Optional.of(parseId(Files.readString(f, StandardCharsets.US_ASCII).trim(), f));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (IOException e) {
      return Optional.empty(); // a directory (a prefix of other refs) or unreadable: not a ref
    }
  }

  /** The snapshot a ref points to, if the ref exists. */
  public Optional<Digest> get(String name) {
    validateName(name);
    Path f = refsDir.resolve(name);
    try {
      String s = Files.readString(f, StandardCharsets.US_ASCII).trim();
      return Optional.of(parseId(s, f));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (IOException e) {
      if (Files.isDirectory(f)) {
        return Optional.empty();
      }
      throw new UncheckedIOException("cannot read ref " + name, e);
    }
  }

  private static Digest parseId(String s, Path f) {
    if (!Digest.isHex(s)) {
      throw new CorruptObjectException("ref file " + f + " does not hold a snapshot id");
    }
    return Digest.fromHex(s);
  }

  /** All refs, sorted by name. */
  public TreeMap<String, Digest> list() {
    TreeMap<String, Digest> out = new TreeMap<>();
    try {
      for (Path p : files(refsDir)) {
        if (p.getFileName().toString().endsWith(".tmp")) {
          continue;
        }
        try {
          String name = refsDir.relativize(p).toString();
          out.put(name, parseId(Files.readString(p, StandardCharsets.US_ASCII).trim(), p));
        } catch (NoSuchFileException deleted) {
          // deleted since it was listed
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list refs", e);
    }
    return out;
  }

  /** Names of every ref that has a reflog (including deleted ones). */
  public List<String> logNames() {
    List<String> out = new ArrayList<>();
    try {
      for (Path p : files(logsDir)) {
        out.add(logsDir.relativize(p).toString());
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list reflogs", e);
    }
    return out;
  }

  /**
   * Regular files under {@code dir}, never following symlinks. Refs and reflogs change while this
   * runs (other threads and processes do not take {@code refs.lock} to read): files and directories
   * that vanish meanwhile are skipped rather than failing the listing.
   */
  private static List<Path> files(Path dir) throws IOException {
    List<Path> out = new ArrayList<>();
    try (java.nio.file.DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        java.nio.file.attribute.BasicFileAttributes a;
        try {
          a =
              Files.readAttributes(
                  p,
                  java.nio.file.attribute.BasicFileAttributes.class,
                  java.nio.file.LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException gone) {
          continue;
        }
        if (a.isDirectory()) {
          out.addAll(files(p));
        } else if (a.isRegularFile()) {
          out.add(p);
        }
      }
    } catch (NoSuchFileException gone) {
      // an emptied directory pruned meanwhile
    }
    return out;
  }

  /** The reflog of {@code name}, oldest first (empty if it has none). */
  public List<ReflogEntry> log(String name) {
    validateName(name);
    Path f = logsDir.resolve(name);
    List<ReflogEntry> out = new ArrayList<>();
    if (!Files.isRegularFile(f)) {
      return out;
    }
    try {
      for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
        String[] p = line.split(" ", 4);
        if (p.length < 3) {
          continue; // a torn last line from a crash: ignore it
        }
        try {
          out.add(
              new ReflogEntry(
                  p[0].equals("-") ? null : Digest.fromHex(p[0]),
                  p[1].equals("-") ? null : Digest.fromHex(p[1]),
                  Instant.ofEpochMilli(Long.parseLong(p[2])),
                  p.length > 3 ? p[3] : ""));
        } catch (IllegalArgumentException torn) {
          // a torn line: skip
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read reflog of " + name, e);
    }
    return out;
  }

  /**
   * Sets {@code name} to {@code newId} if it currently is {@code expected} (null: must not exist).
   * A null {@code newId} deletes the ref.
   */
  public RefUpdate compareAndSet(String name, Digest expected, Digest newId, String message) {
    validateName(name);
    IN_PROCESS.lock();
    try (FileChannel ch =
            FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock ignored = ch.lock()) {
      Optional<Digest> current = get(name);
      if (!java.util.Objects.equals(current.orElse(null), expected)) {
        return RefUpdate.REJECTED_CHANGED;
      }
      if (java.util.Objects.equals(expected, newId)) {
        return RefUpdate.NO_CHANGE;
      }
      Path f = refsDir.resolve(name);
      if (newId == null) {
        Files.delete(f);
        pruneEmptyDirs(f.getParent(), refsDir);
      } else {
        Files.createDirectories(f.getParent());
        if (Files.isDirectory(f)) {
          throw new IllegalArgumentException("ref '" + name + "' is a prefix of other refs");
        }
        Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
        try (FileChannel out =
            FileChannel.open(
                tmp,
                StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
          out.write(
              java.nio.ByteBuffer.wrap((newId.hex() + "\n").getBytes(StandardCharsets.US_ASCII)));
          out.force(true);
        }
        Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        FileSync.fsync(f.getParent());
      }
      appendLog(name, expected, newId, message);
      if (newId == null) {
        return RefUpdate.DELETED;
      }
      return expected == null ? RefUpdate.CREATED : RefUpdate.UPDATED;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot update ref " + name, e);
    } finally {
      IN_PROCESS.unlock();
    }
  }

  private void appendLog(String name, Digest oldId, Digest newId, String message)
      throws IOException {
    Path f = logsDir.resolve(name);
    Files.createDirectories(f.getParent());
    String msg = message == null ? "" : message.replace('\n', ' ').replace('\r', ' ');
    String line =
        (oldId == null ? "-" : oldId.hex())
            + " "
            + (newId == null ? "-" : newId.hex())
            + " "
            + System.currentTimeMillis()
            + " "
            + msg
            + "\n";
    try (FileChannel out =
        FileChannel.open(
            f, StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE)) {
      out.write(java.nio.ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
      out.force(true);
    }
  }

  /**
   * Drops reflogs of deleted refs, and reflog entries older than {@code before}, keeping current
   * values.
   */
  public int expireLogs(Instant before) {
    int dropped = 0;
    IN_PROCESS.lock();
    try (FileChannel ch =
            FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock ignored = ch.lock()) {
      for (String name : logNames()) {
        Optional<Digest> current = get(name);
        List<ReflogEntry> entries = log(name);
        List<ReflogEntry> keep = new ArrayList<>();
        for (ReflogEntry e : entries) {
          boolean recent = !e.time().isBefore(before);
          if (recent || (current.isPresent() && current.get().equals(e.newId()))) {
            keep.add(e);
          }
        }
        dropped += entries.size() - keep.size();
        Path f = logsDir.resolve(name);
        if (keep.isEmpty()) {
          Files.deleteIfExists(f);
          pruneEmptyDirs(f.getParent(), logsDir);
          continue;
        }
        if (keep.size() != entries.size()) {
          StringBuilder sb = new StringBuilder();
          for (ReflogEntry e : keep) {
            sb.append(e.oldId() == null ? "-" : e.oldId().hex())
                .append(' ')
                .append(e.newId() == null ? "-" : e.newId().hex())
                .append(' ')
                .append(e.time().toEpochMilli())
                .append(' ')
                .append(e.message())
                .append('\n');
          }
          Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
          Files.writeString(tmp, sb, StandardCharsets.UTF_8);
          try (FileChannel c = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            c.force(true);
          }
          Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot expire reflogs", e);
    } finally {
      IN_PROCESS.unlock();
    }
    return dropped;
  }

  private static void pruneEmptyDirs(Path dir, Path stop) throws IOException {
    while (dir != null && !dir.equals(stop)) {
      try (Stream<Path> s = Files.list(dir)) {
        if (s.findAny().isPresent()) {
          return;
        }
      }
      Files.delete(dir);
      dir = dir.getParent();
    }
  }
}
