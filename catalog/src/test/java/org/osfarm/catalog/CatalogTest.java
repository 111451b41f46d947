package org.osfarm.catalog;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;

/**
 * The catalog against a repository holding two real Debian images (mmdebstrap minbase, and minbase
 * with iputils-ping and less), checked against what tar and the files themselves say.
 */
@Tag("slow")
class CatalogTest {
  @TempDir static Path dir;
  static Repository repo;
  static Catalog catalog;
  static Path minTar;
  static Path plusTar;
  static Digest min;
  static Digest plus;

  @BeforeAll
  static void publish() throws Exception {
    minTar = TestImages.bookwormMinbase();
    plusTar = TestImages.bookwormMinbasePlus();
    repo = Repository.init(dir.resolve("repo"));
    // This repository indexes on publish; lazyIndexingByDefault covers the default.
    java.nio.file.Files.writeString(
        dir.resolve("repo/osfarm.conf"),
        "catalog-on-publish yes\n",
        java.nio.file.StandardOpenOption.APPEND);
    try (TarSource s = TarSource.open(minTar)) {
      min = repo.publish(s, "images/min", "minbase", Map.of(), ProgressListener.NONE).snapshot();
    }
    try (TarSource s = TarSource.open(plusTar)) {
      plus = repo.publish(s, "images/plus", "plus", Map.of(), ProgressListener.NONE).snapshot();
    }
    catalog = Catalog.open(repo);
  }

  @Test
  void eachPublishIsIndexedAsItHappens() throws Exception {
    // no sync: the publish hook indexed both images and their refs
    try (Catalog fresh = Catalog.open(repo)) {
      List<Match> m = fresh.find(FindQuery.builder().path("usr/bin/less").build());
      assertThat(images(m)).containsExactly(plus);
      assertThat(imageMatches(m).get(0).refs()).containsExactly("images/plus");
      assertThat(fresh.sync().indexed()).isZero();
    }
  }

  @Test
  void byDefaultPublishLeavesIndexingToTheFirstQuery(@TempDir Path other) throws Exception {
    try (Repository lazy = Repository.init(other.resolve("repo"))) {
      Digest id;
      try (TarSource s = TarSource.open(minTar)) {
        id = lazy.publish(s, "images/min", "", Map.of(), ProgressListener.NONE).snapshot();
      }
      assertThat(other.resolve("repo/catalog.db")).doesNotExist();
      try (Catalog c = Catalog.open(lazy)) {
        assertThat(c.sync().indexed()).isEqualTo(1);
        assertThat(snapshots(c.find(FindQuery.builder().path("usr/bin/dpkg").build())))
            .containsExactly(id);
      }
    }
  }

  static Set<Digest> snapshots(List<Match> ms) {
    return ms.stream().map(Match::snapshot).collect(Collectors.toSet());
  }

  /** The matches among the two published images (other tests add overlays of them). */
  static Set<Digest> images(List<Match> ms) {
    Set<Digest> s = snapshots(ms);
    s.retainAll(Set.of(min, plus));
    return s;
  }

  static List<Match> imageMatches(List<Match> ms) {
    return ms.stream().filter(m -> m.snapshot().equals(min) || m.snapshot().equals(plus)).toList();
  }

  static byte[] tarMember(Path tar, String member) throws Exception {
    Process p = new ProcessBuilder("tar", "-xOf", tar.toString(), member).start();
    byte[] b = p.getInputStream().readAllBytes();
    assertThat(p.waitFor()).isZero();
    return b;
  }

  static String sha256(byte[] b) throws Exception {
    return java.util.HexFormat.of()
        .formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
  }

  @Test
  void pathLookupFindsExactlyTheImagesHoldingThePath() throws Exception {
    List<Match> less =
        imageMatches(catalog.find(FindQuery.builder().path("/usr/bin/less").build()));
    assertThat(images(less)).containsExactly(plus);
    Match.Found f = less.get(0).entries().get(0);
    assertThat(f.path()).isEqualTo("usr/bin/less");
    assertThat(f.type()).isEqualTo("file");
    byte[] real = tarMember(plusTar, "./usr/bin/less");
    assertThat(f.size()).isEqualTo(real.length);
    assertThat(f.digest().hex()).isEqualTo(sha256(real));
    assertThat(less.get(0).refs()).containsExactly("images/plus");

    assertThat(images(catalog.find(FindQuery.builder().path("etc/os-release").build())))
        .containsExactlyInAnyOrder(min, plus);
    assertThat(catalog.find(FindQuery.builder().path("usr/bin/no-such-program").build())).isEmpty();
    // several paths: any of them
    assertThat(
            images(
                catalog.find(
                    FindQuery.builder().path("usr/bin/less").path("usr/bin/no-such").build())))
        .containsExactly(plus);
  }

