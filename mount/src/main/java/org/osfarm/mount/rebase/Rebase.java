package org.osfarm.mount.rebase;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.osfarm.core.Change;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.InvalidInputException;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.Repository;
import org.osfarm.core.posix.Posix;

/**
 * Moves the local changes of a writable mount (an overlayfs upper directory) from the snapshot they
 * were made over onto a newer one.
 *
 * <p>Algorithm: diff BASE against ONTO in the repository (O(changes): shared subtrees are skipped);
 * walk the upper directory; every local change (a file, symlink, device, whiteout or opaque
 * directory) at a path upstream did not touch is kept as it is. Where both sides touched a path:
 * under {@code /etc} and {@code /var} the local change wins and stays; elsewhere upstream wins and
 * the local entry leaves the upper directory (so the overlay shows ONTO's version). The account
 * files {@code /etc/passwd}, {@code group}, {@code shadow}, {@code gshadow}, {@code subuid}, {@code
 * subgid} are merged record by record ({@link AccountMerge}); local users and groups whose id
 * changed are re-owned in the upper directory (owner, then the mode again because chown clears
 * setuid, file capabilities and ACL entries naming the id). Two sides that made the same change are
 * no conflict.
 *
 * <p>Safety: the whole plan is made before anything is touched ({@code dryRun} stops there). Then
 * every step is journaled and fsynced before it runs ({@link Journal}); nothing is deleted: what
 * leaves the upper directory is renamed into {@code SCRATCH/rebase-backup-<time>/upper/}. The
 * properties file's {@code base} is switched last, by an atomic rename. An interrupted rebase
 * leaves an unfinished journal; the next rebase refuses until {@link #rollback} restores the upper
 * directory.
 *
 * <p>Not thread-safe; one rebase per scratch directory at a time (it refuses while it is mounted).
 */
public final class Rebase {
  private Rebase() {}

  private static final List<AccountMerge.Kind> ACCOUNT_ORDER =
      List.of(
          AccountMerge.Kind.GROUP,
          AccountMerge.Kind.GSHADOW,
          AccountMerge.Kind.PASSWD,
          AccountMerge.Kind.SHADOW,
          AccountMerge.Kind.SUBUID,
          AccountMerge.Kind.SUBGID);

  /** What the walk found in the upper directory at one path. */
  private enum LocalKind {
    FILE,
    SYMLINK,
    WHITEOUT,
    OPAQUE_DIR,
    DIR,
    OTHER
  }

  /** One planned change to the upper directory. */
  private sealed interface Step {}

  /** Move upper/path into the backup (upstream wins). */
  private record Drop(String path) implements Step {}

  /** Replace (or create) upper/path with merged text. */
  private record Write(String path, byte[] content, int mode, long uid, long gid, boolean exists)
      implements Step {}

  /** Set a directory's mode and owner (upstream's new attributes). */
  private record SetAttrs(String path, int mode, long uid, long gid) implements Step {}

  /**
   * Rebases the scratch directory {@code scratch} onto {@code ontoSpec} (a ref or snapshot id of
   * {@code repo}).
   *
   * @param dryRun report only; change nothing
   * @throws InvalidInputException if the scratch directory is mounted, not a scratch directory, or
   *     has an unfinished rebase; nothing was changed
   * @throws NotFoundException if the base or onto snapshot is not in the repository
   * @throws IOException if the upper directory cannot be read or written; the journal says what was
   *     done and {@link #rollback} undoes it
   */
  public static RebaseReport rebase(Repository repo, Path scratch, String ontoSpec, boolean dryRun)
      throws IOException {
    ScratchDir s = ScratchDir.open(scratch);
    s.checkNotMounted();
    List<Path> unfinished = s.unfinished();
    if (!unfinished.isEmpty()) {
      throw new InvalidInputException(
          "an earlier rebase of "
              + scratch
              + " did not finish ("
              + unfinished.get(0).getFileName()
              + "/journal); run 'osfarm rebase "
              + scratch
              + " --rollback' to restore the local changes first");
    }
    Digest base = s.base();
    try {
      repo.readSnapshot(base);
    } catch (NotFoundException e) {
      throw new NotFoundException(
          "the scratch directory's base snapshot "
              + base.shortHex(12)
              + " is not in the repository "
              + repo.directory()
              + "; pull it first ('osfarm pull URL "
              + base.hex()
              + "')");
    }
    Digest onto = repo.resolve(ontoSpec);
    Planner p = new Planner(repo, s, base, onto);
    p.plan();
    Path backup = null;
    if (!dryRun && (!p.steps.isEmpty() || !p.remaps.isEmpty() || !base.equals(onto))) {
      backup = p.apply();
    }
    p.conflicts.sort((a, b) -> a.path().compareTo(b.path()));
    return new RebaseReport(
        s.dir(),
        base,
        onto,
        dryRun,
        p.upstream.size(),
        p.localChanges,
        p.kept,
        p.dropped,
        p.merged,
        p.conflicts,
        p.remaps,
        backup);
  }

