package org.osfarm.catalog;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.TarSource;
import org.osfarm.core.testing.TestImages;

/** The storage target: 100 per-host customizations of one image cost under 1 MB. */
@Tag("slow")
class OverlayStorageTest {
  @TempDir Path dir;

  @Test
  void hundredPerHostOverlaysCostLessThanOneMegabyte() throws Exception {
    try (Repository repo = Repository.init(dir.resolve("repo"));
        Catalog catalog = Catalog.open(repo)) {
      Digest base;
      try (TarSource s = TarSource.open(TestImages.bookwormMinbase())) {
        base = repo.publish(s, "images/min", "minbase", Map.of(), ProgressListener.NONE).snapshot();
      }
      long before = repo.store().storedBytes();
      long reported = 0;
      for (int i = 0; i < 100; i++) {
        Path motd = dir.resolve("motd-" + i);
        Files.writeString(motd, "Welcome to node " + i + " of the farm\n");
        Path key = dir.resolve("key-" + i);
        Files.writeString(
            key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + i + " admin@node" + i + "\n");
        Overlay.Result r =
            Overlay.create(
                catalog,
                base,
                "hosts/node" + i,
                new Overlay.Spec(
                    Map.of("etc/motd", motd, "root/.ssh/authorized_keys", key),
                    List.of(),
                    "node" + i,
                    null));
        reported += r.newBytes();
        assertThat(
                new String(
                    repo.openContent(repo.lookupFile(r.snapshot(), Bytes.utf8("etc/hostname")))
                        .readAllBytes()))
            .isEqualTo("node" + i + "\n");
      }
      repo.store().refresh();
      long cost = repo.store().storedBytes() - before;
      System.out.printf(
          "100 overlays: %d bytes stored (%d reported by the overlays)%n", cost, reported);
      assertThat(cost).isLessThan(1_000_000L);
      assertThat(catalog.derived(base, false)).hasSize(100);
      assertThat(catalog.find(FindQuery.builder().path("root/.ssh/authorized_keys").build()))
          .hasSize(100);
    }
  }
}
