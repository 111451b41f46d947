package org.osfarm.build;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds Debian and Ubuntu layers with mmdebstrap in unshare mode.
 *
 * <p>The core layer is a plain mmdebstrap run of the class's variant. A layer on top of a cached
 * parent is {@code --variant=custom} whose setup hook unpacks the parent's tree (so nothing of the
 * parent is installed again) and whose customize hooks install the layer's packages with apt in the
 * chroot, run the layer's script and reset per-instance identity. The tar goes to stdout and is
 * published while it is written. Downloaded .debs are hard-linked in from a cache shared by builds
 * of the same class and architecture, and the new ones linked back after a successful run (see
 * {@link #confineHook}); each build works in its own directory.
 */
final class MmdebstrapBackend implements BuilderBackend {
  private static final Pattern UNKNOWN_PACKAGE =
      Pattern.compile(
          "E: (?:Unable to locate package (\\S+)|Package '([^']+)' has no installation candidate"
              + "|Couldn't find any package by (?:glob|regex) '([^']+)')");

  @Override
  public boolean supports(DistroClass distro) {
    return distro.family().equals("debian") || distro.family().equals("ubuntu");
  }

  /**
   * dpkg's configuration, for the run only, that skips its fsync of every unpacked file ({@code
   * force-unsafe-io}): the tree is scratch (a crash throws it away; what is kept is published into
   * the repository, which makes its objects durable itself), and on a busy disk those fsyncs cost
   * seconds per build. The file is in no snapshot (each snapshot hook removes it) and is deleted
   * before mmdebstrap writes its tarball, so no layer's content changes.
   */
  static final String UNSAFE_IO = "/etc/dpkg/dpkg.cfg.d/osfarm-build-unsafe-io";

  static final String UNSAFE_IO_ON =
      "mkdir -p \"$1\"/etc/dpkg/dpkg.cfg.d && echo force-unsafe-io > \"$1\"" + UNSAFE_IO;

  static final String UNSAFE_IO_OFF = "rm -f \"$1\"" + UNSAFE_IO;

  static String q(String s) {
    return "'" + s.replace("'", "'\"'\"'") + "'";
  }

  static String q(Path p) {
    return q(p.toAbsolutePath().toString());
  }

  List<String> command(Job job) throws IOException {
    List<String> a = new ArrayList<>();
    boolean overlay = job.lower() != null;
    boolean core = job.parentTar() == null && !overlay;
    a.add("--variant=" + (core ? job.distro().variant() : "custom"));
    a.add("--architectures=" + job.arch());
    a.add("--components=" + String.join(",", job.distro().components()));
    a.add("--keyring=" + job.keyring());
    a.add("--aptopt=APT::Install-Recommends \"false\"");
    a.add("--skip=essential/unlink");
    a.add("--format=" + (overlay ? "directory" : "tar"));
    if (core && !job.packages().isEmpty()) {
      a.add("--include=" + String.join(",", job.packages()));
    }
    String archives = "\"$1\"/var/cache/apt/archives";
    a.add(
        "--setup-hook=mkdir -p "
            + archives
            + "/partial && { cp -al "
            + q(job.debs())
            + "/. "
            + archives
            + "/ 2>/dev/null || true; }");
    // after the .debs are linked in (links cannot cross the mounts it makes), before anything of
    // the image runs
    a.add("--setup-hook=" + confineHook(job, Path.of("/proc/self/mountinfo")));
    if (overlay) {
      a.add("--setup-hook=" + overlayHook(job));
    } else if (!core) {
      a.add(
          "--setup-hook=mmtarfilter --path-exclude='/dev/*' < "
              + q(job.parentTar())
              + " | tar -C \"$1\" --numeric-owner --xattrs --xattrs-include='*' -xp");
    }
    a.add("--setup-hook=" + UNSAFE_IO_ON);
    layerHooks(a, job, 0, core, job.kind(), job.packages(), job.repositories(), job.script());
    for (int k = 0; k < job.then().size(); k++) {
      a.add("--customize-hook=" + snapshot(job, k));
      BuilderBackend.Stage st = job.then().get(k);
      layerHooks(a, job, k + 1, false, st.kind(), st.packages(), st.repositories(), st.script());
    }
    if (!job.then().isEmpty()) {
      // the snapshots stream in the background: the run (and its namespace) must outlive them
      a.add("--customize-hook=" + waitHook(job.work(), job.then().size()));
    }
    // staged in the work directory (the cache is read-only in the namespace) for finish() to link
    // into the cache; hard-linked, or copied where links cannot cross: a layer built on a checkout
    // installs in an overlayfs, another mount than the work directory's
    String keep = archives + "/*.deb " + q(stagedDebs(job)) + "/ 2>/dev/null";
    a.add(
        "--customize-hook=mkdir -p "
            + q(stagedDebs(job))
            + " && { cp -aln "
            + keep
            + " || cp -an "
            + keep
            + " || true; }");
    a.add("--customize-hook=" + UNSAFE_IO_OFF);
    a.add(job.distro().suite());
    // the tar goes to a FIFO, not stdout: mmdebstrap closes it when the tarball is complete,
    // while stdout stays open until it has deleted its tree (seconds, as long as the build on a
    // busy disk)
    a.add(overlay ? job.work().resolve("root").toString() : tarPipe(job).toString());
    a.add(job.distro().mirror());
    return Userns.mmdebstrap(a);
  }

  /** Where the run leaves the .debs it used, for {@link #keepDebs}. */
  static Path stagedDebs(Job job) {
    return job.work().resolve("debs-new");
  }

  /**
   * Links the .debs a successful run staged into the shared cache, keeping what the cache has (a
   * name is one version of one package, and apt checks a cached file's hash before installing it).
   * Best effort: a .deb missing from the cache is only downloaded again.
   */
  static void keepDebs(Job job) {
    Path staged = stagedDebs(job);
    if (!Files.isDirectory(staged)) {
      return;
    }
    try (var s = Files.newDirectoryStream(staged, "*.deb")) {
      for (Path f : s) {
        Path to = job.debs().resolve(f.getFileName().toString());
        try {
          Files.createLink(to, f);
        } catch (java.nio.file.FileAlreadyExistsException e) {
          // another build kept it first
        }
      }
    } catch (IOException e) {
      // best effort (see above)
    }
  }

  /** The FIFO mmdebstrap writes the tarball to (a layer not built on a checkout). */
  static Path tarPipe(Job job) {
    return job.work().resolve("out.tar");
  }

  /**
   * The tarball from mmdebstrap's FIFO. mmdebstrap opens its target once early and closes it at
   * once ("fail early" check), then again for the tarball: an empty stream while the process runs
   * is that first open, and the FIFO is opened again. When the process has ended, a reader blocked
   * opening the FIFO is released (see {@link #release}) and sees the end of the stream.
   */
  static final class FifoTar extends InputStream {
    private final Path fifo;
    private final Process p;
    private InputStream cur;
    private boolean data;
    volatile boolean closed;

    FifoTar(Path fifo, Process p) {
      this.fifo = fifo;
      this.p = p;
    }

    @Override
    public int read() throws IOException {
      byte[] b = new byte[1];
      int n = read(b, 0, 1);
      return n < 0 ? -1 : b[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      while (true) {
        if (closed) {
          return -1;
        }
        if (cur == null) {
          cur = Files.newInputStream(fifo);
        }
        int n = cur.read(b, off, len);
        if (n > 0) {
          data = true;
          return n;
        }
        if (data || !p.isAlive()) {
          return -1;
        }
        cur.close(); // mmdebstrap's early check, or a process about to end: open it again
        cur = null;
      }
    }

    @Override
    public void close() throws IOException {
      closed = true;
      if (cur != null) {
        cur.close();
      }
    }
  }

  /**
   * Once the process has ended, releases a reader blocked opening {@code fifo} (opening a FIFO
   * read-write never blocks; closing it gives the reader the end of the stream), for as long as the
   * reader may still come (until it closes, at most a minute).
   */
  static void release(Process p, Path fifo, FifoTar reader) {
    p.onExit()
        .thenRun(
            () ->
                Thread.ofVirtual()
                    .start(
                        () -> {
                          for (int i = 0; i < 600 && !reader.closed; i++) {
                            try (java.io.RandomAccessFile f =
                                new java.io.RandomAccessFile(fifo.toFile(), "rw")) {
                              // released
                            } catch (IOException e) {
                              return; // gone with the work directory
                            }
                            try {
                              Thread.sleep(100);
                            } catch (InterruptedException e) {
                              return;
                            }
                          }
                        }));
  }

  /**
   * The hook that waits for the {@code n} background snapshot streams and fails the run if one
   * failed. A stream whose status never comes (the snapshot hook died before starting it, or it was
   * killed) ends the wait with an error instead of polling forever: each snapshot hook records the
   * pid of its background part, and a missing pid or a gone process without a status is a failure.
   */
  static String waitHook(Path work, int n) {
    StringBuilder w = new StringBuilder("set -e; for k in");
    for (int k = 0; k < n; k++) {
      w.append(' ').append(k);
    }
    String d = q(work);
    w.append("; do while [ ! -e ")
        .append(d)
        .append("/snap-$k.rc ]; do if [ ! -s ")
        .append(d)
        .append("/snap-$k.pid ] || ! kill -0 \"$(cat ")
        .append(d)
        .append("/snap-$k.pid)\" 2>/dev/null; then [ -e ")
        .append(d)
        .append("/snap-$k.rc ] && break; echo \"E: snapshot $k ended without a status\" >&2;")
        .append(" exit 1; fi; sleep 0.1; done; [ \"$(cat ")
        .append(d)
        .append("/snap-$k.rc)\" = 0 ] || { echo \"E: snapshot $k failed (exit $(cat ")
        .append(d)
        .append("/snap-$k.rc))\" >&2; exit 1; }; done");
    return w.toString();
  }

  /** File systems whose mounts may stay writable: kernel interfaces, not places to put files. */
  private static final java.util.Set<String> PSEUDO =
      java.util.Set.of(
          "proc",
          "sysfs",
          "cgroup",
          "cgroup2",
          "devpts",
          "mqueue",
          "securityfs",
          "debugfs",
          "tracefs",
          "pstore",
          "bpf",
          "configfs",
          "fusectl",
          "binfmt_misc",
          "autofs",
          "efivarfs",
          "hugetlbfs",
          "nsfs",
          "rpc_pipefs");

  /**
   * The setup hook that leaves a build nothing writable outside its work directory. The chroot
   * alone does not confine: the namespace's root can leave it (a second chroot, or {@code
   * /proc/1/root}) and reach every host directory its subordinate uid may write, such as {@code
   * /tmp}. So in mmdebstrap's mount namespace (its own; nothing here reaches the host's) the work
   * directory is bound onto itself and every other mount of the host, as {@code mountinfo} lists
   * them now, is remounted read-only, keeping the flags the namespace may not drop (nosuid, nodev,
   * noexec, atime). A mount that cannot be made read-only is named on stderr, but for kernel
   * interfaces such as proc and sysfs. The .deb cache is read-only too: its files are linked in
   * before this hook, and new ones are staged in the work directory and linked into the cache by
   * {@link #keepDebs} once the run succeeded.
   */
  static String confineHook(Job job, Path mountinfo) throws IOException {
    Path w = job.work().toRealPath();
    StringBuilder h =
        new StringBuilder("set -e; mount --make-rslave /; mount --bind ")
            .append(q(w))
            .append(' ')
            .append(q(w))
            .append("; ro() { mount -o \"remount,bind,$1\" \"$2\" 2>/dev/null || [ -n \"$3\" ] ||")
            .append(" echo \"W: osfarm: $2 stays writable in the build's namespace\" >&2; }");
    for (String line : Files.readAllLines(mountinfo)) {
      // id parent major:minor root mount-point options [optional fields] - type source
      // super-options
      String[] f = line.split(" ");
      int sep = java.util.Arrays.asList(f).indexOf("-");
      if (f.length < 7 || sep < 6 || sep + 1 >= f.length) {
        continue;
      }
      Path mp = Path.of(unescape(f[4]));
      if (mp.startsWith(w)) {
        continue;
      }
      List<String> opts = new ArrayList<>(List.of("ro"));
      for (String o : f[5].split(",")) {
        if (!o.equals("rw") && !o.equals("ro")) {
          opts.add(o);
        }
      }
      h.append("; ro ")
          .append(q(String.join(",", opts)))
          .append(' ')
          .append(q(mp.toString()))
          .append(PSEUDO.contains(f[sep + 1]) ? " quiet" : "");
    }
    return h.toString();
  }

  /** A {@code mountinfo} path: spaces, tabs, newlines and backslashes are octal escapes there. */
  static String unescape(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length() && s.substring(i + 1, i + 4).matches("[0-7]{3}")) {
        b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.append(c);
      }
    }
    return b.toString();
  }

  /**
   * The setup hook of a layer built on a checkout: mounts an overlayfs over the checkout on the
   * chroot (in mmdebstrap's user and mount namespaces, {@code userxattr} as unprivileged overlays
   * need) with a fresh upper directory, then puts back what mmdebstrap's setup wrote only where the
   * parent has nothing, as unpacking the parent over it would (the parent's sources.list and dpkg
   * status win; mmdebstrap's temporary apt configuration stays). The mount goes with the namespace
   * when mmdebstrap exits; the changes stay in the upper directory.
   */
  static String overlayHook(Job job) {
    Path w = job.work();
    return "set -e; mkdir "
        + q(w.resolve("setup"))
        + " "
        + q(job.upper())
        + " "
        + q(w.resolve("ovl-work"))
        + "; cp -a \"$1\"/. "
        + q(w.resolve("setup"))
        + "/; mount -t overlay overlay -o "
        + q(
            "userxattr,lowerdir="
                + job.lower().toAbsolutePath()
                + ",upperdir="
                + job.upper().toAbsolutePath()
                + ",workdir="
                + w.resolve("ovl-work").toAbsolutePath())
        + " \"$1\"; cd "
        + q(w.resolve("setup"))
        + "; find . ! -type d | while read -r f; do [ -e \"$1/$f\" ] || [ -L \"$1/$f\" ]"
        + " || cp -a --parents \"$f\" \"$1\"/; done";
  }

  /** The hooks of one layer of the run: its repositories, packages, script and package list. */
  private void layerHooks(
      List<String> a,
      Job job,
      int n,
      boolean core,
      LayerKind kind,
      List<String> packages,
      List<ImageSpec.Repo> repositories,
      String script)
      throws IOException {
    int i = 0;
    for (ImageSpec.Repo r : repositories) {
      StringBuilder h = new StringBuilder("--customize-hook=set -e; ");
      String signed = "";
      if (r.key() != null) {
        Path k = job.work().resolve("repo-" + i + ".key");
        String dest = "/etc/apt/keyrings/osfarm-" + i + (isArmored(k) ? ".asc" : ".gpg");
        h.append("mkdir -p \"$1\"/etc/apt/keyrings; cp ")
            .append(q(k))
            .append(" \"$1\"")
            .append(dest)
            .append("; ");
        signed = "[signed-by=" + dest + "] ";
      }
      String line =
          "deb " + signed + r.uri() + " " + r.suite() + " " + String.join(" ", r.components());
      h.append("printf '%s\\n' ")
          .append(q(line))
          .append(" > \"$1\"/etc/apt/sources.list.d/osfarm-")
          .append(i)
          .append(".list");
      a.add(h.toString());
      i++;
    }
    if (!repositories.isEmpty()) {
      // an index that cannot be fetched fails the build (apt only warns by default and installs
      // from the other sources); older apt ignores the option
      a.add("--customize-hook=chroot \"$1\" apt-get update -q -o APT::Update::Error-Mode=any");
    }
    if (!core && !packages.isEmpty()) {
      String names = String.join(" ", packages.stream().map(MmdebstrapBackend::q).toList());
      if (repositories.isEmpty()) {
        a.add("--customize-hook=" + installOutside(names));
      } else {
        // the layer's own sources name their keys by paths inside the chroot: the chroot's apt
        a.add("--customize-hook=chroot \"$1\" apt-get install -y -q " + names);
      }
    }
    Path file = job.work().resolve("layer-" + n + ".sh");
    Files.writeString(file, script);
    a.add(
        "--customize-hook=cp "
            + q(file)
            + " \"$1\"/tmp/osfarm-layer.sh && chroot \"$1\" /bin/sh -e /tmp/osfarm-layer.sh"
            + " && rm -f \"$1\"/tmp/osfarm-layer.sh");
    a.add(
        "--customize-hook=chroot \"$1\" dpkg-query -W -f='${binary:Package}=${Version}\\n' > "
            + q(job.packagesFile(n)));
  }

  /**
   * The hook installing {@code names} (quoted) the way mmdebstrap installs the variant's own
   * packages: apt outside the chroot with mmdebstrap's configuration (the chroot's sources, lists,
   * status and apt.conf.d; the host's apt), dpkg and the maintainer scripts chrooted. apt in the
   * chroot would first rebuild its package cache from the lists (about 1 s for bookworm's main),
   * because the cache mmdebstrap made names the lists by their paths outside; this apt finds that
   * cache valid. TMPDIR and the dpkg wrapper are those of mmdebstrap's own install step.
   */
  static String installOutside(String names) {
    return "TMPDIR=\"$1\"/tmp APT_CONFIG=\"$MMDEBSTRAP_APT_CONFIG\" apt-get -q"
        + " -o Dir::Bin::dpkg=env -o DPkg::Options::=--unset=TMPDIR -o DPkg::Options::=dpkg"
        + " -o DPkg::Chroot-Directory=\"$1\" -y install "
        + names;
  }

  /**
   * A hook that checks out the tree so far as layer {@code k} and streams it to the layer's FIFO in
   * the background while the next layer installs. The checkout hard-links /usr (which dpkg only
   * ever replaces by rename, never rewrites in place) and copies the rest, which is small and
   * includes everything rewritten in place (logs, dpkg and apt state, /etc); then it gets
   * mmdebstrap's own clean-up (package lists, .debs, its apt config, logs, /run, /tmp). /dev is
   * left out: the reader adds the same device entries mmdebstrap writes.
   */
  static String snapshot(Job job, int k) {
    String s = q(job.work().resolve("snap-" + k));
    String rc = q(job.work().resolve("snap-" + k + ".rc"));
    String tarOpts = "--numeric-owner --xattrs --xattrs-include='*'";
    return "set -e; S="
        + s
        + "; mkdir \"$S\"; tar -C \"$1\" --warning=no-file-changed "
        + tarOpts
        + " --one-file-system --exclude=./usr --exclude=./dev --exclude='./proc/*'"
        + " --exclude='./sys/*' --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*.bin'"
        + " --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/cache/apt/archives/partial/*'"
        + " --exclude='./run/*' --exclude='./tmp/*' -cf - . | tar -C \"$S\" "
        + tarOpts
        + " -xpf -; if [ -d \"$1\"/usr ]; then cp -axl \"$1\"/usr \"$S\"/usr; fi;"
        + " if [ -d \"$1\"/usr/lib/osfarm ]; then rm -rf \"$S\"/usr/lib/osfarm;"
        + " cp -ax \"$1\"/usr/lib/osfarm \"$S\"/usr/lib/osfarm; fi;"
        + " mkdir -p \"$S\"/var/lib/apt/lists/partial \"$S\"/run; cp -a \"$1\"/run/lock \"$S\"/run/ 2>/dev/null || true;"
        + " cp -a \"$1\"/var/lib/apt/lists/lock \"$S\"/var/lib/apt/lists/ 2>/dev/null"
        + " || touch \"$S\"/var/lib/apt/lists/lock; rm -rf \"$S\"/var/lib/apt/lists/auxfiles"
        + " \"$S\"/etc/apt/apt.conf.d/00mmdebstrap \"$S\"/var/log/dpkg.log \"$S\"/var/log/apt/history.log"
        + " \"$S\"/var/log/apt/term.log \"$S\"/var/log/alternatives.log"
        + " \"$S\"/var/cache/ldconfig/aux-cache \"$S\"/var/log/apt/eipp.log.xz"
        + " \"$S\"/var/lib/dbus/machine-id \"$S\""
        + UNSAFE_IO
        + "; if [ -e \"$S\"/etc/machine-id ]; then : > \"$S\"/etc/machine-id; fi;"
        + " for d in \"$S\"/sbin \"$S\"/usr/sbin; do [ -d \"$d\" ] && [ ! -L \"$d\" ] || continue;"
        + " rm -f \"$d\"/policy-rc.d; if [ -e \"$d\"/start-stop-daemon.REAL ]; then"
        + " mv -f \"$d\"/start-stop-daemon.REAL \"$d\"/start-stop-daemon; fi; done;"
        + " ( r=0; tar -C \"$S\" "
        + tarOpts
        + " --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"
        + " -cf - . > "
        + q(job.snapshotPipe(k))
        + " || r=$?; rm -rf \"$S\"; echo $r > "
        + rc
        + ".tmp; mv "
        + rc
        + ".tmp "
        + rc
        + " ) </dev/null >/dev/null 2>&1 & echo $! > "
        + q(job.work().resolve("snap-" + k + ".pid"));
  }

  private static boolean isArmored(Path k) throws IOException {
    if (!Files.exists(k)) {
      return false;
    }
    byte[] head = new byte[5];
    try (InputStream in = Files.newInputStream(k)) {
      return in.read(head) == 5 && new String(head, StandardCharsets.US_ASCII).equals("-----");
    }
  }

  @Override
  public Running start(Job job, BuildListener listener) throws IOException {
    List<String> cmd = command(job);
    List<String> mk = new ArrayList<>(List.of("mkfifo", "-m", "0666"));
    for (int k = 0; k < job.then().size(); k++) {
      mk.add(job.snapshotPipe(k).toString());
    }
    if (job.lower() == null) {
      mk.add(tarPipe(job).toString());
    }
    if (mk.size() > 3) {
      ImageBuilder.run(mk);
    }
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD);
    Map<String, String> env = pb.environment();
    env.put("HOME", job.work().toString());
    env.put("TMPDIR", job.work().toString());
    env.put("LC_ALL", "C.UTF-8");
    pb.directory(job.work().toFile());
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new BuildException(
          "cannot run mmdebstrap (" + e.getMessage() + "); install it: apt-get install mmdebstrap",
          e);
    }
    p.getOutputStream().close();
    Deque<String> tail = new ArrayDeque<>();
    List<String> unknown = new ArrayList<>();
    java.util.concurrent.atomic.AtomicBoolean written =
        new java.util.concurrent.atomic.AtomicBoolean();
    Thread logger =
        Thread.ofVirtual()
            .start(
                () -> {
                  try (BufferedReader r =
                      new BufferedReader(
                          new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                      listener.log(line);
                      if (line.equals("I: done")) {
                        written.set(true); // the tarball is complete: only clean-up is left
                      }
                      Matcher m = UNKNOWN_PACKAGE.matcher(line);
                      synchronized (tail) {
                        if (m.find()) {
                          for (int g = 1; g <= 3; g++) {
                            if (m.group(g) != null) {
                              unknown.add(m.group(g));
                            }
                          }
                        }
                        tail.addLast(line);
                        if (tail.size() > 30) {
                          tail.removeFirst();
                        }
                      }
                    }
                  } catch (IOException e) {
                    // the process is gone; finish() reports its status
                  }
                });
    FifoTar tar = new FifoTar(tarPipe(job), p);
    if (job.lower() == null) {
      release(p, tarPipe(job), tar);
    }
    return new Running() {
      @Override
      public InputStream tar() {
        return tar;
      }

      @Override
      public List<String> finish() {
        try {
          // Once the tarball is complete, mmdebstrap only deletes its tree, which can take as long
          // as building it on a busy disk: the caller removes the work directory in the
          // background instead of waiting for that.
          while (!p.waitFor(20, TimeUnit.MILLISECONDS)) {
            if (written.get() && job.lower() == null) {
              return result();
            }
          }
          int rc = p.exitValue();
          logger.join(TimeUnit.SECONDS.toMillis(10));
          if (rc != 0) {
            synchronized (tail) {
              if (!unknown.isEmpty()) {
                throw new SpecException(
                    "unknown package"
                        + (unknown.size() > 1 ? "s " : " ")
                        + String.join(", ", unknown.stream().map(u -> "'" + u + "'").toList())
                        + " in class "
                        + job.distro().name()
                        + " ("
                        + job.arch()
                        + ")");
              }
              throw new BuildException(
                  "mmdebstrap failed building the "
                      + job.kind().label()
                      + " layer (exit "
                      + rc
                      + "):\n  "
                      + String.join("\n  ", tail));
            }
          }
          return result();
        } catch (IOException e) {
          throw new BuildException("reading mmdebstrap's result: " + e.getMessage(), e);
        } catch (InterruptedException e) {
          p.destroyForcibly();
          Thread.currentThread().interrupt();
          throw new BuildException("interrupted", e);
        }
      }

      /** A successful run's packages; its .debs kept. */
      private List<String> result() throws IOException {
        keepDebs(job);
        Path pk = job.work().resolve("packages.txt");
        return Files.exists(pk) ? Files.readAllLines(pk) : List.of();
      }

      @Override
      public ProcessHandle process() {
        return p.toHandle();
      }

      @Override
      public void abort() {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
      }
    };
  }
}
