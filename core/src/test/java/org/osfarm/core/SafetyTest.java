package org.osfarm.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.Zstd;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.core.testing.TreeDescription;
import org.osfarm.core.testing.TreeDescription.Mode;

/**
 * The repository stays intact whatever happens: hostile or corrupt input, exports into hostile
 * trees, SIGKILL in the middle of a publish, damaged packs and indexes, racing ref updates, gc
 * during publishes.
 */
class SafetyTest {

  // ================================================================ 1. hostile and corrupt tars

  /** Makes a bad archive in a scratch directory and returns its path. */
  @FunctionalInterface
  interface TarMaker {
    Path make(Path work) throws Exception;
  }

  static Stream<Arguments> hostileTars() {
    return Stream.of(
        bad("name ../evil", w -> raw(w, preludeTar(1).file("../evil", bytes("x"))), "'..' in name"),
        bad(
            "name a/../../b",
            w -> raw(w, preludeTar(2).file("a/../../b", bytes("x"))),
            "'..' in name"),
        bad("name ..", w -> raw(w, preludeTar(3).dir("..")), "'..' in name"),
        bad(
            "absolute name /etc/x",
            w -> raw(w, preludeTar(4).file("/etc/x", bytes("x"))),
            "absolute name"),
        bad(
            "GNU tar -P with an absolute name",
            w -> gnuTar(w, List.of("-P"), true),
            "absolute name in archive: '/"),
        bad(
            "GNU tar --transform to ../../x",
            w -> gnuTar(w, List.of("-P", "--transform=s,^x$,../../x,"), false),
            "'..' in name '../../x'"),
        bad(
            "duplicate file",
            w -> raw(w, preludeTar(5).file("dup", bytes("one")).file("dup", bytes("two"))),
            "duplicate entry in archive: 'dup'"),
        bad(
            "duplicate directory",
            w -> raw(w, preludeTar(6).dir("d").file("d/f", bytes("f")).dir("d")),
            "duplicate entry in archive: 'd"),
        bad(
            "directory replacing a file",
            w -> raw(w, preludeTar(7).file("f", bytes("f")).dir("f")),
            "duplicate entry in archive: 'f"),
        bad(
            "hard link to ../etc/passwd",
            w -> raw(w, preludeTar(8).hardlink("h", "../etc/passwd")),
            "'..' in hard link target"),
        bad(
            "hard link to a/../../x",
            w -> raw(w, preludeTar(9).file("a/x", bytes("x")).hardlink("h", "a/../../x")),
            "'..' in hard link target"),
        bad(
            "hard link to /etc/passwd",
            w -> raw(w, preludeTar(10).hardlink("h", "/etc/passwd")),
            "points outside the image"),
        bad(
            "hard link to a name not in the archive",
            w -> raw(w, preludeTar(11).hardlink("h", "missing/file")),
            "which is not in the archive"),
        bad(
            "hard link through a symlink",
            w -> raw(w, preludeTar(12).symlink("s", "/etc").hardlink("h", "s/passwd")),
            "which is not in the archive"),
        bad(
            "hard link to a directory",
            w -> raw(w, preludeTar(13).dir("d").hardlink("h", "d")),
            "only regular files can be hard-linked"),
        bad(
            "hard link cycle",
            w -> raw(w, preludeTar(14).hardlink("a", "b").hardlink("b", "a")),
            "cycle"),
        bad(
            "file under a symlink",
            w -> raw(w, preludeTar(15).symlink("link", "/etc").file("link/x", bytes("x"))),
            "'link/x' is inside 'link', which is not a directory"),
        bad(
            "file under a regular file",
            w -> raw(w, preludeTar(16).file("f", bytes("f")).file("f/x", bytes("x"))),
            "'f/x' is inside 'f', which is not a directory"),
        bad(
            "symlink replacing the directory of earlier entries",
            w -> raw(w, preludeTar(17).file("d/x", bytes("x")).symlink("d", "/etc")),
            "duplicate entry in archive: 'd'"),
        bad(
            "truncated inside a file's content",
            w -> {
              RawTar t = preludeTar(18).file("victim", random(100_000, 18));
              byte[] b = t.finish();
              return write(w, Arrays.copyOf(b, (int) t.contentOffset("victim") + 40_000));
            },
            "truncated"),
        bad(
            "truncated inside a chunked file's content",
            w -> {
              RawTar t = preludeTar(19).file("big", random(2_000_000, 19));
              byte[] b = t.finish();
              return write(w, Arrays.copyOf(b, (int) t.contentOffset("big") + 1_500_003));
            },
            "truncated"),
        bad(
            "truncated inside a header",
            w -> {
              RawTar t = preludeTar(20).file("victim", random(1000, 20));
              byte[] b = t.finish();
              return write(w, Arrays.copyOf(b, (int) t.headerOffset("victim") + 200));
            },
            "truncated at offset"),
        bad(
            "GNU tar archive cut in the middle",
            w -> {
              Path tar = gnuTar(w, List.of(), false);
              byte[] b = Files.readAllBytes(tar);
              return write(w, Arrays.copyOf(b, b.length / 2 + 7));
            },
            "truncated"),
        bad(
            "corrupted header checksum",
            w -> {
              RawTar t = preludeTar(21).file("victim", random(1000, 21));
              byte[] b = t.finish();
              b[(int) t.headerOffset("victim") + 265] ^= 0x20; // one byte of uname
              return write(w, b);
            },
            "checksum mismatch"),
        bad(
            "not a tar at all",
            w -> write(w, random(20_000, 22)),
            "invalid tar archive at offset 0"),
        bad(
            "gzip header, garbage body",
            w -> {
              byte[] b = random(200_000, 23);
              byte[] head = {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
              System.arraycopy(head, 0, b, 0, head.length);
              return write(w, b);
            },
            "corrupt"),
        bad(
            "truncated gzip",
            w -> {
              ByteArrayOutputStream bo = new ByteArrayOutputStream();
              try (GZIPOutputStream gz = new GZIPOutputStream(bo)) {
                gz.write(preludeTar(24).file("victim", random(300_000, 24)).finish());
              }
              byte[] b = bo.toByteArray();
              return write(w, Arrays.copyOf(b, b.length * 3 / 4));
            },
            "truncated"),
        bad(
            "gzip with a flipped byte in the middle",
            w -> {
              ByteArrayOutputStream bo = new ByteArrayOutputStream();
              try (GZIPOutputStream gz = new GZIPOutputStream(bo)) {
                gz.write(preludeTar(25).file("victim", bytes("a".repeat(300_000))).finish());
              }
              byte[] b = bo.toByteArray();
              b[b.length - 200] ^= 0x55;
              return write(w, b);
            },
            "corrupt|not a tar header|checksum"),
        bad(
            "zstd magic, garbage body",
            w -> {
              byte[] b = random(200_000, 26);
              byte[] head = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};
              System.arraycopy(head, 0, b, 0, head.length);
              return write(w, b);
            },
            "zstd"),
        bad(
            "truncated zstd",
            w -> {
              byte[] z =
                  Zstd.compress(preludeTar(27).file("victim", random(300_000, 27)).finish(), 3);
              return write(w, Arrays.copyOf(z, z.length * 3 / 4));
            },
            "corrupt zstd archive: Truncated"),
        bad("GNU sparse file (gnu format)", w -> sparseTar(w, "--format=gnu"), "sparse"),
        bad(
            "GNU sparse file (pax, sparse format 0.0)",
            w -> sparseTar(w, "--format=pax", "--sparse-version=0.0"),
            "sparse"),
        bad(
            "GNU sparse file (pax, sparse format 0.1)",
            w -> sparseTar(w, "--format=pax", "--sparse-version=0.1"),
            "sparse"),
        bad(
            "GNU sparse file (pax, sparse format 1.0)",
            w -> sparseTar(w, "--format=pax", "--sparse-version=1.0"),
            "sparse"));
  }

