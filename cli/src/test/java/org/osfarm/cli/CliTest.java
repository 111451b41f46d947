package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.testing.FeatureTree;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.core.testing.TreeDescription;
import org.osfarm.core.testing.TreeDescription.Mode;

/** The {@code osfarm} command line, form by form, against real repositories on disk. */
class CliTest {
  private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");

  @TempDir static Path shared;

  /** A tree with every tar feature, and GNU tar's archive of it. */
  static Path tree;

  static Path tar;

  @BeforeAll
  static void makeFeatureTree() throws Exception {
    tree = shared.resolve("tree");
    Files.createDirectories(tree);
    FeatureTree.create(tree);
    tar = shared.resolve("features.tar");
    FeatureTree.tar(tree, tar);
  }

  // ---------------------------------------------------------------- running the command

  /** What a run printed and returned. {@code stdout} is what went to System.out directly. */
  record Result(int exit, String out, String err, byte[] stdout) {
    List<String> lines() {
      return out.isEmpty() ? List.of() : List.of(out.split("\n"));
    }

    String lastLine() {
      List<String> l = lines();
      return l.isEmpty() ? "" : l.get(l.size() - 1);
    }

    @Override
    public String toString() {
      return "exit " + exit + "\n--- out:\n" + out + "\n--- err:\n" + err;
    }
  }

  /** Runs {@code osfarm --repo REPO ARGS...} in this process. */
  static Result osfarm(Path repo, String... args) {
    List<String> all = new ArrayList<>(List.of("--repo", repo.toString()));
    all.addAll(List.of(args));
    return run(all.toArray(String[]::new));
  }

