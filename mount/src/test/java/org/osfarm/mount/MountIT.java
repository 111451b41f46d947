package org.osfarm.mount;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;

/**
 * Real mounts of a real Debian image: the FUSE view against an export of the same snapshot, a
 * chroot that runs apt-get, the cache bound, pins offline, SIGKILL, the writable overlay.
 */
@Tag("slow")
class MountIT {
  @TempDir static Path dir;
  static Path repoDir;
  static Path export;
  static Digest snapshot;
  static long imageBytes;

  @BeforeAll
  static void publishAndExport() throws IOException {
    boolean fuse = Files.exists(Path.of("/dev/fuse"));
    if (!fuse && Programs.inCi()) {
      throw new AssertionError("/dev/fuse is missing; CI must run with FUSE available");
    }
    assumeTrue(fuse, "/dev/fuse is absent");
    Programs.require("fusermount3");
    Path tar = TestImages.bookwormMinbase();
    repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir);
        TarSource s = TarSource.open(tar)) {
      snapshot =
          repo.publish(s, "images/min", "minbase", Map.of(), ProgressListener.NONE).snapshot();
      export = dir.resolve("export");
      repo.export(snapshot, List.of(), ExportFormat.DIR, export, ProgressListener.NONE);
      long[] total = {0};
      repo.walk(
          snapshot,
          (p, e) -> {
            if (e.type() == org.osfarm.core.EntryType.FILE) {
              total[0] += e.size();
            }
          });
      imageBytes = total[0];
    }
  }

  private static MountOptions.Builder opts(String name) throws IOException {
    Path mp = Files.createDirectories(dir.resolve("mnt-" + name));
    return new MountOptions.Builder(repoDir.toString(), "images/min", mp)
        .cacheDir(dir.resolve("cache-" + name));
  }

  @Test
  void chrootRunsAptGetFetchingUnderFivePercent() throws Exception {
    MountOptions o = opts("apt").build();
    long t0 = System.nanoTime();
    try (Mount m = Mount.start(o)) {
      long ready = System.nanoTime();
      String out =
          Programs.run(
              null, "chroot", o.mountpoint().toString(), "/bin/sh", "-c", "apt-get --version");
      long done = System.nanoTime();
      assertThat(out).startsWith("apt ");
      ObjectCache.Stats s = m.cacheStats();
      long stored = ((LocalObjectSource) m.source()).storedBytesRead();
      double share = 100.0 * stored / imageBytes;
      System.out.printf(
          "chroot apt-get --version: mount ready in %d ms, command in %d ms; %d objects, %d"
              + " bytes as stored (%.2f%% of %d image bytes), %d bytes uncompressed (%.2f%%)%n",
          (ready - t0) / 1_000_000,
          (done - ready) / 1_000_000,
          s.objectsFetched(),
          stored,
          share,
          imageBytes,
          s.bytesFetched(),
          100.0 * s.bytesFetched() / imageBytes);
      // What moves from the source is the objects as stored (compressed); uncompressed, whole
      // 128 KiB chunks of the libraries apt-get maps come to about 8% (see docs/mount.md).
      assertThat(share).isLessThan(5.0);
      assertThat(
              Programs.run(
                  null,
                  "getfattr",
                  "--only-values",
                  "-n",
                  "user.osfarm.stats",
                  o.mountpoint().toString()))
          .contains("\"bytesFetched\":");
    }
    assertThat(MountTable.isMounted(o.mountpoint(), MountTable.FUSE_TYPE)).isFalse();
  }

  @Test
  void everyFileMatchesTheExport() throws Exception {
    MountOptions o = opts("compare").build();
    try (Mount m = Mount.start(o)) {
      Path mp = o.mountpoint();
      assertThat(describe(mp)).isEqualTo(describe(export));
      assertThat(contents(mp)).isEqualTo(contents(export));
      assertThat(xattrs(mp)).isEqualTo(xattrs(export));
      assertThat(hardlinkGroups(mp)).isEqualTo(hardlinkGroups(export)).isNotEmpty();
      // read-only
      assertThatThrownBy(() -> Files.writeString(mp.resolve("etc/hostname"), "x"))
          .isInstanceOf(IOException.class);
      String df = Programs.run(null, "stat", "-f", "-c", "%b %S", mp.toString()).trim();
      assertThat(Long.parseLong(df.split(" ")[0]) * 4096).isGreaterThanOrEqualTo(imageBytes);
    }
  }

  /** type, mode, owner, size (not of directories), link count, mtime (ns), link target, rdev. */
  static String describe(Path root) throws IOException {
    return Programs.sh(
        root,
        "{ find . ! -type d -printf '%P %y %m %U %G %s %n %T@ %l\\n';"
            + " find . -type d -printf '%P %y %m %U %G %n %T@\\n';"
            + " find . \\( -type c -o -type b \\) -exec stat -c '%n %t:%T' {} + ; } | LC_ALL=C sort");
  }

  static String contents(Path root) throws IOException {
    return Programs.sh(root, "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum");
  }

  static String xattrs(Path root) throws IOException {
    return Programs.sh(root, "getfattr -R -P -d -m - -e hex . 2>/dev/null || true");
  }

  /** Groups of names that share an inode (hard links), as sorted path sets. */
  static TreeSet<String> hardlinkGroups(Path root) throws IOException {
    Map<String, TreeSet<String>> byIno = new TreeMap<>();
    for (String line :
        Programs.sh(root, "find . -type f -links +1 -printf '%i %P\\n'").split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split(" ", 2);
      byIno.computeIfAbsent(f[0], k -> new TreeSet<>()).add(f[1]);
    }
    TreeSet<String> groups = new TreeSet<>();
    byIno.values().forEach(g -> groups.add(String.join(",", g)));
    return groups;
  }

  @Test
  void cacheStaysWithinItsBoundAndIsReusedByARemount() throws Exception {
    long bound = 4L << 20;
    // A local repository is read directly unless --cache-local: this test wants its reads cached.
    MountOptions o = opts("bound").cacheSize(bound).cacheLocal(true).build();
    String before;
    List<Digest> cached;
    try (Mount m = Mount.start(o)) {
      before = Programs.sh(o.mountpoint(), "sha256sum usr/bin/* | LC_ALL=C sort");
      ObjectCache.Stats s = m.cacheStats();
      System.out.printf(
          "cache bound %d: holds %d bytes, fetched %d, %d evictions%n",
          bound, s.cacheBytes(), s.bytesFetched(), s.evictions());
      assertThat(s.bytesFetched()).isGreaterThan(bound);
      assertThat(s.cacheBytes() - s.pinnedBytes()).isLessThanOrEqualTo(bound);
      assertThat(s.evictions()).isPositive();
    }
    assertThat(before).isEqualTo(Programs.sh(export, "sha256sum usr/bin/* | LC_ALL=C sort"));
    assertThat(diskBytes(o.cacheDir().resolve("objects"))).isLessThanOrEqualTo(bound + (1L << 20));
    // A remount finds the cache as it was left: a file read last is served without fetching.
    try (Mount m = Mount.start(o)) {
      long fetched = m.cacheStats().bytesFetched();
      Programs.sh(o.mountpoint(), "cat usr/bin/zdump > /dev/null");
      assertThat(m.cacheStats().bytesFetched()).isEqualTo(fetched);
    }
  }

  @Test
  void localRepositoryIsReadDirectlyWithoutCopiesInTheCache() throws Exception {
    MountOptions o = opts("direct").build();
    try (Mount m = Mount.start(o)) {
      // sequential reads of every file (read-ahead on) give the exported bytes
      assertThat(Programs.sh(o.mountpoint(), "sha256sum usr/bin/* usr/lib/*/*.so* | LC_ALL=C sort"))
          .isEqualTo(Programs.sh(export, "sha256sum usr/bin/* usr/lib/*/*.so* | LC_ALL=C sort"));
      ObjectCache.Stats s = m.cacheStats();
      assertThat(s.bytesFetched()).isGreaterThan(1L << 20);
      // only the pinned trees are on disk; file contents were read from the repository
      assertThat(s.cacheBytes()).isEqualTo(s.pinnedBytes());
      assertThat(diskBytes(o.cacheDir().resolve("objects"))).isEqualTo(s.pinnedBytes());
    }
  }

  @Test
  void aByteDamagedInALocalPackIsEioForItsFileAndTheRestStillReads() throws Exception {
    Path tree = Files.createDirectories(dir.resolve("damage-tree"));
    byte[] big = new byte[3 << 20]; // random: stored uncompressed, read as views of the pack
    new java.util.Random(7).nextBytes(big);
    Files.write(tree.resolve("big"), big);
    Files.writeString(tree.resolve("note"), "still readable\n");
    Path repo = dir.resolve("damage-repo");
    try (Repository r = Repository.init(repo);
        org.osfarm.core.DirectorySource src =
            new org.osfarm.core.DirectorySource(tree, ProgressListener.NONE)) {
      r.publish(src, "images/damaged", "damage", Map.of(), ProgressListener.NONE);
    }
    Path pack;
    try (var packs = Files.list(repo.resolve("objects/pack"))) {
      pack = packs.filter(f -> f.toString().endsWith(".pack")).findFirst().orElseThrow();
    }
    byte[] all = Files.readAllBytes(pack);
    int at = -1; // where the file's second MiB lies in the pack
    byte[] probe = java.util.Arrays.copyOfRange(big, 1 << 20, (1 << 20) + 64);
    for (int i = 0; i + 64 <= all.length && at < 0; i++) {
      if (java.util.Arrays.equals(all, i, i + 64, probe, 0, 64)) {
        at = i;
      }
    }
    assertThat(at).as("the chunk is stored as is").isPositive();
    try (var ch =
        java.nio.channels.FileChannel.open(pack, java.nio.file.StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(new byte[] {(byte) (big[(1 << 20) + 10] ^ 1)}), at + 10);
    }
    Path mp = Files.createDirectories(dir.resolve("mnt-damage"));
    MountOptions o =
        new MountOptions.Builder(repo.toString(), "images/damaged", mp)
            .cacheDir(dir.resolve("cache-damage"))
            .build();
    try (Mount m = Mount.start(o)) {
      assertThatThrownBy(() -> Programs.sh(mp, "cat big > /dev/null"))
          .hasMessageContaining("Input/output error");
      // the start of the file, in chunks before the damaged one (chunks are at most 512 KiB),
      // reads as published
      assertThat(Programs.sh(mp, "head -c 262144 big | sha256sum"))
          .isEqualTo(Programs.sh(tree, "head -c 262144 big | sha256sum"));
      assertThat(Programs.sh(mp, "cat note")).isEqualTo("still readable\n");
    }
  }

  static long diskBytes(Path p) throws IOException {
    try (var s = Files.walk(p)) {
      return s.filter(Files::isRegularFile)
          .mapToLong(
              f -> {
                try {
                  return Files.size(f);
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              })
          .sum();
    }
  }

  @Test
  void pinnedPathsWorkOffline() throws Exception {
    Path pins = dir.resolve("pins");
    Files.writeString(pins, "# pinned\n/usr/bin/dpkg\netc\nusr/lib/apt\n");
    long bound = 256L << 10;
    MountOptions online = opts("pins").pin(pins).cacheSize(bound).build();
    try (Mount m = Mount.start(online)) {
      ObjectCache.Stats s = m.cacheStats();
      assertThat(s.pinnedBytes()).isGreaterThan(bound); // pins exceed the bound and stay
      assertThat(s.cacheBytes()).isGreaterThanOrEqualTo(s.pinnedBytes());
    }
    MountOptions offline = opts("pins").pin(pins).cacheSize(bound).offline(true).build();
    try (Mount m = Mount.start(offline)) {
      Path mp = offline.mountpoint();
      assertThat(Programs.sh(mp, "sha256sum usr/bin/dpkg etc/passwd usr/lib/apt/methods/http"))
          .isEqualTo(
              Programs.sh(export, "sha256sum usr/bin/dpkg etc/passwd usr/lib/apt/methods/http"));
      assertThat(Programs.sh(mp, "ls usr/bin | wc -l"))
          .isEqualTo(Programs.sh(export, "ls usr/bin | wc -l"));
      // Not pinned, never read: EIO, not wrong data.
      assertThatThrownBy(() -> Programs.sh(mp, "cat usr/bin/apt-get > /dev/null"))
          .hasMessageContaining("Input/output error");
      assertThat(m.cacheStats().bytesFetched()).isZero();
    }
  }

  @Test
  void sigkillOfTheMountProcessLeavesNoStaleMount() throws Exception {
    MountOptions o = opts("kill").build();
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(MountMain.class.getName());
    cmd.addAll(
        List.of(
            repoDir.toString(),
            "images/min",
            o.mountpoint().toString(),
            "--cache",
            o.cacheDir().toString(),
            "--foreground"));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("kill.log").toFile())
            .start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (!MountTable.isMounted(o.mountpoint(), MountTable.FUSE_TYPE)) {
        assertThat(p.isAlive()).as(Files.readString(dir.resolve("kill.log"))).isTrue();
        assertThat(System.nanoTime()).isLessThan(deadline);
        Thread.sleep(50);
      }
      assertThat(Programs.run(null, "cat", o.mountpoint().resolve("etc/debian_version").toString()))
          .isEqualTo(Files.readString(export.resolve("etc/debian_version")));
      Programs.run(null, "kill", "-KILL", Long.toString(p.pid()));
      p.waitFor(10, TimeUnit.SECONDS);
      long deadline2 = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (Files.readString(Path.of("/proc/mounts")).contains(" " + o.mountpoint() + " ")) {
        assertThat(System.nanoTime()).as("stale mount after SIGKILL").isLessThan(deadline2);
        Thread.sleep(50);
      }
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void writableOverlayTakesChangesAndAPackageInstall() throws Exception {
    Path scratch = dir.resolve("scratch");
    MountOptions o = opts("rw").writable(scratch).build();
    Path deb = helloDeb();
    try (Mount m = Mount.start(o)) {
      Path mp = o.mountpoint();
      Files.copy(deb, mp.resolve("tmp/osfarm-hello.deb"));
      Programs.run(
          null,
          "chroot",
          mp.toString(),
          "/bin/sh",
          "-c",
          "echo changed > /etc/motd && mkdir -p /root/work && echo hi > /root/work/file"
              + " && rm /etc/hostname && dpkg -i /tmp/osfarm-hello.deb && osfarm-hello");
      assertThat(Files.readString(mp.resolve("usr/share/osfarm-hello/greeting")))
          .isEqualTo("hello\n");
      Path upper = scratch.resolve("upper");
      assertThat(upper.resolve("etc/motd")).hasContent("changed");
      assertThat(upper.resolve("root/work/file")).hasContent("hi");
      assertThat(upper.resolve("usr/share/osfarm-hello/greeting")).exists();
      assertThat(Files.readString(upper.resolve("var/lib/dpkg/status")))
          .contains("Package: osfarm-hello");
      // the deletion is a whiteout (a 0:0 character device)
      assertThat(
              Programs.run(null, "stat", "-c", "%F %t:%T", upper.resolve("etc/hostname").toString())
                  .trim())
          .isEqualTo("character special file 0:0");
      // the read-only view is unchanged
      Path lower = scratch.resolve("lower");
      assertThat(Files.readString(lower.resolve("var/lib/dpkg/status")))
          .isEqualTo(Files.readString(export.resolve("var/lib/dpkg/status")));
      assertThat(lower.resolve("etc/hostname")).exists();
      assertThat(lower.resolve("usr/share/osfarm-hello")).doesNotExist();
      String props = Files.readString(scratch.resolve(Mount.SCRATCH_PROPERTIES));
      assertThat(props).contains("base=" + snapshot.hex()).contains("ref=images/min");
    }
    assertThat(MountTable.isMounted(o.mountpoint(), "overlay")).isFalse();
    assertThat(MountTable.isMounted(scratch.resolve("lower"), MountTable.FUSE_TYPE)).isFalse();
  }

  /** A real (tiny) Debian package, built with dpkg-deb. */
  static Path helloDeb() throws IOException {
    Programs.require("dpkg-deb");
    Path root = dir.resolve("hello-pkg");
    Files.createDirectories(root.resolve("DEBIAN"));
    Files.createDirectories(root.resolve("usr/share/osfarm-hello"));
    Files.createDirectories(root.resolve("usr/bin"));
    Files.writeString(
        root.resolve("DEBIAN/control"),
        "Package: osfarm-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: osfarm <osfarm@example.org>\n"
            + "Description: test package for writable mounts\n");
    Files.writeString(root.resolve("usr/share/osfarm-hello/greeting"), "hello\n");
    Path bin = root.resolve("usr/bin/osfarm-hello");
    Files.writeString(bin, "#!/bin/sh\ncat /usr/share/osfarm-hello/greeting\n");
    bin.toFile().setExecutable(true, false);
    Path deb = dir.resolve("osfarm-hello_1.0_all.deb");
    Programs.run(
        null, "dpkg-deb", "--root-owner-group", "--build", root.toString(), deb.toString());
    return deb;
  }

  @Test
  void followServesANewSnapshotToNewlyOpenedPaths() throws Exception {
    Path tar = TestImages.bookwormMinbase();
    try (Repository repo = Repository.open(repoDir)) {
      // a second ref that will move
      repo.tag("channels/testing", snapshot.hex());
    }
    MountOptions o =
        opts("follow")
            .ref("channels/testing")
            .follow(true)
            .followInterval(Duration.ofMillis(300))
            .build();
    try (Mount m = Mount.start(o)) {
      Path mp = o.mountpoint();
      assertThat(Files.exists(mp.resolve("etc/osfarm-release"))).isFalse();
      Path tree = dir.resolve("follow-tree");
      Programs.run(null, "mkdir", "-p", tree.resolve("etc").toString());
      Files.writeString(tree.resolve("etc/osfarm-release"), "2\n");
      try (Repository repo = Repository.open(repoDir);
          var src = new org.osfarm.core.DirectorySource(tree, ProgressListener.NONE)) {
        repo.publish(src, "channels/testing", "next", Map.of(), ProgressListener.NONE);
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!Files.exists(mp.resolve("etc/osfarm-release"))) {
        assertThat(System.nanoTime()).as("--follow never switched").isLessThan(deadline);
        Thread.sleep(200);
      }
      assertThat(Files.readString(mp.resolve("etc/osfarm-release"))).isEqualTo("2\n");
      assertThat(m.snapshot()).isNotEqualTo(snapshot);
    }
    assertThat(tar).exists();
  }

  @Test
  void remoteMountOverHttpAndEioWhenTheServerIsGone() throws Exception {
    try (Repository repo = Repository.open(repoDir)) {
      org.osfarm.transfer.TransferServer server =
          new org.osfarm.transfer.TransferServer(
              new java.net.InetSocketAddress("127.0.0.1", 0),
              new org.osfarm.transfer.ObjectProtocol(repo, false),
              null);
      String url = "http://127.0.0.1:" + server.address().getPort();
      Path mp = Files.createDirectories(dir.resolve("mnt-remote"));
      MountOptions o =
          new MountOptions.Builder(url, "images/min", mp)
              .cacheDir(dir.resolve("cache-remote"))
              .build();
      try (Mount m = Mount.start(o)) {
        assertThat(
                Programs.run(null, "chroot", mp.toString(), "/bin/sh", "-c", "apt-get --version"))
            .startsWith("apt ");
        assertThat(m.source().bytesFetched()).isPositive();
        String passwd = Files.readString(mp.resolve("etc/passwd"));
        server.close();
        // cached data stays readable; what was never fetched is EIO, not wrong data
        assertThat(Files.readString(mp.resolve("etc/passwd"))).isEqualTo(passwd);
        assertThatThrownBy(() -> Programs.sh(mp, "cat usr/bin/perl > /dev/null"))
            .hasMessageContaining("Input/output error");
      } finally {
        server.close();
      }
    }
  }
}
