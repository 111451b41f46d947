package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;
import static org.osfarm.cli.CliTest.fails;
import static org.osfarm.cli.CliTest.ok;
import static org.osfarm.cli.CliTest.osfarm;
import static org.osfarm.cli.CliTest.publish;
import static org.osfarm.cli.CliTest.refs;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.core.testing.FeatureTree;

/**
 * {@code osfarm serve}, {@code pull}, {@code push}, {@code fetch} and {@code commonality} against a
 * real server: {@code osfarm serve} runs as a child JVM on a free loopback port (it serves until
 * interrupted), the clients run in this process against real repositories on disk.
 */
class TransferCliTest {
  private static final Pattern SERVING = Pattern.compile("(?:on|at) (http://[0-9.]+:[0-9]+)");
  private static final int MIB = 1 << 20;

  @TempDir static Path dir;

  static Path served;
  static Path images;
  static Process server;
  static String url;
  static Process readOnlyServer;
  static String readOnlyUrl;
  static String base;
  static String plus;

  /** The server's repository holds two snapshots that share most of their files. */
  @BeforeAll
  static void startServers() throws Exception {
    Path tree = dir.resolve("tree");
    Files.createDirectories(tree);
    FeatureTree.create(tree);
    served = dir.resolve("served");
    base = publish(served, tree.toString(), "base");
    Files.write(tree.resolve("added.bin"), random(7, 300_000));
    plus = publish(served, tree.toString(), "plus");
    images = dir.resolve("images");
    Files.createDirectories(images);
    byte[] b = random(1, 4 * MIB);
    byte[] a = b.clone();
    Random r = new Random(2);
    for (int i = 0; i < 100; i++) { // 100 of the 1024 blocks of 4 KiB differ
      int blk = r.nextInt(a.length / 4096);
      byte[] x = random(100 + i, 4096);
      System.arraycopy(x, 0, a, blk * 4096, 4096);
    }
    Files.write(images.resolve("a.img"), a);
    Files.write(dir.resolve("b.img"), b);
    server = serve(served, "--images", images.toString(), "--allow-push");
    url = address(server);
    readOnlyServer = serve(dir.resolve("served-ro"));
    readOnlyUrl = address(readOnlyServer);
  }

