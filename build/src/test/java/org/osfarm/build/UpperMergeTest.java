package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Attr;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntrySource;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.tar.TarHeader;

/** Overlayfs upper directories applied to a parent tree, in a real repository. */
class UpperMergeTest {
  @TempDir Path tmp;

  /** Entries given one by one, as a tar would carry them. */
  static final class Tar implements EntrySource {
    final List<TarHeader> headers = new ArrayList<>();
    final List<byte[]> contents = new ArrayList<>();
    int at = -1;

    private Tar add(String name, char type, int mode, String content, String link, List<Attr> x) {
      byte[] b = content.getBytes(StandardCharsets.UTF_8);
      byte[] none = new byte[0];
      headers.add(
          new TarHeader(
              name.getBytes(StandardCharsets.UTF_8),
              (byte) type,
              mode,
              0,
              0,
              none,
              none,
              1_700_000_000L,
              0,
              type == '0' ? b.length : 0,
              link.getBytes(StandardCharsets.UTF_8),
              0,
              0,
              x,
              List.of()));
      contents.add(b);
      return this;
    }

    Tar dir(String name, String... xattrs) {
      List<Attr> x = new ArrayList<>();
      for (String a : xattrs) {
        x.add(Attr.of(a, "y".getBytes(StandardCharsets.UTF_8)));
      }
      return add(name.endsWith("/") ? name : name + "/", '5', 0755, "", "", x);
    }

    Tar file(String name, String content) {
      return add(name, '0', 0644, content, "", List.of());
    }

    Tar link(String name, String target) {
      return add(name, '1', 0644, "", target, List.of());
    }

    Tar whiteout(String name) {
      return add(name, '3', 0, "", "", List.of());
    }

    @Override
    public TarHeader next() {
      return ++at < headers.size() ? headers.get(at) : null;
    }

    @Override
    public InputStream content() {
      return new ByteArrayInputStream(contents.get(at));
    }

    @Override
    public long position() {
      return 0;
    }

    @Override
    public String kind() {
      return "tar";
    }

    @Override
    public void close() {}

    Digest publish(Repository repo, String ref) throws IOException {
      return repo.publish(this, ref, ref, Map.of(), ProgressListener.NONE).snapshot();
    }
  }

  List<String> listing(Repository repo, Digest snap) {
    List<String> out = new ArrayList<>();
    repo.manifest(
        snap,
        l -> {
          String[] f = l.split(" ");
          out.add(
              f[0]
                  + " "
                  + f[1]
                  + (f[1].equals("file") ? " " + f[7].substring(0, 8) : "")
                  + (f[1].equals("hardlink") ? " " + f[7] : ""));
        });
    return out;
  }

  static String sha(String s) {
    return Digest.of(s.getBytes(StandardCharsets.UTF_8)).hex().substring(0, 8);
  }

  @Test
  void appliesChangesWhiteoutsOpaqueDirectoriesAndRepairsHardLinks() throws IOException {
    try (Repository repo = Repository.init(tmp.resolve("repo"))) {
      Digest parent =
          new Tar()
              .dir("./")
              .dir("./bin")
              .file("./bin/a", "a1")
              .link("./bin/b", "./bin/a")
              .link("./bin/c", "./bin/a")
              .file("./bin/keep", "k")
              .dir("./etc")
              .file("./etc/gone", "g")
              .file("./etc/old", "o1")
              .dir("./opt")
              .file("./opt/x", "x")
              .dir("./dev")
              .file("./dev/null", "")
              .publish(repo, "parent");
      Digest upper =
          new Tar()
              .dir("./", "user.overlay.impure")
              .dir("./bin", "user.overlay.impure")
              .file("./bin/a", "a2") // replaces the first name of a hard-link group
              .dir("./etc", "user.overlay.origin")
              .whiteout("./etc/gone")
              .file("./etc/old", "o2")
              .file("./etc/new", "n")
              .dir("./opt", "user.overlay.opaque")
              .file("./opt/y", "y")
              .dir("./dev") // a mount point: ignored
              .publish(repo, "upper");
      Snapshot ps = repo.readSnapshot(parent);
      Digest merged;
      try (ObjectStore.Inserter ins = repo.store().newInserter()) {
        UpperMerge m = new UpperMerge(repo, ins);
        Entry root = m.merge(parent, ps.root(), repo.readSnapshot(upper).root());
        merged = m.snapshot(root, Map.of("tar.prefix", "./"), "merged");
        ins.flush();
      }
      assertThat(listing(repo, merged))
          .containsExactly(
              "bin dir",
              "bin/a file " + sha("a2"),
              "bin/b file " + sha("a1"), // the other names keep the old content, as in overlayfs
              "bin/c hardlink =>bin/b",
              "bin/keep file " + sha("k"),
              "dev dir",
              "dev/null file " + sha(""),
              "etc dir",
              "etc/new file " + sha("n"),
              "etc/old file " + sha("o2"),
              "opt dir",
              "opt/y file " + sha("y"));
      // no overlayfs bookkeeping survives
      repo.walk(merged, (p, e) -> assertThat(e.xattrs()).isEmpty());
      // and the result exports (hard links resolve)
      repo.export(
          merged, List.of(), ExportFormat.TAR, tmp.resolve("out.tar"), ProgressListener.NONE);
    }
  }

  @Test
  void signsTheMergedSnapshotWhenTheRepositoryHasASigningKey() throws IOException {
    try (Repository repo = Repository.init(tmp.resolve("repo"))) {
      Digest parent = new Tar().dir("./").file("./a", "1").publish(repo, "parent");
      Digest upper = new Tar().dir("./").file("./b", "2").publish(repo, "upper");
      Digest unsigned = mergeOnce(repo, parent, upper);
      assertThat(repo.readSnapshot(unsigned).signatures()).isEmpty();

      repo.keys().generate("builder", false); // from now on a publish signs, and so must a merge
      Digest signed = mergeOnce(repo, parent, upper);
      assertThat(repo.readSnapshot(signed).signatures()).hasSize(1);
      assertThat(repo.verifySignature(signed, repo.keys().trusted())).isNotNull();
    }
  }

  private static Digest mergeOnce(Repository repo, Digest parent, Digest upper) throws IOException {
    try (ObjectStore.Inserter ins = repo.store().newInserter()) {
      UpperMerge m = new UpperMerge(repo, ins);
      Entry root =
          m.merge(parent, repo.readSnapshot(parent).root(), repo.readSnapshot(upper).root());
      Digest merged = m.snapshot(root, Map.of("tar.prefix", "./"), "merged");
      ins.flush();
      return merged;
    }
  }
}