  @Test
  void digestLookupWalksUpToEverySnapshotAndPath() throws Exception {
    Entry less = repo.lookupFile(plus, Bytes.utf8("usr/bin/less"));
    List<Match> m =
        imageMatches(catalog.find(FindQuery.builder().digest(less.fileDigest()).build()));
    assertThat(images(m)).containsExactly(plus);
    assertThat(m.get(0).entries()).extracting(Match.Found::path).contains("usr/bin/less");

    Entry dv = repo.lookupFile(min, Bytes.utf8("etc/debian_version"));
    List<Match> both = catalog.find(FindQuery.builder().digest(dv.fileDigest()).build());
    assertThat(images(both)).containsExactlyInAnyOrder(min, plus);
    for (Match x : both) {
      assertThat(x.entries()).extracting(Match.Found::path).contains("etc/debian_version");
    }
  }

  @Test
  void packagesAreThoseDpkgStatusLists() throws Exception {
    String status = Programs.run(null, "tar", "-xOf", minTar.toString(), "./var/lib/dpkg/status");
    Set<String> expected = new TreeSet<>();
    for (String line : status.split("\n")) {
      if (line.startsWith("Package: ")) {
        expected.add(line.substring(9));
      }
    }
    List<PackageInfo> pkgs = catalog.packages(min);
    Set<String> names =
        pkgs.stream().map(PackageInfo::name).collect(Collectors.toCollection(TreeSet::new));
    assertThat(names).isEqualTo(expected);
    PackageInfo dpkg = pkgs.stream().filter(p -> p.name().equals("dpkg")).findFirst().orElseThrow();
    assertThat(status).contains("Package: dpkg\n");
    assertThat(dpkg.architecture()).isEqualTo("amd64");
    String ver = dpkg.version();
    assertThat(status).contains("Version: " + ver + "\n");
    PackageInfo libc =
        pkgs.stream().filter(p -> p.name().equals("libc6")).findFirst().orElseThrow();
    assertThat(libc.source()).isEqualTo("glibc");

    assertThat(images(catalog.find(FindQuery.builder().pkg(PackageSpec.parse("less")).build())))
        .containsExactly(plus);
    assertThat(images(catalog.find(FindQuery.builder().pkg(PackageSpec.parse("dpkg")).build())))
        .containsExactlyInAnyOrder(min, plus);
    assertThat(
            images(catalog.find(FindQuery.builder().pkg(PackageSpec.parse("dpkg=" + ver)).build())))
        .containsExactlyInAnyOrder(min, plus);
    assertThat(catalog.find(FindQuery.builder().pkg(PackageSpec.parse("dpkg<" + ver)).build()))
        .isEmpty();
    assertThat(
            images(catalog.find(FindQuery.builder().pkg(PackageSpec.parse("dpkg<99:0")).build())))
        .containsExactlyInAnyOrder(min, plus);

    List<PackageChange> changes = catalog.packageChanges(min, plus);
    assertThat(changes)
        .extracting(PackageChange::name)
        .contains("less", "iputils-ping")
        .allMatch(n -> !catalog.packages(min).stream().anyMatch(p -> p.name().equals(n)));
    assertThat(changes).allMatch(c -> c.kind() == PackageChange.Kind.ADDED);
  }

  @Test
  void namesTextAndCombinationsIntersect() {
    assertThat(images(catalog.find(FindQuery.builder().name("ping*").build())))
        .containsExactly(plus);
    assertThat(images(catalog.find(FindQuery.builder().word("bookworm").build())))
        .containsExactlyInAnyOrder(min, plus);
    List<Match> text = imageMatches(catalog.find(FindQuery.builder().word("bookworm").build()));
    assertThat(text.get(0).entries())
        .extracting(Match.Found::path)
        .contains("etc/apt/sources.list");
    List<Match> both =
        imageMatches(
            catalog.find(
                FindQuery.builder().path("etc/os-release").pkg(PackageSpec.parse("less")).build()));
    assertThat(images(both)).containsExactly(plus);
    assertThat(both.get(0).entries())
        .extracting(Match.Found::path)
        .containsExactly("etc/os-release", "var/lib/dpkg/status");
  }

