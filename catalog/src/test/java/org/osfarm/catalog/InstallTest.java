package org.osfarm.catalog;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.Programs;
import org.osfarm.core.testing.TestImages;
import org.osfarm.core.testing.TreeDescription;

/**
 * Package installs into a real dormant Debian image with apt from deb.debian.org, in an
 * unprivileged user namespace; the second install of the same package set, into a clone whose
 * relevant state is the same, comes from the memo.
 */
@Tag("slow")
class InstallTest {
  @TempDir Path dir;

  @Test
  void installsThenAnswersAnIdenticalRequestFromTheMemo() throws Exception {
    Programs.require("unshare");
    Programs.require("tar");
    Path tar = TestImages.bookwormMinbase();
    try (Repository repo = Repository.init(dir.resolve("repo"));
        Catalog catalog = Catalog.open(repo)) {
      Digest min;
      try (TarSource s = TarSource.open(tar)) {
        min = repo.publish(s, "images/min", "minbase", Map.of(), ProgressListener.NONE).snapshot();
      }
      Digest clone =
          Overlay.create(
                  catalog,
                  min,
                  "images/clone",
                  new Overlay.Spec(Map.of(), List.of(), "clone1", null))
              .snapshot();
      assertThat(catalog.packages(min)).noneMatch(p -> p.name().equals("hello"));

      Installer.Result first =
          Installer.install(catalog, min, List.of("hello"), "images/min-hello", false, null);
      assertThat(first.memoized()).isFalse();
      assertThat(catalog.packages(first.snapshot())).anyMatch(p -> p.name().equals("hello"));
      assertThat(repo.lookupFile(first.snapshot(), Bytes.utf8("usr/bin/hello")).size())
          .isPositive();
      assertThat(repo.refs().get("cache/install/" + first.key())).contains(first.cacheEntry());
      // dev nodes and the rest of the image are the base's
      assertThat(repo.lookup(first.snapshot(), Bytes.utf8("dev/null")))
          .isEqualTo(repo.lookup(min, Bytes.utf8("dev/null")));

      Installer.Result second =
          Installer.install(catalog, clone, List.of("hello"), "images/clone-hello", false, null);
      assertThat(second.memoized()).isTrue();
      assertThat(second.key()).isEqualTo(first.key());
      assertThat(Programs.run(null, "sh", "-c", "true")).isEmpty();
      assertThat(
              new String(
                  repo.openContent(repo.lookupFile(second.snapshot(), Bytes.utf8("etc/hostname")))
                      .readAllBytes()))
          .isEqualTo("clone1\n");
      assertThat(catalog.packages(second.snapshot())).isEqualTo(catalog.packages(first.snapshot()));

      // the memoized image is the first result with the clone's own changes, nothing else
      Path a = dir.resolve("a.tar");
      Path b = dir.resolve("b.tar");
      repo.export(first.snapshot(), List.of(), ExportFormat.TAR, a, ProgressListener.NONE);
      repo.export(second.snapshot(), List.of(), ExportFormat.TAR, b, ProgressListener.NONE);
      var da = TreeDescription.ofTar(a, TreeDescription.Mode.STRICT);
      var db = TreeDescription.ofTar(b, TreeDescription.Mode.STRICT);
      Map<String, String> differ = new TreeMap<>();
      for (var e : db.entrySet()) {
        if (!e.getValue().equals(da.get(e.getKey()))) {
          differ.put(e.getKey(), e.getValue());
        }
      }
      assertThat(da.keySet()).isEqualTo(db.keySet());
      assertThat(differ.keySet())
          .allMatch(k -> k.matches("(\\./)?etc(/hostname|/hosts)?/?"), "differ: " + differ);

      assertThat(catalog.provenance(second.snapshot(), 3).metadata())
          .containsEntry("install.memoized", "true")
          .containsEntry("derived-from", clone.hex());

      assertThatThrownBy(
              () -> Installer.install(catalog, min, List.of("rm -rf /"), "images/x", false, null))
          .hasMessageContaining("bad package");
      assertThatThrownBy(
              () ->
                  Installer.install(
                      catalog, min, List.of("no-such-package-osfarm"), "images/x", false, null))
          .hasMessageContaining("Unable to locate package no-such-package-osfarm");
      assertThat(repo.refs().get("images/x")).isEmpty();
    }
  }
}
