package org.osfarm.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.testing.TestImages;

/** Block-level fetches from a real server over loopback, with real seed files. */
class BlockFetcherTest {
  static final int BS = 4096;
  @TempDir Path tmp;
  Path images;
  Path local;
  TransferServer http;
  URI uri;
  SeedIndex seedIndex;

  @BeforeEach
  void setUp() throws IOException {
    images = Files.createDirectory(tmp.resolve("images"));
    local = Files.createDirectory(tmp.resolve("local"));
    http =
        new TransferServer(new InetSocketAddress("127.0.0.1", 0), null, new ImageProtocol(images));
    uri = URI.create("http://127.0.0.1:" + http.address().getPort());
    seedIndex = new SeedIndex(tmp.resolve("seed-index"));
  }

  @AfterEach
  void tearDown() {
    http.close();
  }

  /**
   * B, and A = B with a fraction of its blocks replaced by random ones, a zero run, a short tail.
   */
  static void makePair(Path a, Path b, int blocks, double delta, long seed) throws IOException {
    Random r = new Random(seed);
    byte[] bb = new byte[blocks * BS];
    r.nextBytes(bb);
    byte[] ab = bb.clone();
    for (int i = 0; i < blocks; i++) {
      if (r.nextDouble() < delta) {
        byte[] blk = new byte[BS];
        r.nextBytes(blk);
        System.arraycopy(blk, 0, ab, i * BS, BS);
      }
    }
    java.util.Arrays.fill(ab, 10 * BS, 20 * BS, (byte) 0);
    Files.write(b, bb);
    byte[] tail = new byte[1000];
    r.nextBytes(tail);
    Files.write(a, ab);
    Files.write(a, tail, java.nio.file.StandardOpenOption.APPEND);
  }

  private BlockFetcher.Options opts(List<Path> seeds) {
    return new BlockFetcher.Options(BS, seeds, seedIndex, null, 2);
  }