  @Test
  void badInputIsRejectedWithAClearMessage() {
    assertThatThrownBy(() -> FindQuery.builder().build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("nothing to find");
    assertThatThrownBy(() -> PackageSpec.parse("Not A Package"))
        .hasMessageContaining("expected NAME");
    assertThatThrownBy(() -> catalog.find(FindQuery.builder().path("/").build()))
        .hasMessageContaining("below the image root");
    assertThatThrownBy(() -> catalog.label(min, Map.of("bad key", "x"), Set.of()))
        .hasMessageContaining("bad label");
    assertThatThrownBy(() -> catalog.label(min, Map.of(), Set.of("absent")))
        .hasMessageContaining("no label 'absent'");
  }

  @Test
  void debianVersionsCompareAsDpkgDoes() throws Exception {
    String[][] cases = {
      {"1.0~rc1", "1.0"}, {"1.0", "1.0-1"}, {"1.0-1", "1.0-2"}, {"2.4", "2.30"},
      {"2.0", "1:0.1"}, {"1.2.3", "1.2.3a"}, {"9.2p1-2", "9.2p1-2+deb12u3"}, {"1.0a", "1.0b"},
    };
    for (String[] c : cases) {
      assertThat(DebianVersion.compare(c[0], c[1])).as(c[0] + " < " + c[1]).isNegative();
      assertThat(DebianVersion.compare(c[1], c[0])).isPositive();
      if (Programs.inCi() || Files.exists(Path.of("/usr/bin/dpkg"))) {
        Programs.run(null, "dpkg", "--compare-versions", c[0], "lt", c[1]); // fails if not
      }
    }
    assertThat(DebianVersion.compare("1:1.0-1", "1:1.0-1")).isZero();
    assertThat(DebianVersion.compare("1.0", "1.00")).isZero();
  }

  @Test
  void labelsLiveInTheRepositoryAndSurviveARebuild() throws Exception {
    catalog.label(plus, Map.of("role", "web", "site", "cern"), Set.of());
    assertThat(repo.refs().get(Labels.REF)).isPresent();
    assertThat(catalog.labels(plus)).isEqualTo(Map.of("role", "web", "site", "cern"));
    assertThat(snapshots(catalog.find(FindQuery.builder().label("role", "web").build())))
        .containsExactly(plus);
    assertThat(snapshots(catalog.find(FindQuery.builder().label("role", "w*").build())))
        .containsExactly(plus);
    catalog.label(plus, Map.of(), Set.of("site"));
    assertThat(catalog.labels(plus)).isEqualTo(Map.of("role", "web"));
    // the catalog's own refs are not images
    assertThat(catalog.find(FindQuery.builder().path("etc").build()))
        .allMatch(m -> m.refs().stream().noneMatch(r -> r.startsWith("catalog/")));
  }

  /** Every query kind, rendered as text, for comparing catalogs. */
  static String answers() {
    StringBuilder sb = new StringBuilder();
    List<FindQuery> qs = new ArrayList<>();
    qs.add(FindQuery.builder().path("usr/bin/less").path("etc/hostname").build());
    qs.add(FindQuery.builder().name("*.conf").build());
    qs.add(FindQuery.builder().pkg(PackageSpec.parse("dpkg")).latest(true).build());
    qs.add(FindQuery.builder().word("debian").build());
    qs.add(FindQuery.builder().label("role", "*").build());
    for (FindQuery q : qs) {
      sb.append(q).append('\n');
      for (Match m : catalog.find(q)) {
        sb.append(m).append('\n');
      }
    }
    sb.append(catalog.packages(min)).append(catalog.packages(plus));
    sb.append(catalog.derived(min, true)).append(catalog.labels(plus));
    return sb.toString();
  }

  @Test
  void rebuildGivesTheSameAnswers() throws Exception {
    catalog.label(min, Map.of("role", "base"), Set.of());
    Path motd = dir.resolve("motd");
    Files.writeString(motd, "welcome\n");
    Overlay.create(
        catalog,
        min,
        "images/min-host1",
        new Overlay.Spec(Map.of("etc/motd", motd), List.of(), "host1", null));
    String before = answers();
    assertThat(before).contains("images/min-host1").contains("usr/bin/less");
    Catalog.SyncReport r = catalog.rebuild();
    assertThat(r.indexed()).isGreaterThanOrEqualTo(3);
    assertThat(answers()).isEqualTo(before);
  }

  @Test
  void overlayIsADeltaThatExportsAsTheWholeImage() throws Exception {
    Path motd = dir.resolve("motd2");
    Files.writeString(motd, "hello from host2\n");
    Overlay.Result r =
        Overlay.create(
            catalog,
            plus,
            "images/plus-host2",
            new Overlay.Spec(
                Map.of("etc/motd", motd, "etc/new/dir/file", motd),
                List.of("usr/bin/less"),
                "host2",
                null));
    assertThat(r.newBytes()).isLessThan(64 * 1024);
    Path out = dir.resolve("host2.tar");
    repo.export(
        r.snapshot(), List.of(), org.osfarm.core.ExportFormat.TAR, out, ProgressListener.NONE);
    assertThat(Programs.run(null, "tar", "-xOf", out.toString(), "./etc/hostname"))
        .isEqualTo("host2\n");
    assertThat(Programs.run(null, "tar", "-xOf", out.toString(), "./etc/new/dir/file"))
        .isEqualTo("hello from host2\n");
    String list = Programs.run(null, "tar", "-tf", out.toString());
    String baseList = Programs.run(null, "tar", "-tf", plusTar.toString());
    Set<String> a = new TreeSet<>(List.of(list.split("\n")));
    Set<String> b = new TreeSet<>(List.of(baseList.split("\n")));
    Set<String> added = new TreeSet<>(a);
    added.removeAll(b);
    Set<String> removed = new TreeSet<>(b);
    removed.removeAll(a);
    assertThat(removed).containsExactly("./usr/bin/less");
    assertThat(added).contains("./etc/new/dir/file", "./etc/new/");
    // everything but the changed files is the base's, byte for byte
    var base =
        org.osfarm.core.testing.TreeDescription.ofTar(
            plusTar, org.osfarm.core.testing.TreeDescription.Mode.STRICT);
    var over =
        org.osfarm.core.testing.TreeDescription.ofTar(
            out, org.osfarm.core.testing.TreeDescription.Mode.STRICT);
    Map<String, String> diff = new TreeMap<>();
    for (var e : over.entrySet()) {
      if (!e.getValue().equals(base.get(e.getKey()))) {
        diff.put(e.getKey(), e.getValue());
      }
    }
    assertThat(diff.keySet())
        .allMatch(
            k -> k.matches("\\.?/?(etc|etc/hostname|etc/hosts|etc/motd|etc/new.*|usr/bin)/?"),
            "only changed paths differ: " + diff.keySet());

    Provenance p = catalog.provenance(r.snapshot(), 5);
    assertThat(p.metadata()).containsEntry("derived-from", plus.hex());
    assertThat(p.lineage()).anyMatch(x -> x.snapshot().equals(plus) && x.kind().equals("base"));
    assertThat(catalog.derived(plus, false))
        .anyMatch(x -> x.snapshot().equals(r.snapshot()) && x.kind().equals("base"));
    assertThat(snapshots(catalog.find(FindQuery.builder().path("etc/new/dir/file").build())))
        .containsExactly(r.snapshot());

    assertThatThrownBy(
            () ->
                Overlay.create(
                    catalog,
                    plus,
                    "images/x",
                    new Overlay.Spec(Map.of(), List.of("no/such/path"), null, null)))
        .hasMessageContaining("no such path");
    assertThatThrownBy(
            () ->
                Overlay.create(
                    catalog,
                    plus,
                    "images/x",
                    new Overlay.Spec(Map.of("etc", motd), List.of(), null, null)))
        .hasMessageContaining("is a directory");
    assertThat(repo.refs().get("images/x")).isEmpty();
  }

  @Test
  void latestKeepsOnlyWhatRefsNameNow() throws Exception {
    Path f = dir.resolve("v2");
    Files.writeString(f, "v2\n");
    // a new version of images/min3 (an overlay of min published on the same ref twice)
    Overlay.Result v1 =
        Overlay.create(
            catalog,
            min,
            "images/min3",
            new Overlay.Spec(Map.of("etc/version-marker", f), List.of(), null, "v1"));
    Overlay.Result v2 =
        Overlay.create(
            catalog, min, "images/min3", new Overlay.Spec(Map.of(), List.of(), "min3", "v2"));
    assertThat(repo.readSnapshot(v2.snapshot()).parents()).containsExactly(v1.snapshot());
    Set<Digest> all = snapshots(catalog.find(FindQuery.builder().path("etc/hostname").build()));
    assertThat(all).contains(v1.snapshot(), v2.snapshot());
    Set<Digest> latest =
        snapshots(catalog.find(FindQuery.builder().path("etc/hostname").latest(true).build()));
    assertThat(latest).contains(v2.snapshot()).doesNotContain(v1.snapshot());
    assertThat(catalog.derived(v1.snapshot(), false))
        .extracting(Related::snapshot, Related::kind)
        .containsExactly(org.assertj.core.groups.Tuple.tuple(v2.snapshot(), "parent"));
  }

  @Test
  void aPublishElsewhereIsPickedUpBySync() throws Exception {
    try (InputStream unused = Files.newInputStream(minTar)) {
      repo.tag("images/min-copy", min.hex());
    }
    catalog.sync();
    Match m =
        catalog.find(FindQuery.builder().path("etc/debian_version").build()).stream()
            .filter(x -> x.snapshot().equals(min))
            .findFirst()
            .orElseThrow();
    assertThat(m.refs()).contains("images/min", "images/min-copy");
  }
}