  static synchronized Result run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    PrintStream saved = System.out;
    int exit;
    try (PrintStream capture = new PrintStream(raw, true)) {
      System.setOut(capture);
      try {
        exit = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
      } finally {
        System.setOut(saved);
      }
    }
    return new Result(exit, out.toString(), err.toString(), raw.toByteArray());
  }

  /** Runs {@code osfarm} as a child JVM, stdin from a file (or nothing), stdout to a file. */
  static Result child(Map<String, String> env, Path stdin, Path stdout, String... args)
      throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(Main.class.getName());
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().remove("OSFARM_REPO");
    pb.environment().putAll(env);
    Path errFile = Files.createTempFile(shared, "child", ".err");
    Path outFile = stdout != null ? stdout : Files.createTempFile(shared, "child", ".out");
    pb.redirectError(errFile.toFile());
    pb.redirectOutput(outFile.toFile());
    if (stdin != null) {
      pb.redirectInput(stdin.toFile());
    } else {
      pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    }
    Process p = pb.start();
    assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("child finished").isTrue();
    String out = stdout != null ? "" : Files.readString(outFile);
    return new Result(p.exitValue(), out, Files.readString(errFile), new byte[0]);
  }

  static Result ok(Result r) {
    assertThat(r.exit()).as(r.toString()).isZero();
    return r;
  }

  static Result fails(Result r, int exit) {
    assertThat(r.exit()).as(r.toString()).isEqualTo(exit);
    return r;
  }

  /** Publishes and returns the snapshot id (the last line of stdout). */
  static String publish(Path repo, String source, String ref, String... more) {
    List<String> args = new ArrayList<>(List.of("publish", source, "--ref", ref));
    args.addAll(List.of(more));
    Result r = ok(osfarm(repo, args.toArray(String[]::new)));
    assertThat(r.lastLine()).as(r.toString()).matches(HEX64);
    return r.lastLine();
  }

  static Map<String, String> refs(Path repo) {
    Map<String, String> m = new TreeMap<>();
    for (String line : ok(osfarm(repo, "refs")).lines()) {
      String[] f = line.split(" ", 2);
      assertThat(f[0]).matches(HEX64);
      m.put(f[1], f[0]);
    }
    return m;
  }

  static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }

  // ---------------------------------------------------------------- init and the repository

  @Test
  void initCreatesTheRepositoryAndIsIdempotent(@TempDir Path dir) {
    Path repo = dir.resolve("r");
    Result r = ok(osfarm(repo, "init"));
    assertThat(r.out().trim()).isEqualTo("repository at " + repo.toAbsolutePath());
    assertThat(repo.resolve("osfarm.conf")).isRegularFile();
    ok(osfarm(repo, "init"));
    assertThat(refs(repo)).isEmpty();
  }

  @Test
  void initRefusesANonEmptyDirectoryThatIsNoRepository(@TempDir Path dir) throws IOException {
    Files.writeString(dir.resolve("something"), "x");
    Result r = fails(osfarm(dir, "init"), 1);
    assertThat(r.err()).startsWith("osfarm: ").contains("not empty");
    assertThat(dir.resolve("osfarm.conf")).doesNotExist();
  }

  @Test
  void otherCommandsCreateTheRepositoryOnFirstUse(@TempDir Path dir) {
    Path repo = dir.resolve("fresh");
    Result r = ok(osfarm(repo, "refs"));
    assertThat(r.out()).isEmpty();
    assertThat(repo.resolve("osfarm.conf")).isRegularFile();
  }

  @Test
  void repoOptionMayFollowTheSubcommand(@TempDir Path dir) {
    Path repo = dir.resolve("r");
    ok(run("init", "--repo", repo.toString()));
    assertThat(repo.resolve("osfarm.conf")).isRegularFile();
  }

  @Test
  void repoDirResolution() {
    Path explicit = Path.of("/x/explicit");
    Map<String, String> all =
        Map.of("OSFARM_REPO", "/env/repo", "XDG_DATA_HOME", "/xdg", "HOME", "/home/h");
    assertThat(OsfarmCommand.repoDir(explicit, all)).isEqualTo(explicit);
    assertThat(OsfarmCommand.repoDir(null, all)).isEqualTo(Path.of("/env/repo"));
    assertThat(OsfarmCommand.repoDir(null, Map.of("OSFARM_REPO", "  ", "XDG_DATA_HOME", "/xdg")))
        .isEqualTo(Path.of("/xdg/osfarm/repo"));
    assertThat(OsfarmCommand.repoDir(null, Map.of("XDG_DATA_HOME", "/xdg")))
        .isEqualTo(Path.of("/xdg/osfarm/repo"));
    assertThat(OsfarmCommand.repoDir(null, Map.of("XDG_DATA_HOME", "")))
        .isEqualTo(Path.of(System.getProperty("user.home"), ".local/share/osfarm/repo"));
    assertThat(OsfarmCommand.repoDir(null, Map.of()))
        .isEqualTo(Path.of(System.getProperty("user.home"), ".local/share/osfarm/repo"));
  }

  @Test
  void repositoryComesFromOsfarmRepoWithoutRepoOption(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("from-env");
    Result r = child(Map.of("OSFARM_REPO", repo.toString()), null, null, "init");
    assertThat(r.exit()).as(r.toString()).isZero();
    assertThat(r.out().trim()).isEqualTo("repository at " + repo.toAbsolutePath());
    assertThat(repo.resolve("osfarm.conf")).isRegularFile();
    // --repo wins over the environment.
    Path other = dir.resolve("explicit");
    r =
        child(
            Map.of("OSFARM_REPO", repo.toString()), null, null, "--repo", other.toString(), "init");
    assertThat(r.exit()).as(r.toString()).isZero();
    assertThat(other.resolve("osfarm.conf")).isRegularFile();
  }

  @Test
  void helpAndVersion() {
    Result h = ok(run("--help"));
    assertThat(h.out())
        .contains("publish", "export", "refs", "log", "tag", "ref", "ls", "cat", "manifest")
        .contains("diff", "stats", "fsck", "gc", "--repo");
    assertThat(ok(run("--version")).out()).contains("osfarm 0.1.0");
    Result pub = ok(run("publish", "--help"));
    assertThat(pub.out()).contains("--ref", "SOURCE", "--message");
  }

  // ---------------------------------------------------------------- publish

  @Test
  void publishFromPlainGzipAndZstdTars(@TempDir Path dir) throws Exception {
    Programs.require("zstd");
    Programs.sh(dir, "gzip -c " + tar + " > f.tar.gz && zstd -q -c " + tar + " > f.tar.zst");
    Path repo = dir.resolve("repo");
    Result r = ok(osfarm(repo, "publish", tar.toString(), "--ref", "plain", "-m", "plain tar"));
    assertThat(r.lastLine()).matches(HEX64);
    assertThat(r.err()).contains("published plain:").contains("MB stored");
    String plain = r.lastLine();
    String gz = publish(repo, dir.resolve("f.tar.gz").toString(), "gz", "--message", "gzip");
    String zst = publish(repo, dir.resolve("f.tar.zst").toString(), "zst");
    assertThat(Set.of(plain, gz, zst)).hasSize(3); // different snapshots ...
    assertThat(refs(repo)).isEqualTo(Map.of("plain", plain, "gz", gz, "zst", zst));
    // ... of the same image.
    assertThat(ok(osfarm(repo, "diff", "plain", "gz")).out()).isEmpty();
    assertThat(ok(osfarm(repo, "diff", "plain", "zst")).out()).isEmpty();
    assertThat(ok(osfarm(repo, "manifest", "zst")).out())
        .isEqualTo(ok(osfarm(repo, "manifest", "plain")).out());
    assertThat(ok(osfarm(repo, "log", "gz")).out()).contains("gzip");
    assertThat(ok(osfarm(repo, "log", "zst")).out()).contains("(no message)");
  }

  @Test
  void publishFromADirectory(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    String id = publish(repo, tree.toString(), "dir", "-m", "from a directory");
    assertThat(refs(repo)).containsEntry("dir", id);
    Path out = dir.resolve("out");
    ok(osfarm(repo, "export", "dir", "-o", out.toString(), "--format", "dir"));
    assertThat(TreeDescription.ofDirectory(out)).isEqualTo(TreeDescription.ofDirectory(tree));
  }

  @Test
  void publishFromADirectoryWithFilesOfEverySize(@TempDir Path dir) throws Exception {
    // Around the read buffer sizes and the chunking threshold.
    Path src = dir.resolve("src");
    Files.createDirectories(src);
    java.util.Random rnd = new java.util.Random(7);
    int[] sizes = {
      1, 8191, 8192, 16383, 16384, 16385, 65535, 65536, 65537, 100_000, 262_143, 262_144, 262_145,
      1_000_000
    };
    for (int n : sizes) {
      byte[] b = new byte[n];
      rnd.nextBytes(b);
      Files.write(src.resolve("f" + n), b);
    }
    Path repo = dir.resolve("repo");
    publish(repo, src.toString(), "sizes");
    for (int n : sizes) {
      assertThat(ok(osfarm(repo, "cat", "sizes:f" + n)).stdout())
          .as("size " + n)
          .isEqualTo(Files.readAllBytes(src.resolve("f" + n)));
    }
  }

  @Test
  void publishFromStdin(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    Result r =
        child(
            Map.of(),
            tar,
            null,
            "--repo",
            repo.toString(),
            "publish",
            "-",
            "--ref",
            "piped",
            "-m",
            "via stdin");
    assertThat(r.exit()).as(r.toString()).isZero();
    assertThat(r.lastLine()).matches(HEX64);
    assertThat(refs(repo)).isEqualTo(Map.of("piped", r.lastLine()));
    Path out = dir.resolve("out.tar");
    ok(osfarm(repo, "export", "piped", "-o", out.toString()));
    assertThat(TreeDescription.ofTar(out, Mode.STRICT))
        .isEqualTo(TreeDescription.ofTar(tar, Mode.STRICT));
  }

  // ---------------------------------------------------------------- export

  @Test
  void exportAsEveryFormatIsExact(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Map<String, String> strict = TreeDescription.ofTar(tar, Mode.STRICT);
    // The comparison is not vacuous.
    assertThat(strict.get("usr/bin/suid")).contains("mode=4755");
    assertThat(strict.get("a-second")).contains("links=[a-second, z-first]");
    assertThat(strict.get("usr/bin/pinger")).contains("xattr:security.capability=");

    Path t = dir.resolve("explicit.out");
    ok(osfarm(repo, "export", "t", "-o", t.toString(), "--format", "tar"));
    assertThat(magic(t, 257, 5)).isEqualTo("ustar".getBytes(StandardCharsets.US_ASCII));
    assertThat(TreeDescription.ofTar(t, Mode.STRICT)).isEqualTo(strict);

    Path gz = dir.resolve("explicit-gz.out");
    ok(osfarm(repo, "export", "t", "-o", gz.toString(), "--format", "tar.gz"));
    assertThat(magic(gz, 0, 2)).isEqualTo(new byte[] {0x1f, (byte) 0x8b});
    Programs.sh(dir, "gzip -dc " + gz + " > gz.tar");
    assertThat(TreeDescription.ofTar(dir.resolve("gz.tar"), Mode.STRICT)).isEqualTo(strict);

    Programs.require("zstd");
    Path zst = dir.resolve("explicit-zst.out");
    ok(osfarm(repo, "export", "t", "--format", "tar.zst", "--output", zst.toString()));
    assertThat(magic(zst, 0, 4)).isEqualTo(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd});
    Programs.sh(dir, "zstd -q -dc " + zst + " > zst.tar");
    assertThat(TreeDescription.ofTar(dir.resolve("zst.tar"), Mode.STRICT)).isEqualTo(strict);

    Path d = dir.resolve("outdir");
    ok(osfarm(repo, "export", "t", "-o", d.toString(), "--format", "dir"));
    assertThat(TreeDescription.ofDirectory(d))
        .isEqualTo(TreeDescription.ofTar(tar, Mode.FILESYSTEM));
    assertThat(Files.readString(d.resolve("etc/hello"))).isEqualTo("hello\n");
  }

  @Test
  void exportFormatFollowsTheFileName(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Map<String, String> strict = TreeDescription.ofTar(tar, Mode.STRICT);
    byte[] gzMagic = {0x1f, (byte) 0x8b};
    byte[] zstMagic = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};
    Map<String, byte[]> magics =
        Map.of(
            "a.tar.gz", gzMagic,
            "a.tgz", gzMagic,
            "a.tar.zst", zstMagic,
            "a.tzst", zstMagic);
    for (Map.Entry<String, byte[]> m : magics.entrySet()) {
      Path out = dir.resolve(m.getKey());
      ok(osfarm(repo, "export", "t", "-o", out.toString()));
      assertThat(magic(out, 0, m.getValue().length)).as(m.getKey()).isEqualTo(m.getValue());
      assertThat(TreeDescription.ofTar(out, Mode.STRICT)).as(m.getKey()).isEqualTo(strict);
    }
    // .tar and unknown names are plain tar.
    for (String name : List.of("a.tar", "a.img")) {
      Path out = dir.resolve(name);
      ok(osfarm(repo, "export", "t", "-o", out.toString()));
      assertThat(magic(out, 257, 5))
          .as(name)
          .isEqualTo("ustar".getBytes(StandardCharsets.US_ASCII));
      assertThat(TreeDescription.ofTar(out, Mode.STRICT)).as(name).isEqualTo(strict);
    }
    // The explicit format wins over the name.
    Path out = dir.resolve("b.tar.gz");
    ok(osfarm(repo, "export", "t", "-o", out.toString(), "--format", "tar"));
    assertThat(magic(out, 257, 5)).isEqualTo("ustar".getBytes(StandardCharsets.US_ASCII));
    // No temporary files are left beside the outputs.
    try (Stream<Path> s = Files.list(dir)) {
      assertThat(s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("."))).isEmpty();
    }
  }

  @Test
  void exportToStdout(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Result r = ok(osfarm(repo, "export", "t", "-o", "-"));
    Path out = dir.resolve("stdout.tar");
    Files.write(out, r.stdout());
    assertThat(TreeDescription.ofTar(out, Mode.STRICT))
        .isEqualTo(TreeDescription.ofTar(tar, Mode.STRICT));
    r = ok(osfarm(repo, "export", "t", "-o", "-", "--format", "tar.gz", "usr/bin"));
    assertThat(Arrays.copyOf(r.stdout(), 2)).isEqualTo(new byte[] {0x1f, (byte) 0x8b});
    // A separate process, stdout to a file (nothing else may reach stdout).
    Path childOut = dir.resolve("child.tar");
    Result c = child(Map.of(), null, childOut, "--repo", repo.toString(), "export", "t", "-o", "-");
    assertThat(c.exit()).as(c.toString()).isZero();
    assertThat(TreeDescription.ofTar(childOut, Mode.STRICT))
        .isEqualTo(TreeDescription.ofTar(tar, Mode.STRICT));
    // A directory cannot go to stdout.
    Result bad = fails(osfarm(repo, "export", "t", "-o", "-", "--format", "dir"), 1);
    assertThat(bad.err()).startsWith("osfarm: ").contains("dir");
    assertThat(bad.stdout()).isEmpty();
  }

  @Test
  void selectiveExportHasExactlyTheSubtreesAndTheirAncestors(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Path out = dir.resolve("sel");
    ok(osfarm(repo, "export", "t", "-o", out.toString(), "--format", "dir", "etc", "usr/bin"));
    Map<String, String> expected = new TreeMap<>(TreeDescription.ofTar(tar, Mode.FILESYSTEM));
    expected
        .keySet()
        .removeIf(
            k ->
                !(k.equals(".")
                    || k.equals("etc")
                    || k.startsWith("etc/")
                    || k.equals("usr")
                    || k.equals("usr/bin")
                    || k.startsWith("usr/bin/")));
    assertThat(expected)
        .containsKeys("etc/hello", "etc/empty-dir", "etc/owned", "usr/bin/suid", "usr/bin/pinger");
    assertThat(expected).doesNotContainKeys("usr/big.bin", "usr/hello-link", "tmp", "dev/null");
    assertThat(TreeDescription.ofDirectory(out)).isEqualTo(expected);

    // The same selection as a tar.
    Path outTar = dir.resolve("sel.tar");
    ok(osfarm(repo, "export", "t", "-o", outTar.toString(), "usr/bin", "etc"));
    assertThat(TreeDescription.ofTar(outTar, Mode.FILESYSTEM).keySet())
        .containsExactlyElementsOf(
            expected.keySet().stream().filter(k -> !k.equals(".")).collect(Collectors.toList()));

    // Non-UTF-8 names are given with \xNN escapes.
    Path latin = dir.resolve("latin");
    ok(osfarm(repo, "export", "t", "-o", latin.toString(), "--format", "dir", "dir\\xff"));
    assertThat(TreeDescription.ofDirectory(latin).keySet())
        .containsExactlyInAnyOrder(".", "dir\\xff", "dir\\xff/x");
  }

  @Test
  void selectiveExportOfAMissingPathFailsAndWritesNothing(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Path outs = dir.resolve("outs");
    Files.createDirectories(outs);
    for (String format : List.of("tar", "tar.gz", "tar.zst", "dir")) {
      Path out = outs.resolve("missing." + format);
      Result r =
          osfarm(repo, "export", "t", "-o", out.toString(), "--format", format, "etc", "no/such");
      assertThat(r.exit()).as(format + ": " + r).isNotZero();
      assertThat(r.err()).as(format).startsWith("osfarm: ").contains("no such path", "no/such");
      assertThat(out).as(format).doesNotExist();
    }
    try (Stream<Path> s = Files.list(outs)) {
      assertThat(s).isEmpty();
    }
    Result up = osfarm(repo, "export", "t", "-o", outs.resolve("x.tar").toString(), "../etc");
    assertThat(up.exit()).isNotZero();
    assertThat(up.err()).startsWith("osfarm: ");
    assertThat(outs.resolve("x.tar")).doesNotExist();
  }

  @Test
  void exportRefusesANonEmptyDirectoryAndAnUnknownFormat(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Path full = dir.resolve("full");
    Files.createDirectories(full);
    Files.writeString(full.resolve("keep"), "mine");
    Result r = fails(osfarm(repo, "export", "t", "-o", full.toString(), "--format", "dir"), 1);
    assertThat(r.err()).startsWith("osfarm: ").contains("not empty");
    assertThat(Files.readString(full.resolve("keep"))).isEqualTo("mine");
    try (Stream<Path> s = Files.list(full)) {
      assertThat(s).hasSize(1);
    }
    Result f =
        fails(osfarm(repo, "export", "t", "-o", dir.resolve("x").toString(), "--format", "rar"), 1);
    assertThat(f.err()).contains("unknown format 'rar'");
    assertThat(dir.resolve("x")).doesNotExist();
  }

  // ---------------------------------------------------------------- refs, log, tag, ref delete

  @Test
  void refsLogTagAndDelete(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    Path src = dir.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("version"), "1\n");
    String v1 = publish(repo, src.toString(), "app", "-m", "first version");
    Files.writeString(src.resolve("version"), "2\n");
    String v2 = publish(repo, src.toString(), "app", "-m", "second version");
    assertThat(v2).isNotEqualTo(v1);
    assertThat(refs(repo)).isEqualTo(Map.of("app", v2));

    // log: both snapshots, newest first, with their messages.
    Result log = ok(osfarm(repo, "log", "app"));
    List<String> snaps =
        log.lines().stream().filter(l -> l.startsWith("snapshot ")).collect(Collectors.toList());
    assertThat(snaps).containsExactly("snapshot " + v2, "snapshot " + v1);
    String text = log.out();
    assertThat(text.indexOf("second version")).isPositive();
    assertThat(text.indexOf("second version")).isLessThan(text.indexOf("first version"));
    assertThat(text.indexOf("snapshot " + v1)).isLessThan(text.indexOf("first version"));
    assertThat(text).contains("Date:    ").contains("Meta:    source=");
    // log of a snapshot id starts there; -n limits it.
    assertThat(ok(osfarm(repo, "log", v1)).out()).contains("first version").doesNotContain(v2);
    assertThat(ok(osfarm(repo, "log", "-n", "1", "app")).out()).contains(v2).doesNotContain(v1);

    // log --reflog: every move, newest first.
    List<String> reflog = ok(osfarm(repo, "log", "--reflog", "app")).lines();
    assertThat(reflog).hasSize(2);
    assertThat(reflog.get(0))
        .contains(v1.substring(0, 12) + " -> " + v2.substring(0, 12))
        .contains("second version");
    assertThat(reflog.get(1))
        .contains("(none) -> " + v1.substring(0, 12))
        .contains("first version");

    // tag by ref name and by an id prefix.
    Result t = ok(osfarm(repo, "tag", "release/1.0", "app"));
    assertThat(t.err()).contains("release/1.0: created");
    Result t2 = ok(osfarm(repo, "tag", "old", v1.substring(0, 8)));
    assertThat(t2.err()).contains("old: created");
    assertThat(refs(repo)).isEqualTo(Map.of("app", v2, "release/1.0", v2, "old", v1));
    assertThat(ok(osfarm(repo, "refs")).lines())
        .containsExactly(v2 + " app", v1 + " old", v2 + " release/1.0");
    // moving a ref with tag
    assertThat(
            ok(osfarm(repo, "tag", "old", v2.toUpperCase(java.util.Locale.ROOT).substring(0, 10)))
                .err())
        .contains("old: updated");
    assertThat(ok(osfarm(repo, "tag", "old", "app")).err()).contains("old: no change");
    assertThat(refs(repo)).containsEntry("old", v2);

    // ref delete
    Result del = ok(osfarm(repo, "ref", "delete", "old"));
    assertThat(del.err()).contains("old: deleted");
    assertThat(refs(repo)).isEqualTo(Map.of("app", v2, "release/1.0", v2));
    assertThat(ok(osfarm(repo, "log", "--reflog", "old")).lines().get(0)).contains("(deleted)");
    Result again = fails(osfarm(repo, "ref", "delete", "old"), 1);
    assertThat(again.err()).startsWith("osfarm: ").contains("no ref 'old'");
    Result unknownLog = fails(osfarm(repo, "log", "old"), 1);
    assertThat(unknownLog.err()).startsWith("osfarm: no ref or snapshot 'old'");
  }

  @Test
  void unknownAndAmbiguousRefsFail(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    String id = publish(repo, tar.toString(), "t");
    for (String[] args :
        List.of(
            new String[] {"log", "nope"},
            new String[] {"ls", "nope"},
            new String[] {"cat", "nope:etc/hello"},
            new String[] {"manifest", "nope"},
            new String[] {"diff", "t", "nope"},
            new String[] {"tag", "x", "nope"},
            new String[] {"export", "nope", "-o", dir.resolve("o.tar").toString()})) {
      Result r = fails(osfarm(repo, args), 1);
      assertThat(r.err())
          .as(String.join(" ", args))
          .startsWith("osfarm: no ref or snapshot 'nope'");
      assertThat(r.out()).isEmpty();
    }
    assertThat(dir.resolve("o.tar")).doesNotExist();
    assertThat(refs(repo)).isEqualTo(Map.of("t", id));
    // An id prefix that matches nothing, a full id of no snapshot, a prefix too short.
    String other = id.charAt(0) == '0' ? "1" : "0";
    assertThat(fails(osfarm(repo, "log", other + id.substring(1, 10)), 1).err())
        .contains("no ref or snapshot");
    String notThere = other + id.substring(1);
    assertThat(fails(osfarm(repo, "log", notThere), 1).err()).contains("no snapshot " + notThere);
    assertThat(fails(osfarm(repo, "log", id.substring(0, 7)), 1).err())
        .contains("at least 8 hex digits");
    // The id of an object that is not a snapshot.
    String blob = sha256("hello\n".getBytes(StandardCharsets.UTF_8));
    assertThat(fails(osfarm(repo, "ls", blob), 1).err()).contains("no snapshot " + blob);
    // A prefix of the real snapshot works.
    assertThat(ok(osfarm(repo, "log", id.substring(0, 8))).out()).contains("snapshot " + id);

    // Two snapshots whose ids share 8 hex digits: found by trying messages (a birthday search).
    String[] pair = twoSnapshotsSharingAPrefix(repo, Digest.fromHex(id));
    String prefix = pair[0].substring(0, 8);
    Result amb = fails(osfarm(repo, "log", prefix), 1);
    assertThat(amb.err()).startsWith("osfarm: ").contains("ambiguous", prefix);
    int n = 8;
    while (pair[0].charAt(n - 1) == pair[1].charAt(n - 1)) {
      n++;
    }
    assertThat(ok(osfarm(repo, "log", pair[0].substring(0, n))).out())
        .contains("snapshot " + pair[0]);
    assertThat(ok(osfarm(repo, "tag", "found", pair[1].substring(0, n))).exit()).isZero();
    assertThat(refs(repo)).containsEntry("found", pair[1]);
  }

  /** Stores two snapshots (of {@code base}'s tree) whose ids start with the same 8 hex digits. */
  static String[] twoSnapshotsSharingAPrefix(Path repoDir, Digest base) throws Exception {
    try (Repository repo = Repository.init(repoDir)) {
      Snapshot s = repo.readSnapshot(base);
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      Map<Integer, Integer> seen = new HashMap<>();
      for (int i = 0; i < 5_000_000; i++) {
        byte[] enc = encode(s, i);
        int key = ByteBuffer.wrap(md.digest(enc)).getInt();
        Integer j = seen.putIfAbsent(key, i);
        if (j != null) {
          byte[] a = encode(s, j);
          try (ObjectStore.Inserter ins = repo.store().newInserter()) {
            Digest da = ins.insert(ObjectType.SNAPSHOT, a, 0, a.length);
            Digest db = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
            ins.flush();
            assertThat(da.hex().substring(0, 8)).isEqualTo(db.hex().substring(0, 8));
            return new String[] {da.hex(), db.hex()};
          }
        }
      }
    }
    throw new AssertionError("no two ids with a common 8-digit prefix");
  }

  private static byte[] encode(Snapshot s, int i) {
    return ObjectCodec.encodeSnapshot(
        new Snapshot(s.root(), List.of(), Instant.ofEpochSecond(1), "try " + i, Map.of()));
  }

  @Test
  void invalidRefNamesAreRejected(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    String id = publish(repo, tar.toString(), "good");
    for (String bad : List.of("../evil", ".hidden", "a//b", "with space", "x.lock", "a/", "")) {
      Result r = osfarm(repo, "publish", tar.toString(), "--ref", bad);
      assertThat(r.exit()).as("publish --ref '" + bad + "': " + r).isNotZero();
      assertThat(r.err()).as(bad).startsWith("osfarm: ").contains("invalid ref name");
      Result t = osfarm(repo, "tag", bad, "good");
      assertThat(t.exit()).as("tag '" + bad + "': " + t).isNotZero();
      assertThat(t.err()).as(bad).contains("invalid ref name");
    }
    assertThat(refs(repo)).isEqualTo(Map.of("good", id));
    assertThat(dir.resolve("evil")).doesNotExist();
    assertThat(repo.resolve("evil")).doesNotExist();
  }

  // ---------------------------------------------------------------- ls, cat, manifest

  @Test
  void lsListsDirectoriesLikeLsL(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Map<String, String> root = byName(ok(osfarm(repo, "ls", "t")).lines());
    assertThat(root.keySet())
        .contains(
            "etc",
            "usr",
            "tmp",
            "dev",
            "var",
            "z-first",
            "a-second",
            "abs-link",
            "dangling",
            "caf\\xe9",
            "dir\\xff",
            "name with spaces");
    assertThat(root.get("etc")).startsWith("drwxr-xr-x ");
    assertThat(root.get("tmp")).startsWith("drwxrwxrwt ");
    assertThat(root.get("abs-link")).startsWith("l").endsWith(" abs-link -> /etc/passwd");
    assertThat(root.get("dangling")).endsWith(" dangling -> dangling-target");
    assertThat(root.get("z-first") + "\n" + root.get("a-second")).contains(" link to ");
    assertThat(root.get("var")).containsPattern("^d\\S+ +65534 +65534 ");
    // The root itself is '.' with an empty path.
    assertThat(ok(osfarm(repo, "ls", "t:")).lines()).isEqualTo(ok(osfarm(repo, "ls", "t")).lines());

    Map<String, String> etc = byName(ok(osfarm(repo, "ls", "t:etc")).lines());
    assertThat(etc.keySet()).containsExactlyInAnyOrder("empty-dir", "empty-file", "hello", "owned");
    String hello = etc.get("hello");
    String when =
        DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")
            .withZone(ZoneOffset.UTC)
            .format(Instant.ofEpochSecond(981173106));
    assertThat(hello).matches("-rw-r--r-- +0 +0 +6 " + when + " hello");
    assertThat(etc.get("owned")).matches("-rw-r--r-- +1001 +2002 +5 .* owned");
    assertThat(etc.get("empty-dir")).startsWith("d");

    Map<String, String> bin = byName(ok(osfarm(repo, "ls", "t:usr/bin")).lines());
    assertThat(bin.get("suid")).startsWith("-rwsr-xr-x ");
    assertThat(bin.get("sgid")).startsWith("-rwx--s--x ");
    Map<String, String> usr = byName(ok(osfarm(repo, "ls", "t:usr")).lines());
    assertThat(usr.get("hello-link"))
        .startsWith("lrwxrwxrwx ")
        .endsWith(" hello-link -> ../etc/hello");
    assertThat(usr.get("big.bin")).contains(" 3000000 ");
    Map<String, String> dev = byName(ok(osfarm(repo, "ls", "t:dev")).lines());
    assertThat(dev.get("null")).matches("crw-rw-rw- +0 +0 +1, 3 .* null");
    assertThat(dev.get("loop9")).matches("b\\S+ +0 +0 +7, 9 .* loop9");
    assertThat(byName(ok(osfarm(repo, "ls", "t:var")).lines()).get("fifo")).startsWith("p");

    // A file lists as itself; non-UTF-8 paths take \xNN escapes.
    assertThat(ok(osfarm(repo, "ls", "t:etc/hello")).lines()).containsExactly(hello);
    assertThat(ok(osfarm(repo, "ls", "t:dir\\xff")).lines())
        .singleElement()
        .asString()
        .endsWith(" x");

    Result missing = fails(osfarm(repo, "ls", "t:etc/nope"), 1);
    assertThat(missing.err()).startsWith("osfarm: no such path in the snapshot: 'etc/nope'");
    assertThat(fails(osfarm(repo, "ls", "t:etc/hello/x"), 1).err()).contains("not a directory");
  }

  private static Map<String, String> byName(List<String> lsLines) {
    Map<String, String> m = new TreeMap<>();
    Pattern p =
        Pattern.compile(
            "^\\S{10} +\\d+ +\\d+ +(?:\\d+, \\d+|\\d+) \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d (.*)$");
    for (String l : lsLines) {
      Matcher mm = p.matcher(l);
      assertThat(mm.matches()).as(l).isTrue();
      String name = mm.group(1);
      int arrow = name.indexOf(" -> ");
      if (arrow >= 0) {
        name = name.substring(0, arrow);
      }
      int link = name.indexOf(" link to ");
      if (link >= 0) {
        name = name.substring(0, link);
      }
      m.put(name, l);
    }
    return m;
  }

  @Test
  void catWritesExactBytes(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    assertThat(ok(osfarm(repo, "cat", "t:etc/hello")).stdout())
        .isEqualTo("hello\n".getBytes(StandardCharsets.UTF_8));
    assertThat(ok(osfarm(repo, "cat", "t:/etc/./hello")).stdout())
        .isEqualTo("hello\n".getBytes(StandardCharsets.UTF_8));
    assertThat(ok(osfarm(repo, "cat", "t:etc/empty-file")).stdout()).isEmpty();
    // Both names of a hard link.
    assertThat(ok(osfarm(repo, "cat", "t:z-first")).stdout()).isEqualTo(utf8("shared"));
    assertThat(ok(osfarm(repo, "cat", "t:a-second")).stdout()).isEqualTo(utf8("shared"));
    // Non-UTF-8 names.
    assertThat(ok(osfarm(repo, "cat", "t:caf\\xe9")).stdout()).isEqualTo(utf8("latin1"));
    assertThat(ok(osfarm(repo, "cat", "t:dir\\xff/x")).stdout()).isEqualTo(utf8("in"));
    assertThat(ok(osfarm(repo, "cat", "t:name with spaces")).stdout()).isEqualTo(utf8("spaces"));
    // A chunked file.
    assertThat(ok(osfarm(repo, "cat", "t:usr/big.bin")).stdout())
        .isEqualTo(Files.readAllBytes(tree.resolve("usr/big.bin")));
    // Through a child process too: the bytes on stdout are the file and nothing else.
    Path out = dir.resolve("big.out");
    Result c = child(Map.of(), null, out, "--repo", repo.toString(), "cat", "t:usr/big.bin");
    assertThat(c.exit()).as(c.toString()).isZero();
    assertThat(Files.mismatch(out, tree.resolve("usr/big.bin"))).isEqualTo(-1L);

    // What is not a file.
    assertThat(fails(osfarm(repo, "cat", "t:etc"), 1).err()).contains("etc is a dir, not a file");
    assertThat(fails(osfarm(repo, "cat", "t:usr/hello-link"), 1).err())
        .contains("usr/hello-link is a symlink to ../etc/hello");
    assertThat(fails(osfarm(repo, "cat", "t:dev/null"), 1).err()).contains("char");
    assertThat(fails(osfarm(repo, "cat", "t"), 1).err()).contains("REF:PATH");
    assertThat(fails(osfarm(repo, "cat", "t:etc/missing"), 1).err())
        .startsWith("osfarm: no such path");
  }

  @Test
  void manifestHasOneLinePerEntry(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    List<String> lines = ok(osfarm(repo, "manifest", "t")).lines();
    Map<String, String> desc = TreeDescription.ofTar(tar, Mode.FILESYSTEM);
    assertThat(lines).hasSize(desc.size() - 1); // every entry but the root
    Map<String, String[]> byPath = new TreeMap<>();
    for (String l : lines) {
      String[] f = l.split(" ");
      assertThat(f).as(l).hasSize(8);
      assertThat(f[2]).as(l).matches("[0-7]{4}");
      assertThat(byPath.put(f[0], f)).as("duplicate " + l).isNull();
    }
    Set<String> expectedPaths = new TreeSet<>();
    for (String k : desc.keySet()) {
      if (!k.equals(".")) {
        expectedPaths.add(k.replace(" ", "\\x20"));
      }
    }
    assertThat(byPath.keySet()).isEqualTo(expectedPaths);

    assertThat(byPath.get("etc/hello"))
        .containsExactly(
            "etc/hello",
            "file",
            "0644",
            "0",
            "0",
            "6",
            "981173106.123456789",
            sha256(utf8("hello\n")));
    assertThat(byPath.get("usr/big.bin")[7])
        .isEqualTo(sha256(Files.readAllBytes(tree.resolve("usr/big.bin"))));
    assertThat(byPath.get("usr/big.bin")[5]).isEqualTo("3000000");
    assertThat(byPath.get("etc/owned")).contains("1001", "2002");
    assertThat(byPath.get("usr/bin/suid")[2]).isEqualTo("4755");
    assertThat(byPath.get("tmp")).containsSequence("dir", "1777");
    assertThat(byPath.get("tmp")[7]).isEqualTo("-");
    assertThat(byPath.get("usr/hello-link")[1]).isEqualTo("symlink");
    assertThat(byPath.get("usr/hello-link")[7]).isEqualTo("->../etc/hello");
    assertThat(byPath.get("dev/null")).containsSequence("char", "0666");
    assertThat(byPath.get("dev/null")[7]).isEqualTo("1,3");
    assertThat(byPath.get("dev/loop9")[7]).isEqualTo("7,9");
    assertThat(byPath.get("var/fifo")[1]).isEqualTo("fifo");
    String link = byPath.get("z-first")[1].equals("hardlink") ? "z-first" : "a-second";
    String first = link.equals("z-first") ? "a-second" : "z-first";
    assertThat(byPath.get(link)[7]).isEqualTo("=>" + first);
    assertThat(byPath.get(first)[7]).isEqualTo(sha256(utf8("shared")));
    assertThat(byPath.get("caf\\xe9")[7]).isEqualTo(sha256(utf8("latin1")));
    assertThat(byPath.get("name\\x20with\\x20spaces")[7]).isEqualTo(sha256(utf8("spaces")));
    // Sizes and digests of every regular file agree with the source.
    for (Map.Entry<String, String> e : desc.entrySet()) {
      String v = e.getValue();
      if (v != null && v.startsWith("0 ") && !v.contains("links=")) {
        String[] f = byPath.get(e.getKey().replace(" ", "\\x20"));
        assertThat(v).as(e.getKey()).contains("size=" + f[5] + " sha256=" + f[7]);
      }
    }
  }

  // ---------------------------------------------------------------- diff

  @Test
  void diffReportsAddedRemovedAndChanged(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    Path src = dir.resolve("src");
    Programs.sh(
        dir,
        String.join(
            "\n",
            "mkdir -p src/sub src/gone-dir",
            "printf 'one\\n' > src/content",
            "printf 'x' > src/mode && chmod 644 src/mode",
            "printf 'bye' > src/removed",
            "printf 'in' > src/gone-dir/f",
            "printf 'same' > src/sub/same",
            "ln -s a src/link",
            "touch -d '2020-01-01 00:00:00' src/sub/same src/mode"));
    String a = publish(repo, src.toString(), "v", "-m", "a");
    Programs.sh(
        dir,
        String.join(
            "\n",
            "printf 'two, longer\\n' > src/content",
            "chmod 755 src/mode",
            "rm src/removed && rm -r src/gone-dir",
            "printf 'new' > src/sub/added",
            "chown 7:8 src/sub/same",
            "rm src/link && ln -s b src/link"));
    String b = publish(repo, src.toString(), "v", "-m", "b");
    List<String> lines = ok(osfarm(repo, "diff", a, b)).lines();
    Map<String, String> byPath = new TreeMap<>();
    for (String l : lines) {
      Matcher m = Pattern.compile("^([MAD]) (\\S+)  (.*)$").matcher(l);
      assertThat(m.matches()).as(l).isTrue();
      byPath.put(m.group(1) + " " + m.group(2), m.group(3));
    }
    assertThat(byPath.get("M content")).contains("content (4->12 bytes)");
    assertThat(byPath.get("M mode")).contains("mode 0644->0755").doesNotContain("content");
    assertThat(byPath.get("D removed")).isEqualTo("file");
    assertThat(byPath.get("D gone-dir")).isEqualTo("dir");
    assertThat(byPath.get("D gone-dir/f")).isEqualTo("file");
    assertThat(byPath.get("A sub/added")).isEqualTo("file");
    assertThat(byPath.get("M sub/same")).contains("owner 0:0->7:8").doesNotContain("content");
    assertThat(byPath.get("M link")).contains("link a->b");
    assertThat(byPath.keySet())
        .allMatch(
            k ->
                Set.of(
                        "M content",
                        "M mode",
                        "D removed",
                        "D gone-dir",
                        "D gone-dir/f",
                        "A sub/added",
                        "M sub/same",
                        "M link",
                        "M sub",
                        "M .")
                    .contains(k),
            "only the changed paths");
    // Refs work as well as ids, the reverse swaps A and D, a snapshot equals itself.
    List<String> reverse = ok(osfarm(repo, "diff", "v", a)).lines();
    assertThat(reverse).anyMatch(l -> l.startsWith("A removed  file"));
    assertThat(reverse).anyMatch(l -> l.startsWith("D sub/added  file"));
    assertThat(reverse).anyMatch(l -> l.startsWith("M mode  ") && l.contains("mode 0755->0644"));
    assertThat(ok(osfarm(repo, "diff", "v", b)).out()).isEmpty();
  }

  // ---------------------------------------------------------------- stats, fsck, gc

  @Test
  void statsCountsSnapshotsAndDedup(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    Map<String, Double> empty = stats(repo);
    assertThat(empty.get("snapshots")).isZero();
    assertThat(empty.get("objects")).isZero();

    publish(repo, tar.toString(), "one");
    Map<String, Double> s1 = stats(repo);
    assertThat(s1.keySet())
        .containsExactly(
            "refs",
            "snapshots",
            "objects",
            "logical bytes",
            "unique content",
            "stored bytes",
            "dedup ratio");
    assertThat(s1.get("refs")).isEqualTo(1);
    assertThat(s1.get("snapshots")).isEqualTo(1);
    assertThat(s1.get("objects")).isGreaterThan(10);
    long fileBytes = 0;
    for (String v : TreeDescription.ofTar(tar, Mode.FILESYSTEM).values()) {
      Matcher m = Pattern.compile("^0 .* size=(\\d+) ").matcher(v);
      if (m.find() && !v.contains("links=[a-second, z-first]")) {
        fileBytes += Long.parseLong(m.group(1));
      }
    }
    fileBytes += "shared".length(); // the hard-linked file counts once
    assertThat(s1.get("logical bytes")).isEqualTo((double) fileBytes);
    assertThat(s1.get("unique content")).isLessThanOrEqualTo(s1.get("logical bytes"));
    assertThat(s1.get("stored bytes")).isPositive();
    assertThat(s1.get("dedup ratio"))
        .isCloseTo(
            s1.get("logical bytes") / s1.get("stored bytes"),
            org.assertj.core.data.Offset.offset(0.01));

    publish(repo, tar.toString(), "two");
    Map<String, Double> s2 = stats(repo);
    assertThat(s2.get("refs")).isEqualTo(2);
    assertThat(s2.get("snapshots")).isEqualTo(2);
    assertThat(s2.get("objects")).isEqualTo(s1.get("objects") + 1); // the new snapshot
    assertThat(s2.get("logical bytes")).isEqualTo(2 * s1.get("logical bytes"));
    assertThat(s2.get("unique content")).isEqualTo(s1.get("unique content"));
    assertThat(s2.get("stored bytes") - s1.get("stored bytes")).isBetween(1.0, 2000.0);
    assertThat(s2.get("dedup ratio"))
        .isCloseTo(2 * s1.get("dedup ratio"), org.assertj.core.data.Percentage.withPercentage(2));
  }

  static Map<String, Double> stats(Path repo) {
    Map<String, Double> m = new java.util.LinkedHashMap<>();
    for (String l : ok(osfarm(repo, "stats")).lines()) {
      Matcher mm = Pattern.compile("^([a-z ]+?) {2,}([0-9][0-9,.]*)$").matcher(l);
      assertThat(mm.matches()).as(l).isTrue();
      String v = mm.group(2);
      m.put(
          mm.group(1),
          mm.group(1).equals("dedup ratio")
              ? Double.parseDouble(v.replace(",", ""))
              : Double.parseDouble(v.replaceAll("[^0-9]", "")));
    }
    return m;
  }

  @Test
  void fsckFindsAFlippedByteInAPack(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    publish(repo, tar.toString(), "t");
    Result clean = ok(osfarm(repo, "fsck"));
    assertThat(clean.lastLine()).startsWith("ok: 1 snapshots, ").endsWith(" 0 problems");
    assertThat(clean.out()).doesNotContain("damage");

    String hello = sha256(utf8("hello\n"));
    flipByteOfObject(repo, hello);

    Result damaged = fails(osfarm(repo, "fsck"), 3);
    assertThat(damaged.lines())
        .anyMatch(l -> l.startsWith("damage: ") && l.contains(hello) && l.contains("etc/hello"));
    assertThat(damaged.lastLine()).startsWith("DAMAGED: ").endsWith(" 1 problems");
    // Reading the object reports damage too (exit 3), other files still read.
    Result cat = fails(osfarm(repo, "cat", "t:etc/hello"), 3);
    assertThat(cat.err())
        .startsWith("osfarm: repository damage: ")
        .contains(hello)
        .contains("fsck");
    assertThat(ok(osfarm(repo, "cat", "t:z-first")).stdout()).isEqualTo(utf8("shared"));
    Result export = fails(osfarm(repo, "export", "t", "-o", dir.resolve("o.tar").toString()), 3);
    assertThat(export.err()).contains("repository damage");
    assertThat(dir.resolve("o.tar")).doesNotExist();
  }

  /** Flips the first data byte of object {@code hex} in whichever pack holds it. */
  static void flipByteOfObject(Path repo, String hex) throws IOException {
    byte[] want = HexFormat.of().parseHex(hex);
    List<Path> packs;
    try (Stream<Path> s = Files.list(repo.resolve("objects/pack"))) {
      packs = s.filter(p -> p.toString().endsWith(".pack")).sorted().collect(Collectors.toList());
    }
    assertThat(packs).isNotEmpty();
    for (Path p : packs) {
      byte[] b = Files.readAllBytes(p);
      assertThat(Arrays.copyOf(b, 8)).isEqualTo(new byte[] {'O', 'S', 'F', 'P', 'A', 'C', 'K', 1});
      int pos = 8;
      while (pos < b.length) {
        ByteBuffer h = ByteBuffer.wrap(b, pos, 42);
        byte[] id = new byte[32];
        h.get(id);
        h.get(); // type
        h.get(); // codec
        h.getInt(); // size
        int stored = h.getInt();
        int data = pos + 42;
        if (Arrays.equals(id, want)) {
          assertThat(stored).isPositive();
          b[data] ^= (byte) 0xff;
          Files.write(p, b);
          return;
        }
        pos = data + stored;
      }
      assertThat(pos).isEqualTo(b.length);
    }
    throw new AssertionError("object " + hex + " is in no pack");
  }

  @Test
  void gcRemovesWhatNoRefOrReflogReaches(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    Path keep = dir.resolve("keep");
    Path drop = dir.resolve("drop");
    Programs.sh(
        dir,
        "mkdir keep drop && head -c 200000 /dev/urandom > keep/k"
            + " && head -c 300000 /dev/urandom > drop/d && printf 'x' > drop/small");
    String k = publish(repo, keep.toString(), "keep");
    publish(repo, drop.toString(), "drop");
    Map<String, Double> before = stats(repo);

    // Nothing to remove while refs name everything.
    Result r0 = ok(osfarm(repo, "gc"));
    assertThat(gcNumbers(r0)).containsExactly(before.get("objects").longValue(), 0L, 0L);

    // A deleted ref's reflog still keeps its snapshot.
    ok(osfarm(repo, "ref", "delete", "drop"));
    Result r1 = ok(osfarm(repo, "gc"));
    assertThat(gcNumbers(r1)[1]).isZero();

    // Once the reflog expires, the snapshot and its content go.
    Result r2 = ok(osfarm(repo, "gc", "--expire-reflog", "0"));
    assertThat(r2.err()).containsPattern("expired [1-9]\\d* reflog entries");
    long[] n = gcNumbers(r2);
    assertThat(n[1]).isGreaterThanOrEqualTo(4); // snapshot, root tree, two blobs, at least
    assertThat(n[2]).isGreaterThan(290_000);
    Map<String, Double> after = stats(repo);
    assertThat(after.get("objects")).isEqualTo(before.get("objects") - n[1]);
    assertThat(after.get("snapshots")).isEqualTo(1);
    assertThat(after.get("stored bytes")).isLessThan(before.get("stored bytes") - 290_000);

    // What is kept is intact.
    assertThat(ok(osfarm(repo, "fsck")).lastLine()).startsWith("ok: 1 snapshots");
    assertThat(ok(osfarm(repo, "cat", "keep:k")).stdout())
        .isEqualTo(Files.readAllBytes(keep.resolve("k")));
    assertThat(refs(repo)).isEqualTo(Map.of("keep", k));
    // The current value of a ref survives expiry: nothing more to remove.
    Result r3 = ok(osfarm(repo, "gc", "--expire-reflog", "0"));
    assertThat(gcNumbers(r3)[1]).isZero();
    assertThat(ok(osfarm(repo, "log", "--reflog", "keep")).lines()).hasSize(1);
  }

  static long[] gcNumbers(Result r) {
    Matcher m =
        Pattern.compile(
                "^kept ([\\d,]+) reachable objects, removed ([\\d,]+) objects, freed ([\\d,]+) bytes$")
            .matcher(r.lastLine());
    assertThat(m.matches()).as(r.toString()).isTrue();
    return new long[] {
      Long.parseLong(m.group(1).replace(",", "")),
      Long.parseLong(m.group(2).replace(",", "")),
      Long.parseLong(m.group(3).replace(",", ""))
    };
  }

  // ---------------------------------------------------------------- errors

  @Test
  void publishErrorsChangeNothing(@TempDir Path dir) throws Exception {
    Path repo = dir.resolve("repo");
    String id = publish(repo, tar.toString(), "t");
    Map<String, Double> statsBefore = stats(repo);

    Result missing =
        fails(osfarm(repo, "publish", dir.resolve("nope.tar").toString(), "--ref", "t"), 1);
    assertThat(missing.err()).startsWith("osfarm: ").contains("nope.tar");

    // Junk, a truncated tar, a tar with a damaged header, and a truncated gzip.
    byte[] t = Files.readAllBytes(tar);
    Path junk = dir.resolve("junk.tar");
    byte[] noise = new byte[8192];
    new java.util.Random(1).nextBytes(noise);
    Files.write(junk, noise);
    Path truncated = dir.resolve("truncated.tar");
    Files.write(truncated, Arrays.copyOf(t, t.length / 2));
    Path badHeader = dir.resolve("bad-header.tar");
    byte[] bh = t.clone();
    int second = secondHeaderOffset(t);
    bh[second + 1] ^= 0x55; // the name of an entry: its checksum no longer matches
    Files.write(badHeader, bh);
    Path badGz = dir.resolve("bad.tar.gz");
    Programs.sh(dir, "gzip -c " + tar + " > full.gz && head -c 100000 full.gz > bad.tar.gz");
    for (Path bad : List.of(junk, truncated, badHeader, badGz)) {
      Result r = fails(osfarm(repo, "publish", bad.toString(), "--ref", "t", "-m", "bad"), 1);
      assertThat(r.err()).as(bad.toString()).startsWith("osfarm: ");
      assertThat(r.out()).as(bad.toString()).isEmpty();
      Result r2 = fails(osfarm(repo, "publish", bad.toString(), "--ref", "new"), 1);
      assertThat(r2.err()).startsWith("osfarm: ");
    }
    assertThat(refs(repo)).isEqualTo(Map.of("t", id));
    assertThat(ok(osfarm(repo, "log", "--reflog", "t")).lines()).hasSize(1);
    Map<String, Double> statsAfter = stats(repo);
    assertThat(statsAfter.get("objects")).isEqualTo(statsBefore.get("objects"));
    assertThat(statsAfter.get("stored bytes")).isEqualTo(statsBefore.get("stored bytes"));
    assertThat(ok(osfarm(repo, "fsck")).lastLine()).startsWith("ok: ");
  }

  private static int secondHeaderOffset(byte[] t) {
    // The first header is the root "./" directory (no data); the second follows it (after any pax
    // extended header and its data).
    int pos = 0;
    int headers = 0;
    while (true) {
      char type = (char) t[pos + 156];
      long size = Long.parseLong(new String(t, pos + 124, 11, StandardCharsets.US_ASCII).trim(), 8);
      if (type != 'x' && type != 'g') {
        headers++;
        if (headers == 2) {
          return pos;
        }
      }
      pos += 512 + (int) ((size + 511) / 512 * 512);
    }
  }

  @Test
  void usageErrors(@TempDir Path dir) {
    Path repo = dir.resolve("repo");
    Result noRef = osfarm(repo, "publish", tar.toString());
    assertThat(noRef.exit()).isEqualTo(2);
    assertThat(noRef.err()).contains("--ref");
    Result unknown = osfarm(repo, "frobnicate");
    assertThat(unknown.exit()).isEqualTo(2);
    assertThat(unknown.err()).contains("frobnicate");
    Result noOut = osfarm(repo, "export", "t");
    assertThat(noOut.exit()).isEqualTo(2);
    assertThat(noOut.err()).contains("--output");
  }

  // ---------------------------------------------------------------- a real image

  @Test
  @Tag("slow")
  void realDebianImage(@TempDir Path dir) throws Exception {
    Path image = TestImages.bookwormMinbase();
    Path repo = dir.resolve("repo");
    Result first =
        ok(osfarm(repo, "publish", image.toString(), "--ref", "debian/bookworm", "-m", "1"));
    String id = first.lastLine();
    assertThat(id).matches(HEX64);
    double firstStored = mbStored(first.err());
    assertThat(firstStored).isGreaterThan(10);

    Path out = dir.resolve("out.tar");
    ok(osfarm(repo, "export", "debian/bookworm", "-o", out.toString()));
    assertThat(TreeDescription.ofTar(out, Mode.STRICT))
        .isEqualTo(TreeDescription.ofTar(image, Mode.STRICT));
    Files.delete(out);

    Path outDir = dir.resolve("rootfs");
    ok(osfarm(repo, "export", "debian/bookworm", "-o", outDir.toString(), "--format", "dir"));
    Map<String, String> fs = TreeDescription.ofTar(image, Mode.FILESYSTEM);
    assertThat(fs.size()).isGreaterThan(5000);
    assertThat(TreeDescription.ofDirectory(outDir)).isEqualTo(fs);

    Result again =
        ok(osfarm(repo, "publish", image.toString(), "--ref", "debian/bookworm", "-m", "2"));
    assertThat(again.lastLine()).matches(HEX64).isNotEqualTo(id);
    assertThat(mbStored(again.err())).isLessThanOrEqualTo(firstStored / 100);
    assertThat(again.err()).contains(" 1 new objects");
    assertThat(ok(osfarm(repo, "diff", id, "debian/bookworm")).out()).isEmpty();
    assertThat(ok(osfarm(repo, "fsck")).lastLine()).startsWith("ok: 2 snapshots");
  }

  private static double mbStored(String err) {
    Matcher m = Pattern.compile("([\\d,]+\\.\\d) MB stored").matcher(err);
    assertThat(m.find()).as(err).isTrue();
    return Double.parseDouble(m.group(1).replace(",", ""));
  }

  // ---------------------------------------------------------------- helpers

  private static byte[] magic(Path file, int offset, int n) throws IOException {
    byte[] b = Files.readAllBytes(file);
    return Arrays.copyOfRange(b, offset, offset + n);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