  /**
   * @param message what the error must say: fragments separated by '|', any one of which will do
   */
  private static Arguments bad(String name, TarMaker maker, String message) {
    return Arguments.of(Named.of(name, maker), message);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileTars")
  void hostileOrCorruptTarIsRefusedAndLeavesTheRepositoryUntouched(
      TarMaker maker, String expectedMessage, @TempDir Path dir) throws Exception {
    Path work = Files.createDirectories(dir.resolve("work"));
    Path bad = maker.make(work);
    Path repoDir = dir.resolve("repo");
    Digest good;
    Map<String, String> goodTree;
    try (Repository repo = Repository.init(repoDir)) {
      good = publish(repo, goodTar(), "good");
      goodTree = exportedTree(repo, good, dir.resolve("good.tar"));
    }
    Map<String, String> before = repoState(repoDir);
    try (Repository repo = Repository.open(repoDir)) {
      assertThatThrownBy(
              () -> {
                try (TarSource src = TarSource.open(bad)) {
                  repo.publish(src, "good", "hostile", Map.of(), ProgressListener.NONE);
                }
              })
          .isInstanceOf(InvalidInputException.class)
          .satisfies(
              e ->
                  assertThat(expectedMessage.split("\\|"))
                      .as("message '%s'", e.getMessage())
                      .anySatisfy(m -> assertThat(e.getMessage()).contains(m)));
      // Also under a new ref: the failure must not create it.
      assertThatThrownBy(
              () -> {
                try (TarSource src = TarSource.open(bad)) {
                  repo.publish(src, "other", "hostile", Map.of(), ProgressListener.NONE);
                }
              })
          .isInstanceOf(InvalidInputException.class);
    }
    assertThat(repoState(repoDir)).isEqualTo(before);
    try (Repository repo = Repository.open(repoDir)) {
      assertThat(repo.resolve("good")).isEqualTo(good);
      assertThat(repo.refs().list()).containsOnlyKeys("good");
      assertThat(repo.refs().log("good")).hasSize(1);
      assertThat(repo.refs().log("other")).isEmpty();
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems()).isEmpty();
      assertThat(f.snapshots()).isEqualTo(1);
      assertThat(exportedTree(repo, good, dir.resolve("again.tar"))).isEqualTo(goodTree);
    }
  }

  /**
   * Many valid files (small and chunked) before the bad part, so the publish has really written
   * objects when it fails.
   */
  static RawTar preludeTar(long seed) {
    RawTar t = new RawTar();
    t.dir("pre");
    for (int i = 0; i < 150; i++) {
      t.file("pre/f" + i, random(16_000 + i, seed * 1000 + i));
    }
    t.file("pre/chunked", random(700_000, seed * 1000 + 999));
    return t;
  }

  static byte[] goodTar() throws IOException {
    RawTar t = new RawTar();
    t.dir("etc");
    t.file("etc/hello", bytes("hello\n"));
    t.file("etc/big", random(600_000, 4242));
    t.symlink("etc/link", "hello");
    t.hardlink("etc/hard", "etc/hello");
    return t.finish();
  }

  private static Path raw(Path work, RawTar t) throws IOException {
    return write(work, t.finish());
  }

  private static Path write(Path work, byte[] b) throws IOException {
    Path p = work.resolve("bad.tar");
    Files.write(p, b);
    return p;
  }

  /** A GNU tar archive of a small tree (with an absolute name if asked). */
  private static Path gnuTar(Path work, List<String> options, boolean absolute) throws IOException {
    Programs.require("tar");
    Path src = Files.createDirectories(work.resolve("src"));
    Files.write(src.resolve("a"), random(300_000, 77));
    Files.write(src.resolve("b"), random(300_000, 78));
    Files.write(src.resolve("x"), bytes("x"));
    Path tar = work.resolve("gnu.tar");
    List<String> cmd = new ArrayList<>(List.of("tar", "--sort=name", "-cf", tar.toString()));
    cmd.addAll(options);
    if (absolute) {
      cmd.addAll(List.of("a", src.resolve("x").toAbsolutePath().toString()));
    } else {
      cmd.addAll(List.of("a", "b", "x"));
    }
    Programs.run(src, cmd);
    return tar;
  }

  /** A GNU tar archive holding valid files and then a sparse file. */
  private static Path sparseTar(Path work, String... options) throws IOException {
    Programs.require("tar");
    Path src = Files.createDirectories(work.resolve("src"));
    for (int i = 0; i < 20; i++) {
      Files.write(src.resolve("a" + i), random(20_000, 100 + i));
    }
    Programs.sh(
        src,
        "truncate -s 4M zz-sparse && printf 'data' | dd of=zz-sparse bs=1 seek=2000000 conv=notrunc"
            + " status=none");
    Path tar = work.resolve("sparse.tar");
    List<String> cmd = new ArrayList<>(List.of("tar", "--sort=name", "-S"));
    cmd.addAll(List.of(options));
    cmd.addAll(List.of("-cf", tar.toString(), "."));
    Programs.run(src, cmd);
    return tar;
  }

  // ================================================================ 2. directory export

