package org.osfarm.catalog;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.RefConflictException;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.TarSource;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Installs packages into a dormant image (Mirage's memoized package install): no boot, apt-get in a
 * chroot inside an unprivileged user namespace, and a memo so the same work is never done twice.
 *
 * <p><b>Memo.</b> The key is the SHA-256 of the image's <em>relevant state</em> — the ids of {@code
 * var/lib/dpkg/status}, {@code etc/apt/}, {@code etc/dpkg/}, {@code etc/passwd}, {@code etc/group},
 * {@code etc/shadow}, {@code etc/gshadow} — and the sorted package set. The first install for a key
 * runs apt and keeps the raw result under the ref {@code cache/install/KEY} (with the image it ran
 * on as {@code install.base}). Every install, first or memoized, then carries the change (base →
 * result) over to the requested image by a three-way tree merge, so another image with the same
 * relevant state (a clone with another hostname, say) gets the packages without apt running again.
 * The merge reads only the directories the install changed.
 *
 * <p><b>Confinement.</b> The image is unpacked, changed and packed again inside {@code unshare
 * --user --mount --pid}, with uids 0-65535 of the namespace mapped to a range of unused ids
 * (100000+ when run as root; the user's {@code /etc/subuid} range otherwise), so maintainer scripts
 * cannot touch the host's files; device nodes are bind mounts of the host's null-like devices, and
 * {@code policy-rc.d} keeps services from starting. Needs {@code unshare} (util-linux), GNU {@code
 * tar} and network access to the image's apt sources.
 */
public final class Installer {
  static final String CACHE_PREFIX = "cache/install/";
  private static final List<String> RELEVANT =
      List.of(
          "var/lib/dpkg/status",
          "etc/apt",
          "etc/dpkg",
          "etc/passwd",
          "etc/group",
          "etc/shadow",
          "etc/gshadow");

  /** Top-level directories whose content is the running system's, not the image's. */
  private static final List<String> VOLATILE = List.of("dev", "proc", "sys");

  private Installer() {}

  /**
   * @param memoized true if apt did not run: the result came from the memo
   * @param key the memo key (hex)
   * @param cacheEntry the memo snapshot ({@code cache/install/KEY})
   */
  public record Result(
      Digest snapshot, RefUpdate update, boolean memoized, String key, Digest cacheEntry) {}

  /**
   * Installs {@code packages} into {@code base}, publishes the result under {@code ref} (its
   * parent: the ref's previous value; {@code derived-from}: base) and adds it to the catalog.
   *
   * @param refresh run apt even if the memo has an answer (and replace the memo)
   * @param work a directory for temporary files (the image is unpacked there); null for the
   *     system's temporary directory. Every directory above it must be searchable by the
   *     namespace's uids (as {@code /tmp} is).
   * @throws IllegalArgumentException for a malformed package name
   * @throws CatalogException if the image has no dpkg status, or apt fails (with its output)
   */
  public static Result install(
      Catalog catalog, Digest base, List<String> packages, String ref, boolean refresh, Path work)
      throws IOException {
    Repository repo = catalog.repository();
    RefDatabase.validateName(ref);
    if (ref.startsWith(Catalog.OWN_REFS)) {
      throw new IllegalArgumentException("refs under " + Catalog.OWN_REFS + " are osfarm's own");
    }
    TreeSet<String> pkgs = new TreeSet<>();
    for (String p : packages) {
      if (!p.matches("[a-z0-9][a-z0-9+.\\-]*(:[a-z0-9\\-]+)?(=[A-Za-z0-9.+~:\\-]+)?")) {
        throw new IllegalArgumentException(
            "bad package '" + p + "': expected NAME or NAME=VERSION (as apt-get takes them)");
      }
      pkgs.add(p);
    }
    if (pkgs.isEmpty()) {
      throw new IllegalArgumentException("no packages to install");
    }
    if (!catalog.hasPackages(base)) {
      throw new CatalogException(
          "snapshot " + base.shortHex(12) + " has no var/lib/dpkg/status: not a Debian image");
    }
    String key = key(repo, base, pkgs);
    String cacheRef = CACHE_PREFIX + key;
    Optional<Digest> cached = repo.refs().get(cacheRef);
    boolean memoized = cached.isPresent() && !refresh;
    Digest entry = memoized ? cached.get() : runApt(repo, base, pkgs, cacheRef, key, work);
    Snapshot raw = repo.readSnapshot(entry);
    Digest rawBase = Digest.fromHex(raw.metadata().get("install.base"));
    Snapshot b = repo.readSnapshot(base);
    Snapshot rb = repo.readSnapshot(rawBase);

    Optional<Digest> old = repo.refs().get(ref);
    try (Repository.Lease lease = repo.holdSharedLock();
        ObjectStore.Inserter ins = repo.store().newInserter()) {
      Digest tree = mergeKeepingVolatile(repo, ins, rb.tree(), raw.tree(), b.tree());
      Map<String, String> meta = new TreeMap<>();
      for (var e : b.metadata().entrySet()) {
        if (e.getKey().equals("source") || e.getKey().startsWith("tar.")) {
          meta.put(e.getKey(), e.getValue());
        }
      }
      meta.put(Catalog.DERIVED_FROM, base.hex());
      meta.put("install.packages", String.join(" ", pkgs));
      meta.put("install.key", key);
      meta.put("install.result", entry.hex());
      meta.put("install.memoized", Boolean.toString(memoized));
      String message = "install " + String.join(" ", pkgs) + " into " + base.shortHex(12);
      Snapshot s =
          new Snapshot(
              b.root().withContent(tree),
              old.map(List::of).orElse(List.of()),
              Instant.now(),
              message,
              meta);
      byte[] enc = repo.encodeSnapshot(s);
      Digest id = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
      ins.flush();
      RefUpdate u = repo.refs().compareAndSet(ref, old.orElse(null), id, message);
      if (u == RefUpdate.REJECTED_CHANGED) {
        throw new RefConflictException(
            "ref '"
                + ref
                + "' changed during the install; snapshot "
                + id
                + " is stored but not named: run 'osfarm tag "
                + ref
                + " "
                + id.shortHex(12)
                + "'");
      }
      catalog.add(id, ref);
      return new Result(id, u, memoized, key, entry);
    }
  }

  /** The memo key: the relevant state of the image and the package set. */
  static String key(Repository repo, Digest base, TreeSet<String> pkgs) {
    StringBuilder sb = new StringBuilder("osfarm-install 1\n");
    for (String path : RELEVANT) {
      String id;
      try {
        Entry e = repo.lookup(base, Bytes.utf8(path));
        id =
            switch (e.type()) {
              case DIR -> "tree " + e.content().hex();
              case FILE -> "file " + e.fileDigest().hex() + " " + Integer.toOctalString(e.mode());
              default -> Repository.manifestLine(Bytes.utf8(path), e);
            };
      } catch (NotFoundException absent) {
        id = "-";
      }
      sb.append(path).append(' ').append(id).append('\n');
    }
    sb.append("packages ").append(String.join(" ", pkgs)).append('\n');
    sb.append("apt-get install --no-install-recommends\n");
    MessageDigest md = Digest.newMessageDigest();
    md.update(sb.toString().getBytes(StandardCharsets.UTF_8));
    return Digest.of(md).hex();
  }

  /** base → changed carried over to target, except dev/, proc/, sys/: always the target's. */
  private static Digest mergeKeepingVolatile(
      Repository repo, ObjectStore.Inserter ins, Digest base, Digest changed, Digest target) {
    Map<String, Entry> targetTop = new TreeMap<>();
    for (Entry e : repo.readTree(target)) {
      targetTop.put(e.nameString(), e);
    }
    List<Entry> top = new ArrayList<>();
    for (Entry e : TreeEdits.mergeEntries(repo, ins, base, changed, target)) {
      if (!VOLATILE.contains(e.nameString())) {
        top.add(e);
      }
    }
    for (String v : VOLATILE) {
      if (targetTop.containsKey(v)) {
        top.add(targetTop.get(v));
      }
    }
    top.sort((x, y) -> java.util.Arrays.compareUnsigned(x.name(), y.name()));
    return TreeEdits.writeTree(ins, top);
  }

  // ---------------------------------------------------------------- running apt

  private static Digest runApt(
      Repository repo, Digest base, TreeSet<String> pkgs, String cacheRef, String key, Path work)
      throws IOException {
    Path parent = work != null ? work : Path.of(System.getProperty("java.io.tmpdir"));
    Files.createDirectories(parent);
    Path dir = Files.createTempDirectory(parent, "osfarm-install-");
    Path in = dir.resolve("in.tar");
    Path out = dir.resolve("out.tar");
    Path log = dir.resolve("apt.log");
    try {
      repo.export(base, List.of(), ExportFormat.TAR, in, ProgressListener.NONE);
      if (isRoot()) {
        // the namespace's root is the first subordinate uid outside: let it into the work dir
        int u = (int) rootRange(Path.of("/etc/subuid"))[0];
        int g = (int) rootRange(Path.of("/etc/subgid"))[0];
        for (Path p : List.of(dir, in)) {
          Files.setAttribute(p, "unix:uid", u);
          Files.setAttribute(p, "unix:gid", g);
        }
      }
      List<String> cmd = new ArrayList<>(namespace());
      cmd.addAll(
          List.of(
              "sh",
              "-c",
              SCRIPT,
              "osfarm-install",
              dir.resolve("root").toString(),
              in.toString(),
              out.toString()));
      cmd.addAll(pkgs);
      Process p =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
              .start();
      boolean done;
      try {
        done = p.waitFor(60, TimeUnit.MINUTES);
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new CatalogException("install interrupted");
      }
      if (!done) {
        p.destroyForcibly();
        throw new CatalogException("apt-get took more than 60 minutes; see " + log);
      }
      if (p.exitValue() != 0) {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        throw new CatalogException(
            "installing "
                + String.join(" ", pkgs)
                + " failed (exit "
                + p.exitValue()
                + "):\n"
                + String.join("\n", lines.subList(Math.max(0, lines.size() - 25), lines.size())));
      }
      Map<String, String> meta = new TreeMap<>();
      meta.put("install.base", base.hex());
      meta.put("install.packages", String.join(" ", pkgs));
      meta.put("install.key", key);
      Digest raw;
      try (TarSource src = TarSource.open(out)) {
        raw =
            repo.publish(
                    src,
                    cacheRef,
                    "apt-get install " + String.join(" ", pkgs),
                    meta,
                    ProgressListener.NONE)
                .snapshot();
      }
      // tar inside the namespace wrote numeric owners only: give unchanged entries back the
      // base's exact entries, so unchanged subtrees share the base's ids and merges skip them.
      Snapshot r = repo.readSnapshot(raw);
      try (Repository.Lease lease = repo.holdSharedLock();
          ObjectStore.Inserter ins = repo.store().newInserter()) {
        Digest tree = TreeEdits.normalize(repo, ins, repo.readSnapshot(base).tree(), r.tree());
        Snapshot n =
            new Snapshot(
                r.root().withContent(tree), List.of(raw), r.time(), r.message(), r.metadata());
        byte[] enc = repo.encodeSnapshot(n);
        Digest id = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
        ins.flush();
        if (repo.refs().compareAndSet(cacheRef, raw, id, "normalize owner names")
            == RefUpdate.REJECTED_CHANGED) {
          throw new RefConflictException("memo " + cacheRef + " changed meanwhile; try again");
        }
        return id;
      }
    } finally {
      deleteTree(dir);
    }
  }

  private static long uid() throws IOException {
    return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
  }

  private static boolean isRoot() throws IOException {
    return uid() == 0;
  }

  /**
   * unshare with a full uid/gid map, so dpkg can give files to system users: as root, uids 0-65535
   * of the namespace are root's /etc/subuid range (100000-165535 if it has none); otherwise the
   * namespace's root is the user and 1-65535 come from the user's range.
   */
  static List<String> namespace() throws IOException {
    List<String> cmd = new ArrayList<>(List.of("unshare"));
    long uid = uid();
    if (uid == 0) {
      long[] u = rootRange(Path.of("/etc/subuid"));
      long[] g = rootRange(Path.of("/etc/subgid"));
      cmd.add("--map-users=" + u[0] + ",0," + Math.min(65536, u[1]));
      cmd.add("--map-groups=" + g[0] + ",0," + Math.min(65536, g[1]));
    } else {
      String user = System.getProperty("user.name");
      String[] sub = subordinate(Path.of("/etc/subuid"), user, uid);
      String[] subg = subordinate(Path.of("/etc/subgid"), user, uid);
      cmd.addAll(
          List.of(
              "--map-user=0",
              "--map-group=0",
              "--map-users=" + sub[1] + ",1," + Math.min(65535, Long.parseLong(sub[2])),
              "--map-groups=" + subg[1] + ",1," + Math.min(65535, Long.parseLong(subg[2]))));
    }
    cmd.addAll(
        List.of("--setuid=0", "--setgid=0", "--mount", "--pid", "--fork", "--kill-child", "--"));
    return cmd;
  }

  /** root's subordinate range (start, count), or 100000-165535. */
  private static long[] rootRange(Path file) throws IOException {
    if (Files.isReadable(file)) {
      for (String line : Files.readAllLines(file)) {
        String[] f = line.trim().split(":");
        if (f.length == 3 && (f[0].equals("root") || f[0].equals("0"))) {
          return new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])};
        }
      }
    }
    return new long[] {100000, 65536};
  }

  private static String[] subordinate(Path file, String user, long uid) throws IOException {
    if (Files.isReadable(file)) {
      for (String line : Files.readAllLines(file)) {
        String[] f = line.trim().split(":");
        if (f.length == 3 && (f[0].equals(user) || f[0].equals(Long.toString(uid)))) {
          return f;
        }
      }
    }
    throw new CatalogException(
        "no subordinate id range for "
            + user
            + " in "
            + file
            + ": add one (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
            + user
            + ") so packages can be installed without root");
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var s = Files.walk(dir)) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** Runs as root of the user namespace: unpack, apt-get install, clean up, pack, remove. */
  private static final String SCRIPT =
      """
      set -eu
      root=$1; in=$2; out=$3; shift 3
      mkdir "$root"
      tar -x -p --numeric-owner --xattrs --xattrs-include='*' -f "$in" -C "$root" \\
          --exclude='./dev/*' --exclude='dev/*'
      rm -f "$in"
      for d in null zero full random urandom tty; do
        touch "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"
      done
      mount -t proc proc "$root/proc"
      if [ -e "$root/etc/resolv.conf" ] || [ -L "$root/etc/resolv.conf" ]; then
        mv "$root/etc/resolv.conf" "$root/etc/resolv.conf.osfarm"
      fi
      cat /etc/resolv.conf > "$root/etc/resolv.conf"
      printf '#!/bin/sh\\nexit 101\\n' > "$root/usr/sbin/policy-rc.d"
      chmod 755 "$root/usr/sbin/policy-rc.d"
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \\
          chroot "$root" apt-get -q update
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \\
          chroot "$root" apt-get -q -y --no-install-recommends install "$@"
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" apt-get -q clean
      rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d"
      rm -f "$root/etc/resolv.conf"
      if [ -e "$root/etc/resolv.conf.osfarm" ] || [ -L "$root/etc/resolv.conf.osfarm" ]; then
        mv "$root/etc/resolv.conf.osfarm" "$root/etc/resolv.conf"
      fi
      umount "$root/proc"
      for d in null zero full random urandom tty; do
        umount "$root/dev/$d"; rm -f "$root/dev/$d"
      done
      tar -c --numeric-owner --xattrs --xattrs-include='*' -f "$out" -C "$root" \\
          --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
      rm -rf "$root"
      """;
}