  @AfterAll
  static void stopServers() throws Exception {
    for (Process p : new Process[] {server, readOnlyServer}) {
      if (p != null) {
        p.destroy();
        if (!p.waitFor(20, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      }
    }
  }

  static byte[] random(long seed, int n) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** Starts {@code osfarm --repo REPO serve --listen 127.0.0.1:0 MORE...} as a child JVM. */
  static Process serve(Path repo, String... more) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(Main.class.getName());
    cmd.addAll(List.of("--repo", repo.toString(), "serve", "--listen", "127.0.0.1:0"));
    cmd.addAll(List.of(more));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().remove("OSFARM_REPO");
    pb.environment().put("XDG_CACHE_HOME", dir.resolve("server-cache").toString());
    pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    return pb.start();
  }

  /** Reads the server's "serving ... at http://HOST:PORT..." line. */
  static String address(Process p) throws IOException {
    BufferedReader err =
        new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
    StringBuilder seen = new StringBuilder();
    java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
    Thread.ofPlatform()
        .daemon()
        .start(
            () -> { // a server that never says where it listens is stopped, and the test fails
              try {
                if (!started.await(90, TimeUnit.SECONDS)) {
                  p.destroyForcibly();
                }
              } catch (InterruptedException ignored) {
                p.destroyForcibly();
              }
            });
    for (String line = err.readLine(); line != null; line = err.readLine()) {
      seen.append(line).append('\n');
      Matcher m = SERVING.matcher(line);
      if (m.find()) {
        started.countDown();
        Thread.ofPlatform().daemon().start(() -> drain(err)); // never block the child on stderr
        return m.group(1);
      }
    }
    throw new AssertionError("osfarm serve did not start:\n" + seen);
  }

  private static void drain(BufferedReader r) {
    try {
      while (r.readLine() != null) {
        // discard
      }
    } catch (IOException ignored) {
      // the child is gone
    }
  }

  // ---------------------------------------------------------------- pull

  @Test
  void pullCopiesASnapshotThenOnlyWhatASiblingLacks(@TempDir Path local) {
    CliTest.Result first = ok(osfarm(local, "pull", url, "base"));
    assertThat(first.lastLine()).isEqualTo(base);
    assertThat(first.err()).contains("pulled").contains("on the wire");
    assertThat(refs(local)).containsEntry("base", base);
    long firstSent = objectsSent(first.err());
    assertThat(firstSent).isPositive();

    // The sibling shares every file but one: only a few objects travel.
    CliTest.Result second = ok(osfarm(local, "pull", url, "plus", "--ref", "mine"));
    assertThat(second.lastLine()).isEqualTo(plus);
    assertThat(refs(local)).containsEntry("mine", plus);
    assertThat(objectsSent(second.err())).isPositive().isLessThan(firstSent);

    // Everything present: nothing travels; the content checks out and lists the same files.
    CliTest.Result again = ok(osfarm(local, "pull", url, "plus"));
    assertThat(objectsSent(again.err())).isZero();
    ok(osfarm(local, "fsck"));
    assertThat(ok(osfarm(local, "ls", "mine")).out())
        .isEqualTo(ok(osfarm(served, "ls", "plus")).out());
  }

  @Test
  void pullOfAMissingRefOrFromNowhereFails(@TempDir Path local) {
    assertThat(fails(osfarm(local, "pull", url, "no-such-ref"), Main.EXIT_ERROR).err())
        .contains("no-such-ref");
    assertThat(fails(osfarm(local, "pull", "http://127.0.0.1:1", "base"), Main.EXIT_ERROR).err())
        .contains("osfarm:");
  }

  /** "pulled 0123abcd: 12 objects (...) sent, ..." → 12. */
  static long objectsSent(String err) {
    Matcher m = Pattern.compile(": ([0-9,]+) objects \\(").matcher(err);
    assertThat(m.find()).as(err).isTrue();
    return Long.parseLong(m.group(1).replace(",", ""));
  }

  // ---------------------------------------------------------------- push

  @Test
  void pushSendsASnapshotAndMovesTheRemoteRef(@TempDir Path local, @TempDir Path other)
      throws Exception {
    ok(osfarm(local, "pull", url, "base"));
    Path tree = local.resolveSibling(local.getFileName() + "-tree");
    Files.createDirectories(tree);
    Files.writeString(tree.resolve("hello.txt"), "pushed from a client\n");
    String mine = publish(local, tree.toString(), "pushed-" + local.getFileName());

    CliTest.Result r = ok(osfarm(local, "push", url, "pushed-" + local.getFileName()));
    assertThat(r.lastLine()).isEqualTo(mine);
    assertThat(r.err()).contains("pushed");
    // The server has it: a third repository pulls it from there.
    assertThat(ok(osfarm(other, "pull", url, "pushed-" + local.getFileName())).lastLine())
        .isEqualTo(mine);
    assertThat(ok(osfarm(other, "cat", "pushed-" + local.getFileName() + ":hello.txt")).stdout())
        .asString(StandardCharsets.UTF_8)
        .isEqualTo("pushed from a client\n");

    // Pushing again sends nothing; a server without --allow-push refuses a push without a token.
    assertThat(objectsSent(ok(osfarm(local, "push", url, "pushed-" + local.getFileName())).err()))
        .isZero();
    CliTest.Result refused = osfarm(local, "push", readOnlyUrl, "pushed-" + local.getFileName());
    assertThat(refused.exit()).as(refused.toString()).isNotZero();
    assertThat(refused.err()).startsWith("osfarm:").contains("401").contains("--token-file");
    assertThat(refs(dir.resolve("served-ro"))).doesNotContainKey("pushed-" + local.getFileName());

    // A bad token is refused; a token from 'osfarm token create' on the served repository works.
    Path bad = local.resolveSibling(local.getFileName() + "-bad-token");
    Files.writeString(bad, "osf_not-a-real-token\n");
    CliTest.Result wrong =
        osfarm(
            local,
            "push",
            "--token-file",
            bad.toString(),
            readOnlyUrl,
            "pushed-" + local.getFileName());
    assertThat(wrong.exit()).as(wrong.toString()).isNotZero();
    assertThat(wrong.err()).contains("401").contains("not valid");
    Path tokenFile = local.resolveSibling(local.getFileName() + "-token");
    Files.writeString(
        tokenFile,
        ok(osfarm(dir.resolve("served-ro"), "token", "create", "pusher-" + local.getFileName()))
                .lastLine()
            + "\n");
    CliTest.Result pushed =
        ok(
            osfarm(
                local,
                "push",
                "--token-file",
                tokenFile.toString(),
                readOnlyUrl,
                "pushed-" + local.getFileName()));
    assertThat(pushed.lastLine()).isEqualTo(mine);
    assertThat(refs(dir.resolve("served-ro"))).containsEntry("pushed-" + local.getFileName(), mine);
  }

  // ---------------------------------------------------------------- fetch

  @Test
  void fetchReusesSeedBlocksAndVerifies(@TempDir Path local) throws Exception {
    Path out = local.resolve("a.img");
    Path index = local.resolve("seed-index");
    CliTest.Result r =
        ok(
            osfarm(
                local,
                "fetch",
                url + "/a.img",
                "-o",
                out.toString(),
                "--seed",
                dir.resolve("b.img").toString(),
                "--seed-index",
                index.toString()));
    assertThat(Files.readAllBytes(out)).isEqualTo(Files.readAllBytes(images.resolve("a.img")));
    long reused = number(r.out(), "reused");
    long fetched = number(r.out(), "fetched");
    assertThat(reused + fetched).isEqualTo(4 * MIB);
    assertThat(fetched).isPositive().isLessThanOrEqualTo(100 * 4096);
    assertThat(number(r.out(), "wire")).isLessThan(fetched + 64 * 1024);
    assertThat(r.out()).containsPattern("content +[0-9a-f]{64}");
    assertThat(Files.list(local).map(p -> p.getFileName().toString()))
        .as("no .part or .state left")
        .noneMatch(n -> n.contains(".part"));

    // No seed: every block from the peer. The same content either way.
    Path whole = local.resolve("whole.img");
    CliTest.Result all =
        ok(osfarm(local, "fetch", url + "/v1/images/a.img", "-o", whole.toString()));
    assertThat(number(all.out(), "fetched")).isEqualTo(4 * MIB);
    assertThat(Files.readAllBytes(whole)).isEqualTo(Files.readAllBytes(out));
    assertThat(content(all.out())).isEqualTo(content(r.out()));

    // --expect pins the content.
    ok(
        osfarm(
            local,
            "fetch",
            url + "/a.img",
            "-o",
            local.resolve("pinned.img").toString(),
            "--seed",
            out.toString(),
            "--seed-index",
            index.toString(),
            "--expect",
            content(r.out())));
    CliTest.Result wrong =
        fails(
            osfarm(
                local,
                "fetch",
                url + "/a.img",
                "-o",
                local.resolve("wrong.img").toString(),
                "--expect",
                "0".repeat(64)),
            Main.EXIT_ERROR);
    assertThat(wrong.err()).contains("expected");
    assertThat(local.resolve("wrong.img")).doesNotExist();
  }

  /**
   * {@code --block-size 512} reaches the fetch: c.img is b.img with 512 bytes changed in each of 40
   * of its 4 KiB blocks, so only 40 blocks of 512 bytes travel (and the index has 512-byte keys).
   * The report's numbers agree with each other and with the file.
   */
  @Test
  void fetchWithASmallBlockSizeReportsConsistentNumbers(@TempDir Path local) throws Exception {
    byte[] c = Files.readAllBytes(dir.resolve("b.img"));
    for (int i = 0; i < 40; i++) {
      System.arraycopy(random(300 + i, 512), 0, c, i * 25 * 4096 + (i % 8) * 512, 512);
    }
    Files.write(images.resolve("c.img"), c);
    String seed = dir.resolve("b.img").toString();
    String index = local.resolve("seed-index").toString();
    Path out = local.resolve("c.img");
    String o =
        ok(osfarm(
                local,
                "fetch",
                url + "/c.img",
                "-o",
                out.toString(),
                "--seed",
                seed,
                "--seed-index",
                index,
                "--block-size",
                "512"))
            .out();
    assertThat(Files.mismatch(out, images.resolve("c.img"))).isEqualTo(-1);
    long total = number(o, "total");
    long reused = number(o, "reused");
    long zeros = decimal(o, "reused .* bytes from seeds, ([0-9,]+) zero bytes").longValue();
    long fetched = number(o, "fetched");
    assertThat(total).isEqualTo(c.length);
    assertThat(fetched).isEqualTo(40 * 512);
    assertThat(reused + zeros + fetched).isEqualTo(total);
    // the wire carried the blocks, the index (5 bytes per 512-byte block) and the request
    assertThat(number(o, "wire")).isGreaterThan(fetched + 5 * (total / 512)).isLessThan(200_000);
    double seconds = decimal(o, "seconds +([0-9.]+)");
    double observed = decimal(o, "observed +([0-9.]+) MB/s");
    assertThat(seconds).isPositive();
    assertThat(observed) // total / seconds, each printed rounded
        .isBetween(total / 1e6 / (seconds + 5e-4) - 0.05, total / 1e6 / (seconds - 5e-4) + 0.05);
    double serial = decimal(o, "bound +([0-9.]+) MB/s serial");
    assertThat(serial).isPositive().isLessThanOrEqualTo(decimal(o, "([0-9.]+) MB/s overlapped"));

    // With the rates given, the bounds are s/(s_I/v_d + s_D/v_n) and s/max(s_I/v_d, s_D/v_n).
    String g =
        ok(osfarm(
                local,
                "fetch",
                url + "/c.img",
                "-o",
                local.resolve("c2.img").toString(),
                "--seed",
                seed,
                "--seed-index",
                index,
                "--block-size",
                "512",
                "--disk-rate",
                "1000",
                "--link-rate",
                "10"))
            .out();
    assertThat(Files.mismatch(local.resolve("c2.img"), out)).isEqualTo(-1);
    assertThat(g).contains("(v_d 1000.0 MB/s, v_n 10.0 MB/s)");
    double seedTime = (reused + zeros) / 1e9;
    double net = fetched / 1e7;
    assertThat(decimal(g, "bound +([0-9.]+) MB/s serial"))
        .isCloseTo(total / 1e6 / (seedTime + net), offset(0.051));
    assertThat(decimal(g, "([0-9.]+) MB/s overlapped"))
        .isCloseTo(total / 1e6 / Math.max(seedTime, net), offset(0.051));
  }

  /** The first group of {@code regex} in {@code out}, a number with thousands separators. */
  static Double decimal(String out, String regex) {
    Matcher m = Pattern.compile("(?m)^.*?" + regex).matcher(out);
    assertThat(m.find()).as(regex + " in\n" + out).isTrue();
    return Double.valueOf(m.group(1).replace(",", ""));
  }

  @Test
  void fetchOfAnUnknownImageFails(@TempDir Path local) {
    CliTest.Result r =
        fails(
            osfarm(local, "fetch", url + "/nope.img", "-o", local.resolve("x").toString()),
            Main.EXIT_ERROR);
    assertThat(r.err()).contains("nope.img");
    assertThat(local.resolve("x")).doesNotExist();
  }

  static long number(String out, String label) {
    Matcher m = Pattern.compile("(?m)^" + label + " +([0-9,]+) bytes").matcher(out);
    assertThat(m.find()).as(out).isTrue();
    return Long.parseLong(m.group(1).replace(",", ""));
  }

  static String content(String out) {
    Matcher m = Pattern.compile("(?m)^content +([0-9a-f]{64})$").matcher(out);
    assertThat(m.find()).as(out).isTrue();
    return m.group(1);
  }

  // ---------------------------------------------------------------- object URLs

  /** GETs or POSTs {@code path} on the server; returns the answer. */
  static HttpResponse<byte[]> http(String path, byte[] post) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path));
    if (post != null) {
      b.POST(HttpRequest.BodyPublishers.ofByteArray(post));
    }
    try (HttpClient c = HttpClient.newHttpClient()) {
      return c.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
    }
  }

  @Test
  void objectUrlsAreServedImmutableAndAMissingObjectIsNot() throws Exception {
    for (String q : List.of("", "?stored=1")) {
      HttpResponse<byte[]> r = http("/v1/objects/" + base + q, null);
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.headers().firstValue("Cache-Control"))
          .hasValue("public, max-age=31536000, immutable");
      if (q.isEmpty()) {
        assertThat(Digest.of(r.body()).hex()).isEqualTo(base); // the URL names this content
      }
    }
    // An object that is not there yet may be pushed later: its 404 must not be cached.
    HttpResponse<byte[]> missing =
        http("/v1/objects/" + Digest.of("not stored".getBytes(StandardCharsets.UTF_8)).hex(), null);
    assertThat(missing.statusCode()).isEqualTo(404);
    assertThat(missing.headers().allValues("Cache-Control"))
        .as(missing.headers().toString())
        .containsExactly("no-store");
    // an image file and its index are named, not content-addressed: a cache must ask again
    for (String named : List.of("/v1/images/a.img", "/v1/images/a.img/index?bs=4096")) {
      HttpResponse<byte[]> r = http(named, null);
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.headers().allValues("Cache-Control")).as(named).containsExactly("no-cache");
    }
  }

  @Test
  void oneRequestTellsWhichOfManyObjectsTheServerLacks(@TempDir Path local) throws Exception {
    ok(osfarm(local, "pull", url, "base"));
    List<Digest> held = new ArrayList<>();
    try (Repository r = Repository.open(local)) {
      r.store().forEach(i -> held.add(i.id()));
    }
    assertThat(held).hasSizeGreaterThan(10);
    java.io.ByteArrayOutputStream ask = new java.io.ByteArrayOutputStream();
    java.io.ByteArrayOutputStream lacking = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < held.size(); i++) {
      byte[] absent = Digest.of(("absent " + i).getBytes(StandardCharsets.UTF_8)).toBytes();
      ask.write(held.get(i).toBytes());
      ask.write(absent);
      lacking.write(absent);
    }
    HttpResponse<byte[]> r = http("/v1/objects/missing", ask.toByteArray());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).isEqualTo(lacking.toByteArray());
  }

  // ---------------------------------------------------------------- commonality

  @Test
  void commonalityCountsSharedBlocks(@TempDir Path local) throws Exception {
    Path a = local.resolve("a");
    Path b = local.resolve("b");
    byte[] x = random(11, 64 * 4096);
    byte[] y = x.clone();
    System.arraycopy(random(12, 16 * 4096), 0, y, 0, 16 * 4096); // a quarter differs
    Files.write(a, x);
    Files.write(b, y);
    String index = local.resolve("idx").toString();
    CliTest.Result r =
        ok(osfarm(local, "commonality", a.toString(), b.toString(), "--seed-index", index));
    assertThat(r.out()).startsWith("0.7500").contains("48 of 64 blocks");
    assertThat(
            ok(osfarm(local, "commonality", a.toString(), a.toString(), "--seed-index", index))
                .out())
        .startsWith("1.0000");
    // B may be a directory of seeds.
    Files.createDirectories(local.resolve("d"));
    Files.write(local.resolve("d").resolve("y"), y);
    assertThat(
            ok(osfarm(
                    local,
                    "commonality",
                    a.toString(),
                    local.resolve("d").toString(),
                    "--seed-index",
                    index))
                .out())
        .startsWith("0.7500");
    assertThat(
            fails(
                    osfarm(local, "commonality", a.toString(), local.resolve("none").toString()),
                    Main.EXIT_ERROR)
                .err())
        .contains("none");
  }
}