  @Test
  void fetchReusesSeedBlocksAndFetchesOnlyTheRest() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 4096, 0.1, 1);
    Path out = tmp.resolve("out.img");

    FetchResult r =
        BlockFetcher.fetch(uri.resolve("/a.img"), out, opts(List.of(local)), ProgressListener.NONE);

    assertThat(Files.mismatch(out, images.resolve("a.img"))).isEqualTo(-1);
    long missing = r.size() - r.reusedBytes() - r.zeroBytes();
    assertThat(r.fetchedBytes()).isEqualTo(missing);
    assertThat(missing).isBetween(4096L * BS / 20, 4096L * BS / 6); // about 10% + the tail
    assertThat(r.zeroBytes()).isEqualTo(10L * BS);
    assertThat(r.wireBytes()).isLessThan((long) (1.01 * missing) + 1_000_000);
    assertThat(r.root()).isEqualTo(BlockIndex.compute(images.resolve("a.img"), BS).root());
    assertThat(Files.exists(tmp.resolve("out.img.part"))).isFalse();
  }

  /**
   * The local workers read runs consecutive in one seed across gaps: A made of two seeds' blocks
   * shifted, reversed and interleaved, with peer and zero blocks between, over several chunks.
   */
  @Test
  void shiftedReversedAndInterleavedSeedBlocksAssembleExactly() throws IOException {
    Random r = new Random(9);
    int n = 3000; // blocks: three 4 MiB chunks
    byte[] s1 = new byte[n * BS];
    byte[] s2 = new byte[n * BS];
    r.nextBytes(s1);
    r.nextBytes(s2);
    byte[] a = new byte[n * BS];
    long fromPeer = 0;
    for (int i = 0; i < n; i++) {
      int kind = i < 700 ? 0 : i < 1400 ? 1 : i < 2100 ? 2 : i < 2250 ? 3 : r.nextInt(5);
      switch (kind) {
        case 0 -> System.arraycopy(s1, ((i + 3) % n) * BS, a, i * BS, BS); // shifted by 3
        case 1 -> System.arraycopy(s1, (n - 1 - i) * BS, a, i * BS, BS); // reversed
        case 2 -> System.arraycopy(i % 3 == 0 ? s2 : s1, i * BS, a, i * BS, BS); // interleaved
        case 3 -> {} // zeros
        default -> {
          byte[] x = new byte[BS];
          r.nextBytes(x);
          System.arraycopy(x, 0, a, i * BS, BS);
          fromPeer += BS;
        }
      }
    }
    Files.write(images.resolve("mix.img"), a);
    Files.write(local.resolve("s1"), s1);
    Files.write(local.resolve("s2"), s2);
    Path out = tmp.resolve("mix.img");

    FetchResult res =
        BlockFetcher.fetch(
            uri.resolve("/mix.img"), out, opts(List.of(local)), ProgressListener.NONE);

    assertThat(Files.mismatch(out, images.resolve("mix.img"))).isEqualTo(-1);
    assertThat(res.fetchedBytes()).isEqualTo(fromPeer);
    assertThat(res.reusedBytes() + res.zeroBytes() + res.fetchedBytes()).isEqualTo(res.size());
    assertThat(res.refetchedGroups()).isZero();
    assertThat(res.zeroBytes()).isGreaterThanOrEqualTo(150L * BS); // whole groups of zeros too
  }

  @Test
  void noSeedsMeansAPlainVerifiedDownload() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 512, 0.5, 2);
    Path out = tmp.resolve("out.img");
    FetchResult r =
        BlockFetcher.fetch(uri.resolve("/a.img"), out, opts(List.of()), ProgressListener.NONE);
    assertThat(Files.mismatch(out, images.resolve("a.img"))).isEqualTo(-1);
    assertThat(r.reusedBytes()).isZero();
  }

  @Test
  void aSeedThatChangedSinceItWasIndexedCostsARefetchNotAWrongResult() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 1024, 0.0, 3);
    seedIndex.get(local.resolve("b.img"), BS); // index it, then change it in place, same mtime
    var mtime = Files.getLastModifiedTime(local.resolve("b.img"));
    try (var ch =
        java.nio.channels.FileChannel.open(
            local.resolve("b.img"), java.nio.file.StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3}), 100L * BS);
    }
    Files.setLastModifiedTime(local.resolve("b.img"), mtime);
    Path out = tmp.resolve("out.img");
    FetchResult r =
        BlockFetcher.fetch(uri.resolve("/a.img"), out, opts(List.of(local)), ProgressListener.NONE);
    assertThat(Files.mismatch(out, images.resolve("a.img"))).isEqualTo(-1);
    assertThat(r.refetchedGroups()).isEqualTo(1);
  }

  @Test
  void lyingPeerIsDetectedAndNoOutputAppears() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 1024, 0.3, 4);
    Path out = tmp.resolve("out.img");
    try (TamperingProxy proxy = new TamperingProxy(uri)) {
      proxy.route = "/blocks";
      proxy.rewrite =
          b -> {
            byte[] c = b.clone();
            c[c.length / 2] ^= 1;
            return c;
          };
      assertThatThrownBy(
              () ->
                  BlockFetcher.fetch(
                      proxy.uri().resolve("/a.img"),
                      out,
                      opts(List.of(local)),
                      ProgressListener.NONE))
          .isInstanceOf(PeerDataException.class)
          .hasMessageContaining("corrupted or lying peer");
      assertThat(Files.exists(out)).isFalse();
    }
    // What stays is OUT.part with the groups its state marks verified, and nothing else written.
    byte[] a = Files.readAllBytes(images.resolve("a.img"));
    byte[] part = Files.readAllBytes(tmp.resolve("out.img.part"));
    java.util.BitSet verified = verifiedGroups(tmp.resolve("out.img.part.state"));
    int group = BlockIndex.GROUP_BLOCKS * BS;
    int groups = (a.length + group - 1) / group;
    assertThat(part.length).isEqualTo(a.length);
    assertThat(verified.cardinality()).isPositive().isLessThan(groups);
    long kept = 0;
    for (int g = 0; g < groups; g++) {
      int from = g * group;
      int to = Math.min(a.length, from + group);
      byte[] want = verified.get(g) ? Arrays.copyOfRange(a, from, to) : new byte[to - from];
      assertThat(Arrays.mismatch(Arrays.copyOfRange(part, from, to), want))
          .as((verified.get(g) ? "verified" : "unwritten") + " group " + g + ": first wrong byte")
          .isEqualTo(-1);
      kept += verified.get(g) ? to - from : 0;
    }
    // An honest peer then completes it from those groups.
    FetchResult r =
        BlockFetcher.fetch(uri.resolve("/a.img"), out, opts(List.of(local)), ProgressListener.NONE);
    assertThat(Files.mismatch(out, images.resolve("a.img"))).isEqualTo(-1);
    assertThat(r.resumedBytes()).isEqualTo(kept);
  }

  /** The groups {@code OUT.part.state} marks verified ("OSFR", group count, root, bitmap). */
  static java.util.BitSet verifiedGroups(Path state) throws IOException {
    byte[] b = Files.readAllBytes(state);
    assertThat(java.nio.ByteBuffer.wrap(b).getInt()).isEqualTo(0x4f534652);
    return java.util.BitSet.valueOf(Arrays.copyOfRange(b, 40, b.length));
  }

  @Test
  void theSeedIndexIsKeptAndASeedIsHashedAgainOnlyWhenItChanged() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 1024, 0.1, 8);
    Path b = local.resolve("b.img");
    FetchResult first = fetchA("1.img", seedIndex, b);
    assertThat(seedIndex.hashedFiles()).isEqualTo(1);
    try (var files = Files.list(tmp.resolve("seed-index"))) {
      assertThat(files.map(p -> p.getFileName().toString()))
          .singleElement()
          .matches(n -> n.endsWith(".idx"));
    }

    // A later run (a new index over the same directory) reads the seed's keys from disk.
    SeedIndex later = new SeedIndex(tmp.resolve("seed-index"));
    FetchResult second = fetchA("2.img", later, b);
    assertThat(later.hashedFiles()).isZero();
    assertThat(second.reusedBytes()).isEqualTo(first.reusedBytes());

    // The seed changes where A uses it, with a new mtime: hashed again, not trusted, no refetch.
    byte[] a = Files.readAllBytes(images.resolve("a.img"));
    byte[] seed = Files.readAllBytes(b);
    int used = 100;
    while (Arrays.compare(a, used * BS, (used + 1) * BS, seed, used * BS, (used + 1) * BS) != 0) {
      used++;
    }
    var mtime =
        java.nio.file.attribute.FileTime.fromMillis(Files.getLastModifiedTime(b).toMillis() + 2000);
    try (var ch = java.nio.channels.FileChannel.open(b, java.nio.file.StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3}), (long) used * BS);
    }
    Files.setLastModifiedTime(b, mtime);
    SeedIndex third = new SeedIndex(tmp.resolve("seed-index"));
    FetchResult changed = fetchA("3.img", third, b);
    assertThat(third.hashedFiles()).isEqualTo(1);
    assertThat(changed.refetchedGroups()).isZero();
    assertThat(changed.fetchedBytes()).isEqualTo(second.fetchedBytes() + BS);

    // A new size (same mtime) is a change too.
    Files.write(b, new byte[BS], java.nio.file.StandardOpenOption.APPEND);
    Files.setLastModifiedTime(b, mtime);
    SeedIndex fourth = new SeedIndex(tmp.resolve("seed-index"));
    fourth.get(b, BS);
    assertThat(fourth.hashedFiles()).isEqualTo(1);
  }

  /** Fetches a.img into {@code name} with one seed and {@code index}; checks the output. */
  private FetchResult fetchA(String name, SeedIndex index, Path seed) throws IOException {
    FetchResult r =
        BlockFetcher.fetch(
            uri.resolve("/a.img"),
            tmp.resolve(name),
            new BlockFetcher.Options(BS, List.of(seed), index, null, 2),
            ProgressListener.NONE);
    assertThat(Files.mismatch(tmp.resolve(name), images.resolve("a.img"))).isEqualTo(-1);
    return r;
  }

  @Test
  void interruptedFetchResumesWithTheVerifiedGroups() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 8192, 1.0, 5);
    Path out = tmp.resolve("out.img");
    try (TamperingProxy proxy = new TamperingProxy(uri)) {
      proxy.route = "/blocks";
      proxy.cutAfter = 20L << 20;
      assertThatThrownBy(
              () ->
                  BlockFetcher.fetch(
                      proxy.uri().resolve("/a.img"), out, opts(List.of()), ProgressListener.NONE))
          .isInstanceOf(TransferException.class);
    }
    assertThat(Files.exists(out)).isFalse();
    assertThat(Files.exists(tmp.resolve("out.img.part.state"))).isTrue();

    FetchResult r =
        BlockFetcher.fetch(uri.resolve("/a.img"), out, opts(List.of()), ProgressListener.NONE);
    assertThat(Files.mismatch(out, images.resolve("a.img"))).isEqualTo(-1);
    assertThat(r.resumedBytes()).isGreaterThan(10L << 20);
    assertThat(r.fetchedBytes()).isLessThan(r.size() - (10L << 20));
  }

  @Test
  void wrongExpectedContentIsRefused() throws IOException {
    makePair(images.resolve("a.img"), local.resolve("b.img"), 64, 0.5, 6);
    var o =
        new BlockFetcher.Options(
            BS, List.of(), seedIndex, BlockIndex.compute(local.resolve("b.img"), BS).root(), 1);
    assertThatThrownBy(
            () ->
                BlockFetcher.fetch(
                    uri.resolve("/a.img"), tmp.resolve("o"), o, ProgressListener.NONE))
        .isInstanceOf(PeerDataException.class)
        .hasMessageContaining("expected");
  }

  @Test
  void commonalityCountsSharedBlocks() throws IOException {
    makePair(local.resolve("a.img"), local.resolve("b.img"), 2048, 0.25, 7);
    Commonality.Result r =
        Commonality.of(local.resolve("a.img"), local.resolve("b.img"), BS, seedIndex);
    assertThat(r.blocks()).isEqualTo(2048);
    assertThat(r.zeroBlocks()).isEqualTo(10);
    assertThat(r.fractionNonZero()).isBetween(0.70, 0.80);
  }

  @Test
  @Tag("slow")
  void realImageTarFetchedWithItsSiblingAsSeed() throws IOException {
    Path a = images.resolve("plus.tar");
    Files.copy(TestImages.bookwormMinbasePlus(), a);
    Path seedDir = Files.createDirectory(tmp.resolve("seeds"));
    Files.copy(TestImages.bookwormMinbase(), seedDir.resolve("minbase.tar"));
    Path out = tmp.resolve("plus.tar");
    // Tar members are 512-byte aligned, so 512-byte blocks line up between sibling tars.
    var o512 = new BlockFetcher.Options(512, List.of(seedDir), seedIndex, null, 2);
    FetchResult r = BlockFetcher.fetch(uri.resolve("/plus.tar"), out, o512, ProgressListener.NONE);
    assertThat(Files.mismatch(out, a)).isEqualTo(-1);
    assertThat(r.reusedBytes()).isGreaterThan(r.size() / 2);
    // The seed's keys are on disk: a later run does not hash it again.
    SeedIndex later = new SeedIndex(tmp.resolve("seed-index"));
    assertThat(later.get(seedDir.resolve("minbase.tar"), 512).keys())
        .hasSize((int) (Files.size(seedDir.resolve("minbase.tar")) / 512));
    assertThat(later.hashedFiles()).isZero();
    // The output of a fetch is a seed for the next one (here at 4 KiB, hashed then).
    FetchResult again =
        BlockFetcher.fetch(
            uri.resolve("/plus.tar"),
            tmp.resolve("again.tar"),
            opts(List.of(seedDir, out)),
            ProgressListener.NONE);
    assertThat(again.fetchedBytes()).isLessThan(BS); // at most the short last block
  }
}