  /**
   * The {@code source} the scratch directory's properties name (a repository directory or an osfarm
   * URL), if any.
   */
  public static java.util.Optional<String> source(Path scratch) throws IOException {
    return java.util.Optional.ofNullable(ScratchDir.open(scratch).source());
  }

  /**
   * Undoes every unfinished rebase of {@code scratch} from its journal, newest first: re-owned
   * files get their old owner, mode and attributes back, merged files their original, moved files
   * return to the upper directory, and {@code base} its old value.
   *
   * @return the backup directories rolled back (empty if there was nothing to do)
   */
  public static List<Path> rollback(Path scratch) throws IOException {
    ScratchDir s = ScratchDir.open(scratch);
    s.checkNotMounted();
    List<Path> done = new ArrayList<>();
    List<Path> unfinished = new ArrayList<>(s.unfinished());
    java.util.Collections.reverse(unfinished);
    for (Path backup : unfinished) {
      Path file = backup.resolve(Journal.FILE);
      List<String[]> lines = Journal.read(file);
      for (int i = lines.size() - 1; i >= 0; i--) {
        undo(s, backup, lines.get(i));
      }
      try (Journal j = Journal.append(file)) {
        j.write("rolled-back");
      }
      done.add(backup);
    }
    return done;
  }

  private static void undo(ScratchDir s, Path backup, String[] f) throws IOException {
    Path upper = s.upper();
    switch (f[0]) {
      case "base" -> {
        if (s.base().hex().equals(f[2])) {
          s.writeBase(Digest.fromHex(f[1]));
        }
      }
      case "xattr" -> {
        Path p = upper.resolve(f[1]);
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
          UpperFs.setXattr(p, f[2], HexFormat.of().parseHex(f[3]));
        }
      }
      case "chown", "attrs" -> {
        Path p = upper.resolve(f[1]);
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
          long uid = Long.parseLong(f["chown".equals(f[0]) ? 2 : 3]);
          long gid = Long.parseLong(f["chown".equals(f[0]) ? 3 : 4]);
          int mode = Integer.parseInt(f["chown".equals(f[0]) ? 4 : 2], 8);
          UpperFs.chown(p, uid, gid, mode, Files.isSymbolicLink(p));
        }
      }
      case "create" -> {
        Path p = upper.resolve(f[1]);
        Files.deleteIfExists(p);
        Files.deleteIfExists(tempFor(p)); // interrupted before the rename
      }
      case "move" -> {
        Path from = backup.resolve("upper").resolve(f[1]);
        if (Files.exists(from, LinkOption.NOFOLLOW_LINKS)) {
          Path to = upper.resolve(f[1]);
          Files.createDirectories(to.getParent());
          Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        }
      }
      default -> {
        // begin, done: nothing to undo
      }
    }
  }

  private static Path tempFor(Path target) {
    return target.resolveSibling(".osfarm-rebase-" + target.getFileName());
  }

  /** Makes the plan, then applies it. */
  private static final class Planner {
    final Repository repo;
    final ScratchDir scratch;
    final Digest base;
    final Digest onto;
    final TreeMap<String, Change> upstream = new TreeMap<>();
    final List<Step> steps = new ArrayList<>();
    final List<Conflict> conflicts = new ArrayList<>();
    final List<IdRemap> remaps = new ArrayList<>();
    final List<String> merged = new ArrayList<>();
    final Map<Long, Long> uidMap = new LinkedHashMap<>();
    final Map<Long, Long> gidMap = new LinkedHashMap<>();
    final java.util.Set<String> droppedPaths = new java.util.HashSet<>();
    // paths given upstream's owner (or written as root): their ids are ONTO's, never re-owned
    final java.util.Set<String> upstreamOwned = new java.util.HashSet<>();
    final String backupName;
    int localChanges;
    int kept;
    int dropped;

    Planner(Repository repo, ScratchDir scratch, Digest base, Digest onto) {
      this.repo = repo;
      this.scratch = scratch;
      this.base = base;
      this.onto = onto;
      String stamp =
          ZonedDateTime.now(ZoneOffset.UTC)
              .format(DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'"));
      String name = ScratchDir.BACKUP_PREFIX + stamp;
      for (int i = 2; Files.exists(scratch.dir().resolve(name)); i++) {
        name = ScratchDir.BACKUP_PREFIX + stamp + "-" + i;
      }
      this.backupName = name;
    }

    void plan() throws IOException {
      if (!base.equals(onto)) {
        for (Change c : repo.diff(base, onto)) {
          String path = new String(c.path(), StandardCharsets.UTF_8);
          if (!path.equals(".")) {
            upstream.put(path, c);
          }
        }
      }
      boolean accounts = planAccounts();
      walk(scratch.upper(), "", accounts);
      if (!uidMap.isEmpty() || !gidMap.isEmpty()) {
        countReowned();
      }
    }

    // ------------------------------------------------------------ classification

    /** True if upstream changed {@code path} or anything under it. */
    boolean touched(String path) {
      return upstream.containsKey(path) || !upstream.subMap(path + "/", path + "0").isEmpty();
    }

    static boolean localWins(String path) {
      return path.equals("etc")
          || path.startsWith("etc/")
          || path.equals("var")
          || path.startsWith("var/");
    }

    Entry lookup(Digest snapshot, String path) {
      try {
        return repo.lookupFile(snapshot, path.getBytes(StandardCharsets.UTF_8));
      } catch (NotFoundException e) {
        return null;
      }
    }

    static LocalKind kind(Path p, UpperFs.Attrs a) throws IOException {
      return switch (a.type()) {
        case Posix.S_IFREG -> LocalKind.FILE;
        case Posix.S_IFLNK -> LocalKind.SYMLINK;
        case Posix.S_IFDIR -> UpperFs.isOpaque(p) ? LocalKind.OPAQUE_DIR : LocalKind.DIR;
        default -> a.isWhiteout() ? LocalKind.WHITEOUT : LocalKind.OTHER;
      };
    }

    String upstreamDescription(String path) {
      Change c = upstream.get(path);
      if (c == null) {
        return "changed upstream inside it";
      }
      String inside = upstream.subMap(path + "/", path + "0").isEmpty() ? "" : " and inside it";
      return switch (c.kind()) {
        case 'A' -> "added upstream";
        case 'D' -> "removed upstream";
        default -> "changed upstream (" + String.join(", ", c.what()) + ")" + inside;
      };
    }

    String localDescription(String path, LocalKind k) {
      return switch (k) {
        case WHITEOUT -> "deleted locally";
        case OPAQUE_DIR -> "replaced locally by a new directory";
        default -> lookup(base, path) == null ? "added locally" : "changed locally";
      };
    }

    /** True if the local entry is what ONTO has at the path (both sides made the same change). */
    boolean sameAsOnto(Path p, String path, LocalKind k, UpperFs.Attrs a) throws IOException {
      Entry o = lookup(onto, path);
      if (k == LocalKind.WHITEOUT) {
        return o == null;
      }
      if (o == null || o.uid() != a.uid() || o.gid() != a.gid()) {
        return false;
      }
      if (k == LocalKind.SYMLINK) {
        return o.type() == EntryType.SYMLINK
            && Files.readSymbolicLink(p)
                .toString()
                .equals(new String(o.link(), StandardCharsets.UTF_8));
      }
      if (k == LocalKind.FILE && o.type() == EntryType.FILE && o.mode() == a.perm()) {
        if (Files.size(p) != o.size()) {
          return false;
        }
        MessageDigest md = Digest.newMessageDigest();
        try (InputStream in = Files.newInputStream(p, LinkOption.NOFOLLOW_LINKS)) {
          byte[] buf = new byte[1 << 16];
          for (int n; (n = in.read(buf)) > 0; ) {
            md.update(buf, 0, n);
          }
        }
        return Digest.of(md).equals(o.fileDigest());
      }
      return false;
    }

    // ------------------------------------------------------------ the walk

    void walk(Path dir, String rel, boolean accounts) throws IOException {
      List<Path> children = new ArrayList<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
        ds.forEach(children::add);
      }
      children.sort((x, y) -> x.getFileName().toString().compareTo(y.getFileName().toString()));
      for (Path c : children) {
        String path = rel.isEmpty() ? c.getFileName().toString() : rel + "/" + c.getFileName();
        UpperFs.Attrs a = UpperFs.attrs(c);
        LocalKind k = kind(c, a);
        if (k == LocalKind.DIR) {
          directory(c, path, a, accounts);
        } else if (accounts && isAccountFile(path)) {
          localChanges++;
          kept++; // merged by planAccounts
        } else {
          leaf(c, path, k, a);
        }
      }
    }

    static boolean isAccountFile(String path) {
      for (AccountMerge.Kind k : ACCOUNT_ORDER) {
        if (k.path.equals(path)) {
          return true;
        }
      }
      return false;
    }

    /** A directory of the upper dir that only holds changes (not opaque). */
    void directory(Path dir, String path, UpperFs.Attrs a, boolean accounts) throws IOException {
      if (upstream.containsKey(path)) {
        Entry o = lookup(onto, path);
        if (o == null || o.type() != EntryType.DIR) {
          localChanges++;
          String what =
              "holds local changes; "
                  + (o == null ? "removed upstream" : "replaced upstream by a " + o.type().label());
          decide(path, what, "the local directory");
          return;
        }
        Entry b = lookup(base, path);
        int om = o.mode() & 07777;
        boolean localChanged =
            b == null || a.perm() != (b.mode() & 07777) || a.uid() != b.uid() || a.gid() != b.gid();
        boolean upstreamChanged =
            b == null || om != (b.mode() & 07777) || o.uid() != b.uid() || o.gid() != b.gid();
        boolean same = a.perm() == om && a.uid() == o.uid() && a.gid() == o.gid();
        if (!same && upstreamChanged) {
          String attrs =
              String.format(
                  "mode %04o owner %d:%d locally, mode %04o owner %d:%d upstream",
                  a.perm(), a.uid(), a.gid(), om, o.uid(), o.gid());
          if (!localChanged) {
            upstreamOwned.add(path);
            steps.add(new SetAttrs(path, om, o.uid(), o.gid()));
          } else if (localWins(path)) {
            conflicts.add(
                new Conflict(
                    "/" + path,
                    "local-wins-etc-var",
                    "local",
                    "directory attributes changed on both sides (" + attrs + "); local kept"));
          } else {
            upstreamOwned.add(path);
            steps.add(new SetAttrs(path, om, o.uid(), o.gid()));
            conflicts.add(
                new Conflict(
                    "/" + path,
                    "upstream-wins",
                    "upstream",
                    "directory attributes changed on both sides (" + attrs + "); upstream's set"));
          }
        }
      }
      walk(dir, path, accounts);
    }

    void leaf(Path p, String path, LocalKind k, UpperFs.Attrs a) throws IOException {
      localChanges++;
      if (!touched(path) || sameAsOnto(p, path, k, a)) {
        kept++;
        return;
      }
      decide(
          path,
          localDescription(path, k) + ", " + upstreamDescription(path),
          k == LocalKind.WHITEOUT ? "the whiteout" : "the local version");
    }

    /** Both sides touched {@code path}: the policy decides. */
    void decide(String path, String what, String loser) {
      if (localWins(path)) {
        kept++;
        conflicts.add(
            new Conflict(
                "/" + path,
                "local-wins-etc-var",
                "local",
                what + "; local change kept (under /etc and /var local changes win)"));
      } else {
        dropped++;
        steps.add(new Drop(path));
        droppedPaths.add(path);
        conflicts.add(
            new Conflict(
                "/" + path,
                "upstream-wins",
                "upstream",
                what
                    + "; upstream's version wins, "
                    + loser
                    + " moved to "
                    + backupName
                    + "/upper/"
                    + path));
      }
    }

    // ------------------------------------------------------------ accounts

    /**
     * Merges the account files when the local side has at least one of them in the upper directory
     * and upstream changed at least one. All four are merged together because a group's new gid
     * changes passwd's primary-group field.
     */
    boolean planAccounts() throws IOException {
      boolean local = false;
      boolean up = false;
      for (AccountMerge.Kind k : ACCOUNT_ORDER) {
        Path p = scratch.upper().resolve(k.path);
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
          if (!Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            return false; // deleted or replaced locally: the plain path policy decides
          }
          local = true;
        }
        up |= upstream.containsKey(k.path);
      }
      if (!local || !up) {
        return false;
      }
      for (AccountMerge.Kind k : ACCOUNT_ORDER) {
        Path p = scratch.upper().resolve(k.path);
        boolean exists = Files.exists(p, LinkOption.NOFOLLOW_LINKS);
        Entry be = lookup(base, k.path);
        Entry oe = lookup(onto, k.path);
        String baseText = text(be);
        String ontoText = text(oe);
        String localText = exists ? Files.readString(p, StandardCharsets.UTF_8) : baseText;
        if (localText == null) {
          continue; // neither the upper directory nor base has it
        }
        AccountMerge.Outcome out =
            AccountMerge.merge(k, baseText, localText, ontoText, Map.copyOf(gidMap));
        conflicts.addAll(out.conflicts());
        remaps.addAll(out.remaps());
        if (k == AccountMerge.Kind.GROUP) {
          gidMap.putAll(out.idMap());
        } else if (k == AccountMerge.Kind.PASSWD) {
          uidMap.putAll(out.idMap());
        }
        String visible = exists ? localText : ontoText;
        if (out.text().equals(visible)) {
          continue;
        }
        merged.add("/" + k.path);
        upstreamOwned.add(k.path);
        byte[] content = out.text().getBytes(StandardCharsets.UTF_8);
        if (exists) {
          UpperFs.Attrs a = UpperFs.attrs(p);
          steps.add(new Write(k.path, content, a.perm(), a.uid(), a.gid(), true));
        } else if (oe != null) {
          steps.add(new Write(k.path, content, oe.mode() & 07777, oe.uid(), oe.gid(), false));
        } else {
          steps.add(new Write(k.path, content, 0644, 0, 0, false));
        }
      }
      return true;
    }

    String text(Entry e) throws IOException {
      if (e == null || e.type() != EntryType.FILE) {
        return null;
      }
      try (InputStream in = repo.openContent(e)) {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    }

    // ------------------------------------------------------------ re-owning

    /** Fills in how many files each remap touches (files that stay in the upper directory). */
    void countReowned() throws IOException {
      Map<Long, Integer> uids = new TreeMap<>();
      Map<Long, Integer> gids = new TreeMap<>();
      forEachKept(
          (p, path, a) -> {
            if (uidMap.containsKey(a.uid())) {
              uids.merge(a.uid(), 1, Integer::sum);
            }
            if (gidMap.containsKey(a.gid())) {
              gids.merge(a.gid(), 1, Integer::sum);
            }
          });
      remaps.replaceAll(
          r -> r.withFiles(("uid".equals(r.kind()) ? uids : gids).getOrDefault(r.from(), 0)));
    }

    private interface Visitor {
      void visit(Path p, String path, UpperFs.Attrs a) throws IOException;
    }

    /** Visits every entry of the upper directory that the plan does not drop. */
    void forEachKept(Visitor v) throws IOException {
      forEach(scratch.upper(), "", v);
    }

    private void forEach(Path dir, String rel, Visitor v) throws IOException {
      List<Path> children = new ArrayList<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
        ds.forEach(children::add);
      }
      children.sort((x, y) -> x.getFileName().toString().compareTo(y.getFileName().toString()));
      for (Path c : children) {
        String path = rel.isEmpty() ? c.getFileName().toString() : rel + "/" + c.getFileName();
        if (droppedPaths.contains(path)) {
          continue;
        }
        UpperFs.Attrs a = UpperFs.attrs(c);
        if (!upstreamOwned.contains(path)) {
          v.visit(c, path, a);
        }
        if (a.isDir()) {
          forEach(c, path, v);
        }
      }
    }

    // ------------------------------------------------------------ applying

    Path apply() throws IOException {
      Path backup = scratch.dir().resolve(backupName);
      Path saved = backup.resolve("upper");
      Files.createDirectories(saved);
      ScratchDir.fsyncDir(scratch.dir());
      Path upper = scratch.upper();
      try (Journal j = Journal.create(backup.resolve(Journal.FILE))) {
        j.write("begin", base.hex(), onto.hex());
        for (Step step : steps) {
          switch (step) {
            case Drop d -> {
              j.write("move", d.path());
              moveToBackup(upper, saved, d.path());
            }
            case Write w -> {
              if (w.exists()) {
                j.write("move", w.path());
                moveToBackup(upper, saved, w.path());
              }
              j.write("create", w.path());
              writeFile(upper.resolve(w.path()), w);
            }
            case SetAttrs s -> {
              Path p = upper.resolve(s.path());
              UpperFs.Attrs a = UpperFs.attrs(p);
              j.write(
                  "attrs",
                  s.path(),
                  Integer.toOctalString(a.perm()),
                  Long.toString(a.uid()),
                  Long.toString(a.gid()));
              UpperFs.chown(p, s.uid(), s.gid(), s.mode(), false);
            }
          }
        }
        if (!uidMap.isEmpty() || !gidMap.isEmpty()) {
          reown(j);
        }
        j.write("base", base.hex(), onto.hex());
        scratch.writeBase(onto);
        j.write("done");
      }
      return backup;
    }

    static void moveToBackup(Path upper, Path saved, String path) throws IOException {
      Path to = saved.resolve(path);
      Files.createDirectories(to.getParent());
      Files.move(upper.resolve(path), to, StandardCopyOption.ATOMIC_MOVE);
    }

    static void writeFile(Path target, Write w) throws IOException {
      // the temporary file is written in place (same file system) and renamed over the target
      Files.createDirectories(target.getParent());
      Path tmp = tempFor(target);
      Files.deleteIfExists(tmp);
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        ch.write(java.nio.ByteBuffer.wrap(w.content()));
        ch.force(true);
      }
      UpperFs.chown(tmp, w.uid(), w.gid(), w.mode(), false);
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      ScratchDir.fsyncDir(target.getParent());
    }

    /**
     * Re-owns every kept file whose uid or gid moved: the journal first gets each file's old owner,
     * mode and the attributes that will change (capabilities, which chown drops, and ACLs naming a
     * moved id), then the files change.
     */
    void reown(Journal j) throws IOException {
      record Job(Path p, String path, UpperFs.Attrs a, Map<String, byte[]> xattrs) {}
      List<Job> jobs = new ArrayList<>();
      List<String> lines = new ArrayList<>();
      forEachKept(
          (p, path, a) -> {
            boolean owner = uidMap.containsKey(a.uid()) || gidMap.containsKey(a.gid());
            Map<String, byte[]> keep = new LinkedHashMap<>();
            if (a.type() != Posix.S_IFLNK) {
              for (byte[][] kv : UpperFs.xattrs(p)) {
                String name = new String(kv[0], StandardCharsets.UTF_8);
                if (name.equals(UpperFs.ACL_ACCESS) || name.equals(UpperFs.ACL_DEFAULT)) {
                  if (UpperFs.remapAcl(kv[1], uidMap, gidMap) != null) {
                    keep.put(name, kv[1]);
                  }
                } else if (owner && name.equals(UpperFs.CAPABILITY)) {
                  keep.put(name, kv[1]);
                }
              }
            }
            if (!owner && keep.isEmpty()) {
              return;
            }
            for (Map.Entry<String, byte[]> e : keep.entrySet()) {
              lines.add(
                  Journal.line("xattr", path, e.getKey(), HexFormat.of().formatHex(e.getValue())));
            }
            if (owner) {
              lines.add(
                  Journal.line(
                      "chown",
                      path,
                      Long.toString(a.uid()),
                      Long.toString(a.gid()),
                      Integer.toOctalString(a.perm())));
            }
            jobs.add(new Job(p, path, a, keep));
          });
      j.write(lines);
      for (Job job : jobs) {
        UpperFs.Attrs a = job.a();
        if (uidMap.containsKey(a.uid()) || gidMap.containsKey(a.gid())) {
          UpperFs.chown(
              job.p(),
              uidMap.getOrDefault(a.uid(), a.uid()),
              gidMap.getOrDefault(a.gid(), a.gid()),
              a.perm(),
              a.type() == Posix.S_IFLNK);
        }
        for (Map.Entry<String, byte[]> e : job.xattrs().entrySet()) {
          byte[] v =
              e.getKey().equals(UpperFs.CAPABILITY)
                  ? e.getValue()
                  : UpperFs.remapAcl(e.getValue(), uidMap, gidMap);
          UpperFs.setXattr(job.p(), e.getKey(), v);
        }
      }
    }
  }
}