  @Test
  void directoryExportNeverWritesOutsideItsTarget(@TempDir Path dir) throws Exception {
    Path outside = Files.createDirectories(dir.resolve("outside-" + System.nanoTime()));
    Files.writeString(outside.resolve("precious"), "keep me");
    Map<String, String> outsideBefore = fileTree(outside);
    RawTar t = new RawTar();
    t.symlink("escape", outside.toString());
    t.symlink("abs", "/");
    t.symlink("rel", "../../../../../../../../../..");
    t.symlink("up", "..");
    t.dir("etc");
    t.file("etc/hello", bytes("hello\n"));
    t.file("escape-not", bytes("a file beside the symlink\n"));
    t.dir("sub");
    t.symlink("sub/back", "../escape");
    t.file("sub/z", bytes("z"));
    byte[] tar = t.finish();
    Path out = dir.resolve("out");
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest id = publish(repo, tar, "t");
      repo.export(id, List.of(), ExportFormat.DIR, out, ProgressListener.NONE);
      assertThat(fileTree(outside)).isEqualTo(outsideBefore);
      assertThat(Files.readSymbolicLink(out.resolve("escape"))).isEqualTo(outside);
      assertThat(Files.readSymbolicLink(out.resolve("abs"))).isEqualTo(Path.of("/"));
      assertThat(Files.readSymbolicLink(out.resolve("rel")))
          .isEqualTo(Path.of("../../../../../../../../../.."));
      assertThat(Files.readSymbolicLink(out.resolve("sub/back"))).isEqualTo(Path.of("../escape"));
      for (String s : List.of("escape", "abs", "rel", "up", "sub/back")) {
        assertThat(Files.isSymbolicLink(out.resolve(s))).as(s).isTrue();
      }
      assertThat(Files.readString(out.resolve("etc/hello"))).isEqualTo("hello\n");
      Map<String, String> exported = new TreeMap<>(TreeDescription.ofDirectory(out));
      exported.remove("."); // the target directory itself: the archive has no root entry
      assertThat(exported).isEqualTo(TreeDescription.describe(tarSource(tar), Mode.FILESYSTEM));

      // Selecting a path through a symlink exports nothing and writes nothing.
      Path out2 = dir.resolve("out2");
      assertThatThrownBy(
              () ->
                  repo.export(
                      id,
                      List.of(Bytes.utf8("escape/precious")),
                      ExportFormat.DIR,
                      out2,
                      ProgressListener.NONE))
          .isInstanceOf(NotFoundException.class);
      assertThatThrownBy(
              () ->
                  repo.export(
                      id,
                      List.of(Bytes.utf8("etc/../abs")),
                      ExportFormat.DIR,
                      out2,
                      ProgressListener.NONE))
          .isInstanceOf(NotFoundException.class);
      assertThat(fileTree(outside)).isEqualTo(outsideBefore);

      // A non-empty target is refused and left as it was.
      Map<String, String> outBefore = fileTree(out);
      assertThatThrownBy(
              () -> repo.export(id, List.of(), ExportFormat.DIR, out, ProgressListener.NONE))
          .isInstanceOf(RepositoryException.class)
          .hasMessageContaining("not empty");
      assertThat(fileTree(out)).isEqualTo(outBefore);
      Path nonEmpty = Files.createDirectories(dir.resolve("nonempty"));
      Files.writeString(nonEmpty.resolve("mine"), "mine");
      assertThatThrownBy(
              () -> repo.export(id, List.of(), ExportFormat.DIR, nonEmpty, ProgressListener.NONE))
          .isInstanceOf(RepositoryException.class);
      assertThat(fileTree(nonEmpty)).isEqualTo(Map.of("mine", sha256(bytes("mine"))));

      // A target that is a symlink to a directory elsewhere is not followed.
      Path linkTarget = dir.resolve("link-target");
      Files.createSymbolicLink(linkTarget, Files.createDirectories(dir.resolve("empty-elsewhere")));
      assertThatThrownBy(
              () -> repo.export(id, List.of(), ExportFormat.DIR, linkTarget, ProgressListener.NONE))
          .isInstanceOf(RepositoryException.class);
      assertThat(fileTree(dir.resolve("empty-elsewhere"))).isEmpty();
      assertThat(fileTree(outside)).isEqualTo(outsideBefore);
    }
  }

  /**
   * A snapshot that could never come from publish (crafted objects naming {@code ..}, or a hard
   * link through a symlink) is refused at export instead of being written out.
   */
  @Test
  void craftedHostileSnapshotsAreRefusedAtExport(@TempDir Path dir) throws Exception {
    Path outside = Files.createDirectories(dir.resolve("outside"));
    Files.writeString(outside.resolve("target"), "outside file");
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest blob;
      Digest dotdot;
      Digest hardThroughSymlink;
      try (ObjectStore.Inserter ins = repo.store().newInserter()) {
        byte[] data = bytes("pwned");
        blob = ins.insert(ObjectType.BLOB, data, 0, data.length);
        Entry file = fileEntry("pwned", blob, data.length);
        Digest inner = tree(ins, List.of(file));
        // A tree entry named "..": a naive exporter would write ../pwned.
        Digest top = tree(ins, List.of(dirEntry("..", inner)));
        dotdot = snapshot(ins, top);
        Entry esc = linkEntry("escape", EntryType.SYMLINK, outside.toString());
        Entry hard = linkEntry("h", EntryType.HARDLINK, "escape/target");
        Digest top2 = tree(ins, List.of(esc, hard));
        hardThroughSymlink = snapshot(ins, top2);
        ins.flush();
      }
      Path out = dir.resolve("out");
      assertThatThrownBy(
              () -> repo.export(dotdot, List.of(), ExportFormat.DIR, out, ProgressListener.NONE))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("invalid entry name");
      assertThat(Files.exists(dir.resolve("pwned"))).isFalse();
      Path out2 = dir.resolve("out2");
      assertThatThrownBy(
              () ->
                  repo.export(
                      hardThroughSymlink, List.of(), ExportFormat.DIR, out2, ProgressListener.NONE))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("escape/target");
      assertThat(Files.exists(out2.resolve("h"))).isFalse();
      assertThat(Files.readString(outside.resolve("target"))).isEqualTo("outside file");
      assertThat(Files.getAttribute(outside.resolve("target"), "unix:nlink")).isEqualTo(1);
      Path outTar = dir.resolve("out.tar");
      assertThatThrownBy(
              () ->
                  repo.export(
                      hardThroughSymlink,
                      List.of(),
                      ExportFormat.TAR,
                      outTar,
                      ProgressListener.NONE))
          .isInstanceOf(CorruptObjectException.class);
      assertThat(Files.exists(outTar)).isFalse();
    }
  }

  private static Entry fileEntry(String name, Digest content, long size) {
    return new Entry(
        bytes(name),
        EntryType.FILE,
        0644,
        0,
        0,
        null,
        null,
        0,
        0,
        size,
        content,
        content,
        null,
        0,
        0,
        List.of(),
        List.of(),
        0);
  }

  private static Entry dirEntry(String name, Digest tree) {
    return new Entry(
        bytes(name),
        EntryType.DIR,
        0755,
        0,
        0,
        null,
        null,
        0,
        0,
        0,
        tree,
        null,
        null,
        0,
        0,
        List.of(),
        List.of(),
        0);
  }

  private static Entry linkEntry(String name, EntryType type, String target) {
    return new Entry(
        bytes(name),
        type,
        0777,
        0,
        0,
        null,
        null,
        0,
        0,
        0,
        null,
        null,
        bytes(target),
        0,
        0,
        List.of(),
        List.of(),
        0);
  }

  private static Digest tree(ObjectStore.Inserter ins, List<Entry> entries) {
    byte[] b = ObjectCodec.encodeTree(entries);
    return ins.insert(ObjectType.TREE, b, 0, b.length);
  }

  private static Digest snapshot(ObjectStore.Inserter ins, Digest tree) {
    Entry root = dirEntry("", tree);
    byte[] b =
        ObjectCodec.encodeSnapshot(
            new Snapshot(root, List.of(), Instant.now(), "crafted", Map.of()));
    return ins.insert(ObjectType.SNAPSHOT, b, 0, b.length);
  }

  // ================================================================ 3. kill -9 during publish

  private enum Trigger {
    START,
    READY,
    TREES
  }

  private record Kill(Trigger after, long millis) {}

  @Test
  @Tag("slow")
  void killedPublishesNeverDamageTheRepository(@TempDir Path dir) throws Exception {
    Path image = TestImages.bookwormMinbase();
    Path repoDir = dir.resolve("repo");
    byte[] small = goodTar();
    Digest a;
    Map<String, String> aTree;
    try (Repository repo = Repository.init(repoDir)) {
      a = publish(repo, small, "A");
      aTree = exportedTree(repo, a, dir.resolve("a0.tar"));
      assertThat(aTree).isEqualTo(TreeDescription.describe(tarSource(small), Mode.STRICT));
    }
    // How long a publish of the image takes on this machine, measured in a scratch repository, so
    // the kills below land in every part of it however fast or slow the machine is.
    Child probe = Child.start(dir.resolve("probe"), image, "B", dir.resolve("child.err"));
    assertThat(probe.process.waitFor(10, TimeUnit.MINUTES)).isTrue();
    assertThat(probe.process.exitValue()).as(Files.readString(dir.resolve("child.err"))).isZero();
    probe.await(null);
    long ready = probe.millisAt("ready");
    long total = probe.millisAt("done") - ready;
    long tail = probe.millisAt("done") - probe.millisAt("phase writing trees");
    assertThat(total).isPositive();
    deleteTree(dir.resolve("probe"));

    List<Kill> kills = new ArrayList<>();
    kills.add(new Kill(Trigger.START, 50)); // while the JVM starts
    kills.add(new Kill(Trigger.READY, 0)); // as the publish begins
    for (int pct : new int[] {10, 25, 40, 55, 70, 85}) {
      kills.add(new Kill(Trigger.READY, total * pct / 100)); // while reading and storing content
    }
    kills.add(new Kill(Trigger.TREES, 0)); // writing trees
    for (int pct : new int[] {50, 80, 95}) {
      kills.add(new Kill(Trigger.TREES, tail * pct / 100)); // flushing the pack, moving the ref
    }
    Path objects = repoDir.resolve("objects");
    List<Digest> completedTrees = new ArrayList<>();
    int killedMidway = 0;
    boolean sawLeftovers = false;
    for (Kill k : kills) {
      Child c = Child.start(repoDir, image, "B", dir.resolve("child.err"));
      if (c.await(k.after)) {
        Thread.sleep(k.millis);
      }
      c.process.destroyForcibly();
      assertThat(c.process.waitFor(60, TimeUnit.SECONDS)).isTrue();
      boolean finished = c.lines.stream().anyMatch(l -> l.startsWith("done "));
      if (!finished) {
        assertThat(c.process.exitValue())
            .as("child exit for %s; stderr: %s", k, Files.readString(dir.resolve("child.err")))
            .isEqualTo(137);
        killedMidway++;
      }
      sawLeftovers |= !leftovers(objects).isEmpty();
      try (Repository repo = Repository.open(repoDir)) {
        assertThat(repo.resolve("A")).as("after kill %s", k).isEqualTo(a);
        assertThat(repo.refs().log("A")).hasSize(1);
        Optional<Digest> b = repo.refs().get("B");
        FsckReport f = repo.fsck(ProgressListener.NONE);
        assertThat(f.problems()).as("fsck after kill %s", k).isEmpty();
        assertThat(f.snapshots()).isEqualTo(b.isPresent() ? 2 : 1);
        assertThat(exportedTree(repo, a, dir.resolve("a.tar"))).isEqualTo(aTree);
        if (b.isPresent()) {
          // The publish won the race against the kill: it is complete (fsck above); keep its tree
          // to compare, then drop it so the next publish has to store everything again.
          completedTrees.add(repo.readSnapshot(b.get()).tree());
          repo.deleteRef("B");
          repo.expireReflogs(Instant.now().plusSeconds(1));
          repo.gc(ProgressListener.NONE);
          assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
        }
      }
    }
    assertThat(killedMidway).as("publishes actually interrupted").isGreaterThanOrEqualTo(6);
    assertThat(sawLeftovers).as("interrupted publishes leave temporary files").isTrue();

    try (Repository repo = Repository.open(repoDir)) {
      long storedBefore = repo.store().storedBytes();
      GcReport gc = repo.gc(ProgressListener.NONE);
      assertThat(leftovers(objects)).isEmpty();
      try (Stream<Path> s = Files.list(objects.resolve("tmp"))) {
        assertThat(s).isEmpty();
      }
      assertThat(repo.store().storedBytes()).isLessThanOrEqualTo(storedBefore);
      assertThat(gc.reachableObjects()).isPositive();
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems()).isEmpty();
      assertThat(repo.resolve("A")).isEqualTo(a);
    }

    // A normal publish (in a child JVM, like the ones killed) completes.
    Child c = Child.start(repoDir, image, "B", dir.resolve("child.err"));
    assertThat(c.process.waitFor(10, TimeUnit.MINUTES)).isTrue();
    assertThat(c.process.exitValue())
        .as("stderr: %s", Files.readString(dir.resolve("child.err")))
        .isZero();
    c.await(null);
    String done = c.lines.stream().filter(l -> l.startsWith("done ")).findFirst().orElseThrow();
    Digest b = Digest.fromHex(done.substring(5));
    try (Repository repo = Repository.open(repoDir)) {
      assertThat(repo.resolve("B")).isEqualTo(b);
      assertThat(repo.resolve("A")).isEqualTo(a);
      Digest tree = repo.readSnapshot(b).tree();
      // A publish that won the race against its kill had stored the complete image.
      assertThat(completedTrees).allSatisfy(t -> assertThat(t).isEqualTo(tree));
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems()).isEmpty();
      Path out = dir.resolve("b.tar");
      repo.export(b, List.of(), ExportFormat.TAR, out, ProgressListener.NONE);
      assertThat(TreeDescription.ofTar(out, Mode.STRICT))
          .isEqualTo(TreeDescription.ofTar(image, Mode.STRICT));
      assertThat(exportedTree(repo, a, dir.resolve("a.tar"))).isEqualTo(aTree);
    }
  }

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** Temporary files and packs without an index: what interrupted writers leave. */
  private static List<Path> leftovers(Path objects) throws IOException {
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(objects.resolve("tmp"))) {
      s.forEach(out::add);
    }
    try (Stream<Path> s = Files.list(objects.resolve("pack"))) {
      for (Path p : (Iterable<Path>) s::iterator) {
        String n = p.getFileName().toString();
        if (n.endsWith(".pack") && !Files.exists(p.resolveSibling(n.replace(".pack", ".idx")))) {
          out.add(p);
        }
        if (n.endsWith(".idx") && !Files.exists(p.resolveSibling(n.replace(".idx", ".pack")))) {
          out.add(p);
        }
      }
    }
    return out;
  }

  /** A {@link PublishMain} in its own JVM, its stdout lines collected. */
  private static final class Child {
    final Process process;
    final List<String> lines = new CopyOnWriteArrayList<>();
    final Map<String, Long> firstSeen = new ConcurrentHashMap<>();
    final BlockingQueue<String> queue = new LinkedBlockingQueue<>();

    private Child(Process process) {
      this.process = process;
      Thread reader =
          new Thread(
              () -> {
                try (BufferedReader r =
                    new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                  String line;
                  while ((line = r.readLine()) != null) {
                    String key = line.startsWith("done ") ? "done" : line;
                    firstSeen.putIfAbsent(key, System.nanoTime() / 1_000_000);
                    lines.add(line);
                    queue.add(line);
                  }
                } catch (IOException e) {
                  // the process was killed
                } finally {
                  queue.add("<eof>");
                }
              });
      reader.setDaemon(true);
      reader.start();
    }

    static Child start(Path repo, Path tar, String ref, Path err) throws IOException {
      ProcessBuilder pb =
          new ProcessBuilder(
              Path.of(System.getProperty("java.home"), "bin", "java").toString(),
              "--enable-native-access=ALL-UNNAMED",
              "-Xmx512m",
              "-cp",
              System.getProperty("java.class.path"),
              PublishMain.class.getName(),
              repo.toString(),
              tar.toString(),
              ref);
      pb.redirectError(err.toFile());
      Process p = pb.start();
      p.getOutputStream().close();
      return new Child(p);
    }

    /** When the child printed {@code line} (or "done ..." for "done"), in milliseconds. */
    long millisAt(String line) {
      Long t = firstSeen.get(line);
      if (t == null) {
        throw new AssertionError("the child never printed '" + line + "': " + lines);
      }
      return t;
    }

    /** Waits for the trigger (null: the end of output); false if the child ended first. */
    boolean await(Trigger t) throws InterruptedException {
      String want =
          t == null
              ? "<eof>"
              : switch (t) {
                case START -> null;
                case READY -> "ready";
                case TREES -> "phase writing trees";
              };
      if (want == null) {
        return true;
      }
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
      while (System.nanoTime() < deadline) {
        String line = queue.poll(100, TimeUnit.MILLISECONDS);
        if (line == null) {
          continue;
        }
        if (line.equals(want)) {
          return true;
        }
        if (line.equals("<eof>")) {
          return false;
        }
      }
      throw new AssertionError("child never printed " + want);
    }
  }

  // ================================================================ 4. corruption is detected

  @Test
  void flippedByteInAPackIsReportedAndNeverExported(@TempDir Path dir) throws Exception {
    byte[] victim = bytes("the quick brown fox jumps over the lazy dog\n".repeat(500));
    byte[] bigContent = random(1_500_000, 31);
    RawTar t = new RawTar();
    t.dir("etc");
    t.file("etc/victim", victim);
    t.file("etc/other", bytes("unharmed\n"));
    t.file("big", bigContent);
    byte[] tar = t.finish();
    Path repoDir = dir.resolve("repo");
    Digest id;
    Digest victimId = Digest.of(victim);
    Digest chunkId;
    try (Repository repo = Repository.init(repoDir)) {
      id = publish(repo, tar, "t");
      Entry big = repo.lookup(id, bytes("big"));
      assertThat(big.chunked()).isTrue();
      try (ObjectStore.Reader r = repo.store().newReader()) {
        ObjectCodec.ChunkList list =
            ObjectCodec.decodeChunkList(big.content(), r.read(big.content(), ObjectType.CHUNKLIST));
        assertThat(list.chunks()).hasSizeGreaterThan(1);
        chunkId = list.chunks().get(1).id();
      }
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
    }
    Path pack = onlyPack(repoDir);
    Map<Digest, PackRecord> records = parsePack(pack);
    assertThat(records).containsKeys(victimId, chunkId, id);
    assertThat(records.get(victimId).type()).isEqualTo(ObjectType.BLOB.code());
    assertThat(records.get(victimId).codec())
        .as("compressible text is stored compressed")
        .isNotZero();

    for (Digest target : List.of(victimId, chunkId)) {
      PackRecord rec = records.get(target);
      assertThat(rec.type()).isEqualTo(ObjectType.BLOB.code());
      long at = rec.dataOffset() + rec.storedSize() / 2;
      flipByte(pack, at);
      try (Repository repo = Repository.open(repoDir)) {
        FsckReport f = repo.fsck(ProgressListener.NONE);
        assertThat(f.clean()).isFalse();
        assertThat(f.problems()).anySatisfy(p -> assertThat(p).contains(target.hex()));
        Path out = dir.resolve("out.tar");
        assertThatThrownBy(
                () -> repo.export(id, List.of(), ExportFormat.TAR, out, ProgressListener.NONE))
            .isInstanceOf(CorruptObjectException.class)
            .hasMessageContaining(target.hex());
        assertThat(out).doesNotExist();
        try (Stream<Path> s = Files.list(dir)) {
          assertThat(s.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("repo");
        }
        assertThatThrownBy(
                () ->
                    repo.exportTar(
                        id,
                        List.of(),
                        ExportFormat.TAR,
                        new ByteArrayOutputStream(),
                        ProgressListener.NONE))
            .isInstanceOf(CorruptObjectException.class);
        String damaged = target.equals(victimId) ? "etc/victim" : "big";
        assertThatThrownBy(
                () -> {
                  try (InputStream in = repo.openContent(repo.lookupFile(id, bytes(damaged)))) {
                    in.readAllBytes();
                  }
                })
            .isInstanceOf(CorruptObjectException.class);
        // Everything else is still readable.
        try (InputStream in = repo.openContent(repo.lookupFile(id, bytes("etc/other")))) {
          assertThat(in.readAllBytes()).isEqualTo(bytes("unharmed\n"));
        }
      }
      flipByte(pack, at); // repair
      try (Repository repo = Repository.open(repoDir)) {
        assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
        assertThat(exportedTree(repo, id, dir.resolve("ok.tar")))
            .isEqualTo(TreeDescription.describe(tarSource(tar), Mode.STRICT));
        Files.delete(dir.resolve("ok.tar"));
      }
    }
  }

  @Test
  void missingOrDamagedIndexIsNoticed(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    byte[] tar1 = goodTar();
    RawTar t2 = new RawTar();
    t2.file("second", random(50_000, 41));
    t2.file("third", bytes("3"));
    byte[] tar2 = t2.finish();
    Digest id1;
    Digest id2;
    try (Repository repo = Repository.init(repoDir)) {
      id1 = publish(repo, tar1, "r1");
      id2 = publish(repo, tar2, "r2");
    }
    Path packDir = repoDir.resolve("objects/pack");
    Path pack2 = null;
    for (Path p : listPacks(packDir)) {
      if (parsePack(p).containsKey(id2)) {
        pack2 = p;
      }
    }
    assertThat(pack2).isNotNull();
    assertThat(listPacks(packDir)).hasSize(2);
    Path idx2 = pack2.resolveSibling(pack2.getFileName().toString().replace(".pack", ".idx"));
    Path saved = dir.resolve("saved.idx");
    Files.move(idx2, saved);
    try (Repository repo = Repository.open(repoDir)) {
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.clean()).isFalse();
      assertThat(f.problems())
          .anySatisfy(p -> assertThat(p).contains(id2.hex()).contains("not in the repository"));
      assertThatThrownBy(() -> repo.readSnapshot(id2)).isInstanceOf(NotFoundException.class);
      // The other snapshot is unaffected.
      assertThat(exportedTree(repo, id1, dir.resolve("r1.tar")))
          .isEqualTo(TreeDescription.describe(tarSource(tar1), Mode.STRICT));
    }
    Files.move(saved, idx2);
    try (Repository repo = Repository.open(repoDir)) {
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
      assertThat(exportedTree(repo, id2, dir.resolve("r2.tar")))
          .isEqualTo(TreeDescription.describe(tarSource(tar2), Mode.STRICT));
    }
    // A damaged index is replaced by a scan of its pack.
    flipByte(idx2, 20);
    try (Repository repo = Repository.open(repoDir)) {
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
      assertThat(exportedTree(repo, id2, dir.resolve("r2b.tar")))
          .isEqualTo(TreeDescription.describe(tarSource(tar2), Mode.STRICT));
    }
  }

  private record PackRecord(int type, int codec, int size, int storedSize, long dataOffset) {}

  /** Parses a pack: "OSFPACK\1", then id(32) type(1) codec(1) size(4) storedSize(4) data. */
  private static Map<Digest, PackRecord> parsePack(Path pack) throws IOException {
    byte[] b = Files.readAllBytes(pack);
    assertThat(Arrays.copyOf(b, 8)).isEqualTo(new byte[] {'O', 'S', 'F', 'P', 'A', 'C', 'K', 1});
    ByteBuffer buf = ByteBuffer.wrap(b);
    Map<Digest, PackRecord> out = new LinkedHashMap<>();
    int pos = 8;
    while (pos < b.length) {
      Digest id = Digest.fromBytes(b, pos);
      int type = b[pos + 32];
      int codec = b[pos + 33];
      int size = buf.getInt(pos + 34);
      int stored = buf.getInt(pos + 38);
      out.put(id, new PackRecord(type, codec, size, stored, pos + 42));
      pos += 42 + stored;
    }
    assertThat(pos).isEqualTo(b.length);
    return out;
  }

  private static List<Path> listPacks(Path packDir) throws IOException {
    try (Stream<Path> s = Files.list(packDir)) {
      return s.filter(p -> p.toString().endsWith(".pack")).sorted().toList();
    }
  }

  private static Path onlyPack(Path repoDir) throws IOException {
    List<Path> packs = listPacks(repoDir.resolve("objects/pack"));
    assertThat(packs).hasSize(1);
    return packs.get(0);
  }

  private static void flipByte(Path file, long at) throws IOException {
    try (FileChannel ch =
        FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer one = ByteBuffer.allocate(1);
      ch.read(one, at);
      one.flip();
      byte v = one.get(0);
      ch.write(ByteBuffer.wrap(new byte[] {(byte) (v ^ 0x5a)}), at);
    }
  }

  // ================================================================ 5. refs

  @Test
  void refUpdatesAreCompareAndSwapAndLogged(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir)) {
      RefDatabase refs = repo.refs();
      PublishResult p1 = publishResult(repo, goodTar(), "main");
      RawTar t2 = new RawTar();
      t2.file("two", bytes("2"));
      PublishResult p2 = publishResult(repo, t2.finish(), "main");
      Digest id1 = p1.snapshot();
      Digest id2 = p2.snapshot();
      assertThat(p1.update()).isEqualTo(RefUpdate.CREATED);
      assertThat(p2.update()).isEqualTo(RefUpdate.UPDATED);
      assertThat(repo.readSnapshot(id2).parents()).containsExactly(id1);

      Map<String, String> before = repoState(repoDir);
      assertThat(refs.compareAndSet("main", id1, id1, "stale"))
          .isEqualTo(RefUpdate.REJECTED_CHANGED);
      assertThat(refs.compareAndSet("main", null, id1, "stale"))
          .isEqualTo(RefUpdate.REJECTED_CHANGED);
      assertThat(refs.compareAndSet("new", id1, id2, "stale"))
          .isEqualTo(RefUpdate.REJECTED_CHANGED);
      assertThat(refs.compareAndSet("new", id1, null, "stale"))
          .isEqualTo(RefUpdate.REJECTED_CHANGED);
      assertThat(refs.compareAndSet("main", id2, id2, "same")).isEqualTo(RefUpdate.NO_CHANGE);
      assertThat(repoState(repoDir)).isEqualTo(before);
      assertThat(refs.get("main")).contains(id2);
      assertThat(refs.get("new")).isEmpty();

      assertThat(refs.compareAndSet("main", id2, id1, "rollback")).isEqualTo(RefUpdate.UPDATED);
      assertThat(repo.tag("v1", id2.shortHex(12))).isEqualTo(RefUpdate.CREATED);
      assertThat(repo.tag("v1", id2.hex())).isEqualTo(RefUpdate.NO_CHANGE);
      assertThat(repo.deleteRef("main")).isEqualTo(RefUpdate.DELETED);
      assertThat(refs.get("main")).isEmpty();
      assertThat(refs.list()).containsOnlyKeys("v1");
      assertThatThrownBy(() -> repo.resolve("main")).isInstanceOf(NotFoundException.class);
      assertThatThrownBy(() -> repo.deleteRef("main")).isInstanceOf(NotFoundException.class);

      List<ReflogEntry> log = refs.log("main");
      assertThat(log)
          .extracting(ReflogEntry::oldId, ReflogEntry::newId)
          .containsExactly(
              org.assertj.core.groups.Tuple.tuple(null, id1),
              org.assertj.core.groups.Tuple.tuple(id1, id2),
              org.assertj.core.groups.Tuple.tuple(id2, id1),
              org.assertj.core.groups.Tuple.tuple(id1, null));
      assertThat(log.get(2).message()).isEqualTo("rollback");
      assertThat(log.get(3).message()).isEqualTo("delete");
      assertThat(log).isSortedAccordingTo((x, y) -> x.time().compareTo(y.time()));
      assertThat(refs.log("v1"))
          .singleElement()
          .satisfies(
              e -> {
                assertThat(e.oldId()).isNull();
                assertThat(e.newId()).isEqualTo(id2);
              });
      assertThat(refs.logNames()).containsExactlyInAnyOrder("main", "v1");

      // The deleted ref's reflog keeps its snapshots alive through gc.
      GcReport gc = repo.gc(ProgressListener.NONE);
      assertThat(gc.objectsRemoved()).isZero();
      assertThat(repo.readSnapshot(id1).parents()).isEmpty();
      assertThat(repo.fsck(ProgressListener.NONE).snapshots()).isEqualTo(2);

      // Racing updates from one expected value: exactly one wins.
      assertThat(refs.compareAndSet("race", null, id1, "start")).isEqualTo(RefUpdate.CREATED);
      int n = 8;
      CountDownLatch go = new CountDownLatch(1);
      List<RefUpdate> results = new CopyOnWriteArrayList<>();
      List<Thread> threads = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        Thread th =
            new Thread(
                () -> {
                  try {
                    go.await();
                    results.add(refs.compareAndSet("race", id1, id2, "racer"));
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
        th.start();
        threads.add(th);
      }
      go.countDown();
      for (Thread th : threads) {
        th.join();
      }
      assertThat(results).hasSize(n);
      assertThat(results).filteredOn(u -> u == RefUpdate.UPDATED).hasSize(1);
      assertThat(results).filteredOn(u -> u == RefUpdate.REJECTED_CHANGED).hasSize(n - 1);
      assertThat(refs.log("race")).hasSize(2);

      // Invalid names are refused everywhere, and nothing is created for them.
      Map<String, String> state = repoState(repoDir);
      Map<String, String> parent = fileTreeShallow(dir);
      for (String bad :
          List.of(
              "../x",
              "..",
              ".hidden",
              "a/.hidden",
              "a//b",
              "/a",
              "a/",
              "x.lock",
              "a/x.lock",
              "x.tmp",
              "",
              "a b",
              "a\nb",
              "a/../b",
              "refs\\x")) {
        assertThatThrownBy(() -> RefDatabase.validateName(bad))
            .as("%s", bad)
            .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> refs.compareAndSet(bad, null, id1, "bad"))
            .as("%s", bad)
            .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> refs.get(bad)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> refs.log(bad)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> repo.tag(bad, id1.hex()))
            .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(
                () -> {
                  try (TarSource src = tarSource(goodTar())) {
                    repo.publish(src, bad, "", Map.of(), ProgressListener.NONE);
                  }
                })
            .isInstanceOf(IllegalArgumentException.class);
      }
      assertThat(repoState(repoDir)).isEqualTo(state);
      assertThat(fileTreeShallow(dir)).isEqualTo(parent);
      // Valid names with every allowed character work.
      assertThat(refs.compareAndSet("team/a_b+c@d=e-f.g/v1.2", null, id1, "ok"))
          .isEqualTo(RefUpdate.CREATED);
      assertThat(repo.resolve("team/a_b+c@d=e-f.g/v1.2")).isEqualTo(id1);
      assertThatThrownBy(() -> refs.compareAndSet("team", null, id1, "prefix"))
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  // ================================================================ 6. gc with concurrent
  // publishes

  @Test
  void gcWhilePublishingKeepsEverythingThatIsNamed(@TempDir Path dir) throws Exception {
    Path repoDir = dir.resolve("repo");
    Repository.init(repoDir).close();
    int writers = 3;
    long runMillis = 4000;
    AtomicBoolean stop = new AtomicBoolean();
    List<Throwable> failures = new CopyOnWriteArrayList<>();
    Map<String, byte[]> lastPublished = new ConcurrentHashMap<>();
    AtomicInteger publishes = new AtomicInteger();
    AtomicInteger gcs = new AtomicInteger();
    AtomicLong removed = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    for (int w = 0; w < writers; w++) {
      int writer = w;
      threads.add(
          new Thread(
              () -> {
                // Each thread has its own Repository, as separate processes would.
                try (Repository repo = Repository.open(repoDir)) {
                  repo.setThreads(2);
                  String ref = "r" + (writer + 1);
                  for (int i = 0; !stop.get() || i < 3; i++) {
                    byte[] tar = churnTar(writer, i);
                    // Delete first, so the new snapshot has no parent and the old one becomes
                    // garbage once its reflog entry expires: gc has real work meanwhile.
                    if (repo.refs().get(ref).isPresent()) {
                      repo.deleteRef(ref);
                    }
                    publish(repo, tar, ref);
                    lastPublished.put(ref, tar);
                    publishes.incrementAndGet();
                  }
                } catch (Throwable e) {
                  failures.add(e);
                }
              },
              "publisher-" + w));
    }
    threads.add(
        new Thread(
            () -> {
              try (Repository repo = Repository.open(repoDir)) {
                while (!stop.get() || gcs.get() < 3) {
                  repo.expireReflogs(Instant.now());
                  GcReport r = repo.gc(ProgressListener.NONE);
                  removed.addAndGet(r.objectsRemoved());
                  gcs.incrementAndGet();
                }
              } catch (Throwable e) {
                failures.add(e);
              }
            },
            "gc"));
    threads.forEach(Thread::start);
    Thread.sleep(runMillis);
    stop.set(true);
    for (Thread t : threads) {
      t.join(TimeUnit.MINUTES.toMillis(2));
      assertThat(t.isAlive()).as(t.getName()).isFalse();
    }
    if (!failures.isEmpty()) {
      AssertionError e = new AssertionError(failures.size() + " thread(s) failed");
      failures.forEach(e::addSuppressed);
      throw e;
    }
    assertThat(publishes.get()).isGreaterThanOrEqualTo(writers * 3);
    assertThat(gcs.get()).isGreaterThanOrEqualTo(3);
    assertThat(removed.get()).as("gc collected garbage while publishes ran").isPositive();
    try (Repository repo = Repository.open(repoDir)) {
      assertThat(repo.refs().list()).containsOnlyKeys("r1", "r2", "r3");
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems()).isEmpty();
      for (String ref : List.of("r1", "r2", "r3")) {
        Digest id = repo.resolve(ref);
        assertThat(exportedTree(repo, id, dir.resolve(ref + ".tar")))
            .as(ref)
            .isEqualTo(TreeDescription.describe(tarSource(lastPublished.get(ref)), Mode.STRICT));
      }
      // Once every old reflog entry is gone, gc removes the rest and still keeps the refs whole.
      repo.expireReflogs(Instant.now().plusSeconds(1));
      repo.gc(ProgressListener.NONE);
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
      assertThat(repo.fsck(ProgressListener.NONE).snapshots()).isEqualTo(3);
    }
  }

  /**
   * Content that is partly shared by every writer, partly cycling per writer (so objects come back
   * after gc removed them), partly new each time.
   */
  private static byte[] churnTar(int writer, int i) throws IOException {
    RawTar t = new RawTar();
    t.dir("shared");
    for (int k = 0; k < 20; k++) {
      t.file("shared/s" + k, random(8_000, 500 + k));
    }
    t.file("shared/chunked", random(400_000, 600));
    t.dir("cycle");
    int variant = i % 3;
    for (int k = 0; k < 20; k++) {
      t.file("cycle/c" + k, random(6_000, 10_000L * writer + 100L * variant + k));
    }
    t.file("cycle/chunked", random(300_000, 20_000L * writer + variant));
    t.file("new", bytes("writer " + writer + " iteration " + i + "\n"));
    t.hardlink("new-link", "new");
    return t.finish();
  }

  @Test
  void gcFreesWhatNothingNamesAnyMore(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest keep = publish(repo, goodTar(), "keep");
      RawTar x = new RawTar();
      x.file("x1", random(2_000_000, 51));
      x.file("x2", random(100_000, 52));
      Digest xid = publish(repo, x.finish(), "tmp");
      long storedBefore = repo.store().storedBytes();
      assertThat(repo.deleteRef("tmp")).isEqualTo(RefUpdate.DELETED);
      assertThat(repo.gc(ProgressListener.NONE).objectsRemoved())
          .as("the reflog still names it")
          .isZero();
      assertThat(repo.readSnapshot(xid)).isNotNull();
      assertThat(repo.expireReflogs(Instant.now().plusSeconds(1))).isGreaterThanOrEqualTo(2);
      GcReport gc = repo.gc(ProgressListener.NONE);
      assertThat(gc.objectsRemoved()).isGreaterThan(3);
      assertThat(gc.bytesFreed()).isGreaterThan(2_000_000);
      assertThat(repo.store().storedBytes()).isLessThan(storedBefore - 2_000_000);
      assertThatThrownBy(() -> repo.readSnapshot(xid)).isInstanceOf(NotFoundException.class);
      assertThatThrownBy(() -> repo.resolve(xid.hex())).isInstanceOf(NotFoundException.class);
      FsckReport f = repo.fsck(ProgressListener.NONE);
      assertThat(f.problems()).isEmpty();
      assertThat(f.snapshots()).isEqualTo(1);
      assertThat(exportedTree(repo, keep, dir.resolve("keep.tar")))
          .isEqualTo(TreeDescription.describe(tarSource(goodTar()), Mode.STRICT));
      assertThat(repo.gc(ProgressListener.NONE).objectsRemoved()).isZero();
    }
    try (Repository repo = Repository.open(dir.resolve("repo"))) {
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
    }
  }

  // ================================================================ helpers

  private static Digest publish(Repository repo, byte[] tar, String ref) throws IOException {
    return publishResult(repo, tar, ref).snapshot();
  }

  private static PublishResult publishResult(Repository repo, byte[] tar, String ref)
      throws IOException {
    try (TarSource src = tarSource(tar)) {
      return repo.publish(src, ref, "test", Map.of(), ProgressListener.NONE);
    }
  }

  private static TarSource tarSource(byte[] tar) throws IOException {
    return new TarSource(new ByteArrayInputStream(tar));
  }

  /** Exports a snapshot as a tar and describes it (STRICT). */
  private static Map<String, String> exportedTree(Repository repo, Digest id, Path out)
      throws IOException {
    repo.export(id, List.of(), ExportFormat.TAR, out, ProgressListener.NONE);
    return TreeDescription.ofTar(out, Mode.STRICT);
  }

  /**
   * Every path under the repository with its content hash (directories and symlinks marked), except
   * the lock files, whose existence is not state.
   */
  static Map<String, String> repoState(Path repo) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(repo)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        String rel = repo.relativize(p).toString();
        if (rel.equals("lock") || rel.equals("refs.lock")) {
          continue;
        }
        m.put(rel, describeFile(p));
      }
    }
    return m;
  }

  private static Map<String, String> fileTree(Path root) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        if (!p.equals(root)) {
          m.put(root.relativize(p).toString(), describeFile(p));
        }
      }
    }
    return m;
  }

  private static Map<String, String> fileTreeShallow(Path root) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.list(root)) {
      s.forEach(p -> m.put(p.getFileName().toString(), Files.isDirectory(p) ? "dir" : "file"));
    }
    return m;
  }

  private static String describeFile(Path p) throws IOException {
    if (Files.isSymbolicLink(p)) {
      return "symlink " + Files.readSymbolicLink(p);
    }
    if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      return "dir";
    }
    MessageDigest md = Digest.newMessageDigest();
    try (InputStream in = Files.newInputStream(p)) {
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) {
        md.update(buf, 0, n);
      }
    }
    return Digest.of(md).hex();
  }

  private static String sha256(byte[] b) {
    return Digest.of(b).hex();
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** Builds tar archives header by header, hostile ones included: nothing is validated. */
  static final class RawTar {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Map<String, long[]> offsets = new HashMap<>();

    RawTar file(String name, byte[] content) {
      entry(name, '0', content.length, "", 0644);
      out.writeBytes(content);
      pad(content.length);
      return this;
    }

    RawTar dir(String name) {
      return entry(name.endsWith("/") ? name : name + "/", '5', 0, "", 0755);
    }

    RawTar symlink(String name, String target) {
      return entry(name, '2', 0, target, 0777);
    }

    RawTar hardlink(String name, String target) {
      return entry(name, '1', 0, target, 0644);
    }

    RawTar entry(String name, char type, long size, String link, int mode) {
      offsets.putIfAbsent(name, new long[] {out.size(), out.size() + 512});
      out.writeBytes(header(bytes(name), type, size, bytes(link), mode));
      return this;
    }

    long headerOffset(String name) {
      return offsets.get(name)[0];
    }

    long contentOffset(String name) {
      return offsets.get(name)[1];
    }

    private void pad(long len) {
      out.writeBytes(new byte[(int) ((512 - len % 512) % 512)]);
    }

    /** The archive with its end blocks, padded to a 10 KiB record like tar does. */
    byte[] finish() {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      b.writeBytes(out.toByteArray());
      b.writeBytes(new byte[1024]);
      b.writeBytes(new byte[(int) ((10240 - b.size() % 10240) % 10240)]);
      return b.toByteArray();
    }

    /** A ustar header with a correct checksum. */
    static byte[] header(byte[] name, char type, long size, byte[] link, int mode) {
      if (name.length > 100 || link.length > 100) {
        throw new IllegalArgumentException("name too long for a raw header");
      }
      byte[] h = new byte[512];
      System.arraycopy(name, 0, h, 0, name.length);
      octal(h, 100, 8, mode);
      octal(h, 108, 8, 0);
      octal(h, 116, 8, 0);
      octal(h, 124, 12, size);
      octal(h, 136, 12, 1_700_000_000L);
      h[156] = (byte) type;
      System.arraycopy(link, 0, h, 157, link.length);
      System.arraycopy(bytes("ustar\0"), 0, h, 257, 6);
      h[263] = '0';
      h[264] = '0';
      System.arraycopy(bytes("root"), 0, h, 265, 4);
      System.arraycopy(bytes("root"), 0, h, 297, 4);
      Arrays.fill(h, 148, 156, (byte) ' ');
      long sum = 0;
      for (byte x : h) {
        sum += x & 0xff;
      }
      System.arraycopy(bytes(String.format("%06o", sum)), 0, h, 148, 6);
      h[154] = 0;
      h[155] = ' ';
      return h;
    }

    private static void octal(byte[] h, int off, int len, long v) {
      String s = String.format("%0" + (len - 1) + "o", v);
      System.arraycopy(bytes(s), 0, h, off, len - 1);
      h[off + len - 1] = 0;
    }
  }
}
