package org.osfarm.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.testing.FeatureTree;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.core.testing.TreeDescription;
import org.osfarm.core.testing.TreeDescription.Mode;

/** export(publish(x)) == x, for a tree with every tar feature and for a real Debian image. */
class RoundTripTest {
  @TempDir static Path shared;
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

  @Test
  void tarToTarIsExact(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest id = publishTar(repo, tar, "t");
      Path out = dir.resolve("out.tar");
      repo.export(id, List.of(), ExportFormat.TAR, out, ProgressListener.NONE);
      Map<String, String> before = TreeDescription.ofTar(tar, Mode.STRICT);
      assertThat(TreeDescription.ofTar(out, Mode.STRICT)).isEqualTo(before);
      // The features really are there (the comparison is not vacuous).
      assertThat(before.get("usr/bin/suid")).contains("mode=4755");
      assertThat(before.get("tmp")).contains("mode=1777");
      assertThat(before.get("dev/null")).startsWith("3").contains("dev=1,3");
      assertThat(before.get("dev/loop9")).startsWith("4").contains("dev=7,9");
      assertThat(before.get("var/fifo")).startsWith("6");
      assertThat(before.get("usr/bin/pinger")).contains("xattr:security.capability=");
      assertThat(before.get("var/lib/acl/file")).contains("xattr:system.posix_acl_access=");
      assertThat(before.get("var/lib/acl")).contains("xattr:system.posix_acl_default=");
      assertThat(before.get("a-second")).contains("links=[a-second, z-first]");
      assertThat(before.get("caf\\xe9")).contains("sha256=");
      assertThat(before.get("etc/hello")).contains("mtime=981173106.123456789");
      assertThat(before.get("etc/owned")).contains("uid=1001 gid=2002");
      assertThat(before.get("etc/empty-file")).contains("size=0");
    }
  }

  @Test
  void compressedTarsPublishTheSameSnapshotTree(@TempDir Path dir) throws Exception {
    Programs.require("zstd");
    Programs.run(
        dir, "sh", "-c", "gzip -c " + tar + " > t.tar.gz && zstd -q -c " + tar + " > t.tar.zst");
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest plain = publishTar(repo, tar, "plain");
      Digest gz = publishTar(repo, dir.resolve("t.tar.gz"), "gz");
      Digest zst = publishTar(repo, dir.resolve("t.tar.zst"), "zst");
      Digest tree0 = repo.readSnapshot(plain).tree();
      assertThat(repo.readSnapshot(gz).tree()).isEqualTo(tree0);
      assertThat(repo.readSnapshot(zst).tree()).isEqualTo(tree0);
      for (ExportFormat f : List.of(ExportFormat.TAR_GZ, ExportFormat.TAR_ZST)) {
        Path out = dir.resolve("out." + f.label());
        repo.export(gz, List.of(), f, out, ProgressListener.NONE);
        assertThat(TreeDescription.ofTar(out, Mode.STRICT))
            .isEqualTo(TreeDescription.ofTar(tar, Mode.STRICT));
      }
    }
  }

  @Test
  void tarToDirectoryRestoresEverythingTheFileSystemHolds(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest id = publishTar(repo, tar, "t");
      Path out = dir.resolve("out");
      repo.export(id, List.of(), ExportFormat.DIR, out, ProgressListener.NONE);
      assertThat(TreeDescription.ofDirectory(out)).isEqualTo(TreeDescription.ofDirectory(tree));
      // Checked with the real tools too.
      assertThat(Programs.run(out, "getfacl", "-n", "var/lib/acl/file"))
          .isEqualTo(Programs.run(tree, "getfacl", "-n", "var/lib/acl/file"))
          .contains("user:1234:rw-");
      assertThat(Programs.run(out, "getcap", "usr/bin/pinger")).contains("cap_net_raw");
      assertThat(
              Programs.run(
                  out, "stat", "-c", "%a %F", "usr/bin/suid", "tmp", "dev/null", "var/fifo"))
          .isEqualTo("4755 regular file\n1777 directory\n666 character special file\n644 fifo\n");
    }
  }

  @Test
  void directoryToDirectoryAndToTar(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      PublishResult r;
      try (DirectorySource src = new DirectorySource(tree, ProgressListener.NONE)) {
        r = repo.publish(src, "d", "", Map.of(), ProgressListener.NONE);
      }
      Path out = dir.resolve("out");
      repo.export(r.snapshot(), List.of(), ExportFormat.DIR, out, ProgressListener.NONE);
      assertThat(TreeDescription.ofDirectory(out)).isEqualTo(TreeDescription.ofDirectory(tree));
      Path outTar = dir.resolve("out.tar");
      repo.export(r.snapshot(), List.of(), ExportFormat.TAR, outTar, ProgressListener.NONE);
      // GNU tar reads our archive back into the same tree.
      Path extracted = dir.resolve("extracted");
      Files.createDirectories(extracted);
      Programs.run(
          extracted,
          "tar",
          "--xattrs",
          "--xattrs-include=*",
          "--acls",
          "--numeric-owner",
          "-xpf",
          outTar.toString());
      assertThat(TreeDescription.ofDirectory(extracted))
          .isEqualTo(TreeDescription.ofDirectory(tree));
    }
  }

  @Test
  void largeFilesAreChunkedAndSimilarOnesShareChunks(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest id = publishTar(repo, tar, "t");
      Entry big = repo.lookup(id, Bytes.utf8("usr/big.bin"));
      assertThat(big.chunked()).isTrue();
      // Insert 100 bytes in the middle of the big file: most chunks survive.
      Path t2 = dir.resolve("t2");
      Programs.sh(
          dir,
          "mkdir t2 && cd t2 && tar -xpf "
              + tar
              + " && head -c 1500000 usr/big.bin > x"
              + " && printf '%0100d' 0 >> x && tail -c +1500001 usr/big.bin >> x && mv x usr/big.bin"
              + " && tar --format=pax -cf ../t2.tar .");
      long before = repo.store().storedBytes();
      PublishResult r;
      try (TarSource src = TarSource.open(dir.resolve("t2.tar"))) {
        r = repo.publish(src, "t2", "", Map.of(), ProgressListener.NONE);
      }
      long added = repo.store().storedBytes() - before;
      assertThat(repo.lookup(r.snapshot(), Bytes.utf8("usr/big.bin")).fileDigest())
          .isNotEqualTo(big.fileDigest());
      // 3 MB of random data: a changed chunk or two (max 512 KiB each), not the whole file.
      assertThat(added).isLessThan(1_100_000);
      assertThat(Files.size(t2.resolve("usr/big.bin"))).isEqualTo(3_000_100);
    }
  }

  @Test
  void selectiveExportWritesOnlyTheGivenSubtrees(@TempDir Path dir) throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      Digest id = publishTar(repo, tar, "t");
      Path out = dir.resolve("out");
      repo.export(
          id,
          List.of(Bytes.utf8("usr/bin"), Bytes.utf8("a-second")),
          ExportFormat.DIR,
          out,
          ProgressListener.NONE);
      Map<String, String> d = TreeDescription.ofDirectory(out);
      assertThat(d.keySet())
          .containsExactlyInAnyOrder(
              ".", "a-second", "usr", "usr/bin", "usr/bin/pinger", "usr/bin/sgid", "usr/bin/suid");
      // a-second's first name (z-first) was not selected: it carries the content itself.
      assertThat(Files.readString(out.resolve("a-second"))).isEqualTo("shared");
    }
  }

  @Test
  @Tag("slow")
  void realDebianImageRoundTripsAndRepublishesForAlmostNothing(@TempDir Path dir) throws Exception {
    Path image = TestImages.bookwormMinbase();
    try (Repository repo = Repository.init(dir.resolve("repo"))) {
      PublishResult first;
      try (TarSource src = TarSource.open(image)) {
        first = repo.publish(src, "images/min", "first", Map.of(), ProgressListener.NONE);
      }
      assertThat(first.entries()).isGreaterThan(5000);
      Path out = dir.resolve("out.tar");
      repo.export(first.snapshot(), List.of(), ExportFormat.TAR, out, ProgressListener.NONE);
      Map<String, String> original = TreeDescription.ofTar(image, Mode.STRICT);
      assertThat(TreeDescription.ofTar(out, Mode.STRICT)).isEqualTo(original);

      Path extracted = dir.resolve("gnu");
      Files.createDirectories(extracted);
      Programs.run(
          extracted,
          "tar",
          "--xattrs",
          "--xattrs-include=*",
          "--acls",
          "--numeric-owner",
          "-xpf",
          image.toString());
      Path exported = dir.resolve("osfarm");
      repo.export(first.snapshot(), List.of(), ExportFormat.DIR, exported, ProgressListener.NONE);
      assertThat(TreeDescription.ofDirectory(exported))
          .isEqualTo(TreeDescription.ofDirectory(extracted));

      PublishResult again;
      try (TarSource src = TarSource.open(image)) {
        again = repo.publish(src, "images/min", "again", Map.of(), ProgressListener.NONE);
      }
      // Nothing new but the snapshot object itself.
      assertThat(again.newObjects()).isEqualTo(1);
      assertThat(again.newBytes()).isLessThan(first.newBytes() / 1000);
      assertThat(repo.readSnapshot(again.snapshot()).parents()).containsExactly(first.snapshot());
      assertThat(repo.fsck(ProgressListener.NONE).problems()).isEmpty();
    }
  }

  static Digest publishTar(Repository repo, Path tar, String ref) throws Exception {
    try (TarSource src = TarSource.open(tar)) {
      return repo.publish(src, ref, "", Map.of(), ProgressListener.NONE).snapshot();
    }
  }
}
