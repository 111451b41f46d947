package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.testing.Programs;

/**
 * Real builds from the Debian mirror, shared by the tests of this class: one bookworm appliance
 * (core, base, image, appliance layers; with a kernel) is built once, written as raw, qcow2, OCI
 * and tar.zst, checked by e2fsck, qemu-img, skopeo, and booted twice under QEMU.
 */
@Tag("slow")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImageBuildIT {
  static final String MARKER = "OSFARM-BOOT-MARKER";
  @TempDir static Path tmp;
  static Repository repo;
  static ImageBuilder builder;
  static BuildResult first;
  static final List<String> log = new ArrayList<>();

  static final BuildListener LISTENER =
      new BuildListener() {
        @Override
        public void step(String message) {
          System.err.println("[build] " + message);
        }

        @Override
        public void log(String line) {
          synchronized (log) {
            log.add(line);
          }
        }
      };

  static ImageSpec applianceSpec() {
    return ImageSpec.builder()
        .name("appliance")
        .className("debian-bookworm")
        .arch("amd64")
        .group("core")
        .group("base")
        .packages("openssh-server")
        .kernel(true)
        .rootPassword("osfarm")
        .user(new ImageSpec.User("alice", null, List.of("ssh-ed25519 AAAAC3Nza alice@test"), true))
        .hostname("farm1")
        .file("/etc/motd", "0644", "built by osfarm\n")
        .script("mark", "echo scripted > /etc/osfarm-scripted")
        .service("ssh")
        .firstBoot(
            "marker",
            "echo \""
                + MARKER
                + " machine-id=$(cat /etc/machine-id)"
                + " hostkey=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)\""
                + " > /dev/ttyS0\n"
                // repeated: systemd's own console output may interleave with a line
                + "sleep 1; echo \"$(cat /etc/machine-id)\" > /dev/null\n"
                + "for i in 1 2 3; do echo \""
                + MARKER
                + " machine-id=$(cat /etc/machine-id)"
                + " hostkey=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)\""
                + " > /dev/ttyS0; sleep 1; done\nsystemctl poweroff\n")
        .build();
  }

  static Path cacheDir() {
    // .debs persist across runs (as CI caches them); layers live in the per-run repository.
    return Path.of("/var/tmp/osfarm-build-test");
  }

  @BeforeAll
  static void setUp() throws IOException {
    Programs.require("mmdebstrap");
    // the build namespace's root (an unprivileged uid when we are root) must reach the cache
    Files.setPosixFilePermissions(
        tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    repo = Repository.init(tmp.resolve("repo"));
    Path cache = cacheDir();
    // outputs and mirror memos are per run; .debs are shared
    Path run = tmp.resolve("cache");
    Files.createDirectories(run);
    Files.createDirectories(cache.resolve("debs"));
    Files.createSymbolicLink(run.resolve("debs"), cache.resolve("debs"));
    builder = new ImageBuilder(repo, ClassRegistry.builtIn(), run);
  }

  @AfterAll
  static void tearDown() {
    if (repo != null) {
      repo.close();
    }
  }

  static String sh(String script) throws IOException {
    return Programs.sh(tmp, script);
  }

  static String cat(String path) throws IOException {
    try (var in =
        repo.openContent(
            repo.lookupFile(first.snapshot(), path.getBytes(StandardCharsets.UTF_8)))) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  @Order(1)
  void coldBuildMakesEveryLayerAndAllOutputs() throws IOException {
    Programs.require("qemu-img");
    Programs.require("skopeo");
    Programs.require("e2fsck");
    BuildPlan plan = builder.plan(applianceSpec(), true, false);
    assertThat(plan.layers())
        .extracting(PlannedLayer::kind)
        .containsExactly(LayerKind.CORE, LayerKind.BASE, LayerKind.IMAGE, LayerKind.APPLIANCE);
    assertThat(plan.layers()).allMatch(l -> l.cached() == null);
    first =
        builder.build(
            applianceSpec(),
            "images/appliance",
            List.of(
                new OutputRequest(tmp.resolve("out/a.raw"), OutputFormat.RAW),
                new OutputRequest(tmp.resolve("out/a.qcow2"), OutputFormat.QCOW2),
                new OutputRequest(tmp.resolve("out/a.tar.zst"), OutputFormat.TAR_ZST),
                new OutputRequest(tmp.resolve("out/oci"), OutputFormat.OCI)),
            LISTENER);
    assertThat(first.layersBuilt()).isEqualTo(4);
    assertThat(repo.resolve("images/appliance")).isEqualTo(first.snapshot());
    for (PlannedLayer l : plan.layers()) {
      assertThat(repo.refs().get(l.ref())).isPresent();
    }
    // the spec took effect
    assertThat(cat("etc/motd")).isEqualTo("built by osfarm\n");
    assertThat(cat("etc/hostname")).isEqualTo("farm1\n");
    assertThat(cat("etc/osfarm-scripted")).isEqualTo("scripted\n");
    assertThat(cat("home/alice/.ssh/authorized_keys")).contains("alice@test");
    assertThat(cat("etc/shadow")).containsPattern("(?m)^root:\\$");
    assertThat(cat("etc/group")).containsPattern("(?m)^sudo:.*alice");
    assertThat(
            repo.lookup(
                first.snapshot(),
                "etc/systemd/system/multi-user.target.wants/ssh.service".getBytes()))
        .isNotNull();
    // provenance: packages and spec in the metadata
    Snapshot s = repo.readSnapshot(first.snapshot());
    assertThat(s.metadata().get("build.packages"))
        .containsPattern("(?m)^openssh-server=1:9\\.")
        .containsPattern("(?m)^linux-image-amd64=");
    assertThat(s.metadata().get("spec")).contains("debian-bookworm").doesNotContain("\"osfarm\"");
    assertThat(s.metadata().get("build.layer.kind")).isEqualTo("appliance");
    // personalization: no identity is shipped
    assertThat(cat("etc/machine-id")).isEmpty();
    assertThatThrownBy(() -> cat("etc/ssh/ssh_host_ed25519_key"))
        .hasMessageContaining("no such path");
    assertThat(cat("etc/systemd/system/osfarm-firstboot.service")).contains("firstboot");
    // outputs, checked by the real tools
    sh("e2fsck -fn out/a.raw");
    assertThat(sh("qemu-img check out/a.qcow2")).contains("No errors");
    assertThat(sh("qemu-img info out/a.qcow2")).contains("file format: qcow2");
    String inspect = sh("skopeo inspect oci:out/oci:latest");
    assertThat(
            Pattern.compile("sha256:[0-9a-f]{64}")
                .matcher(inspect.substring(inspect.indexOf("\"Layers\"")))
                .results()
                .count())
        .isGreaterThanOrEqualTo(4);
    assertThat(sh("zstd -dc out/a.tar.zst | tar -t | grep -c 'etc/motd'").strip()).isEqualTo("1");
    // the ext4 image is byte-reproducible: the same snapshot written again (another work
    // directory, other unpacking times) gives the same bytes, and e2fsck finds it clean
    Path again = tmp.resolve("again.raw");
    Path otherWork = Files.createDirectories(tmp.resolve("other-work"));
    Files.setPosixFilePermissions(
        otherWork, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    ImageWriters.raw(repo, first.snapshot(), again, otherWork, BuildListener.NONE);
    sh("e2fsck -fn again.raw");
    assertThat(sh("sha256sum < again.raw")).isEqualTo(sh("sha256sum < out/a.raw"));
    // its identity comes from the snapshot
    assertThat(sh("dumpe2fs -h again.raw 2>/dev/null | grep -i 'uuid'"))
        .contains(ImageWriters.uuid(first.snapshot()));
    // and its inode times are the snapshot's, not the time the tree was unpacked
    String t = String.valueOf(repo.readSnapshot(first.snapshot()).time().getEpochSecond());
    assertThat(sh("debugfs -R 'stat /etc/motd' again.raw 2>/dev/null | grep -E '^ *(a|c)time'"))
        .contains("0x" + Long.toHexString(Long.parseLong(t)))
        .doesNotContainPattern("ctime: 0x(?!" + Long.toHexString(Long.parseLong(t)) + ")");
  }

  @Test
  @Order(2)
  void itBootsAndEachDeliveryGetsItsOwnIdentity() throws IOException {
    Programs.require("qemu-system-x86_64");
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      String console =
          BootCheck.boot(
              repo,
              first.snapshot(),
              tmp.resolve("out/a.qcow2"),
              OutputFormat.QCOW2,
              MARKER,
              Duration.ofMinutes(6),
              tmp.resolve("boot"));
      Matcher m =
          Pattern.compile(MARKER + " machine-id=(\\w{32}) hostkey=(SHA256:[A-Za-z0-9+/]{43})")
              .matcher(console);
      assertThat(m.find()).as(console).isTrue();
      assertThat(m.group(1)).hasSize(32);
      ids.add(m.group(1) + " " + m.group(2));
    }
    assertThat(ids.get(0).split(" ")[0]).isNotEqualTo(ids.get(1).split(" ")[0]);
    assertThat(ids.get(0).split(" ")[1]).isNotEqualTo(ids.get(1).split(" ")[1]);
  }

  @Test
  @Order(3)
  void anIdenticalRequestIsAnsweredFromTheCache() throws IOException {
    Path out = tmp.resolve("out/b.tar.zst");
    BuildResult r =
        builder.build(
            applianceSpec(),
            "images/appliance",
            List.of(new OutputRequest(out, OutputFormat.TAR_ZST)),
            LISTENER);
    assertThat(r.layersBuilt()).isZero();
    assertThat(r.outputsFromCache()).isEqualTo(1);
    assertThat(r.snapshot()).isEqualTo(first.snapshot());
    assertThat(sh("cmp out/a.tar.zst out/b.tar.zst && echo same").strip()).isEqualTo("same");
  }

  @Test
  @Order(4)
  void aChangedPackageSetReusesCoreAndBaseAndExplainsTheMiss() throws IOException {
    ImageSpec more =
        ImageSpec.builder()
            .className("debian-bookworm")
            .group("core")
            .group("base")
            .packages("openssh-server", "curl")
            .build();
    BuildPlan plan = builder.plan(more, true, false);
    assertThat(plan.layers().get(0).cached()).isNotNull();
    assertThat(plan.layers().get(1).cached()).isNotNull();
    assertThat(plan.layers().get(2).cached()).isNull();
    assertThat(plan.layers().get(2).explanation()).contains("packages +curl");
    assertThat(plan.render()).contains("cached").contains("miss");
    // --explain on cached layers: what they resolved (name=version)
    assertThat(plan.layers().get(1).explanation())
        .containsPattern("resolved \\d+ packages; on its parent: .*systemd-sysv=252");
    BuildResult r = builder.build(more, null, List.of(), LISTENER);
    assertThat(r.layersReused()).isEqualTo(2);
    assertThat(r.layersBuilt()).isEqualTo(1);
    Snapshot image = repo.readSnapshot(r.snapshot());
    assertThat(image.metadata().get("build.packages"))
        .containsPattern("(?m)^curl=7\\.")
        .containsPattern("(?m)^systemd-sysv=");
    // copy-on-write: built in an overlay over a checkout of the cached base layer
    assertThat(image.metadata().get("build.layer.method")).isEqualTo("overlay");
    Path checkout =
        tmp.resolve("cache/checkouts").resolve(plan.layers().get(1).key().hex()).resolve("root");
    assertThat(checkout.resolve("usr/bin/dpkg")).exists();
    assertThat(checkout.resolve("dev/null")).doesNotExist();
    if (Userns.nsRoot() != null) {
      // as root the checkout belongs to the ids the build namespace maps the image's owners to
      int[] ns = Userns.nsRoot();
      assertThat(Files.getAttribute(checkout.resolve("usr/bin/dpkg"), "unix:uid")).isEqualTo(ns[0]);
      assertThat(Files.getAttribute(checkout.resolve("etc/shadow"), "unix:gid"))
          .isEqualTo(ns[1] + 42); // group shadow
    }
    // the same content as a from-scratch build of the same spec (one mmdebstrap run, no reuse):
    // every path, type, mode, owner, size and content digest; only times may differ
    Path scratchCache = Files.createDirectories(tmp.resolve("scratch-cache"));
    Files.createSymbolicLink(scratchCache.resolve("debs"), cacheDir().resolve("debs"));
    try (Repository other = Repository.init(tmp.resolve("scratch-repo"))) {
      BuildResult scratch =
          new ImageBuilder(other, ClassRegistry.builtIn(), scratchCache)
              .build(more, null, List.of(), LISTENER);
      assertThat(scratch.layersBuilt()).isEqualTo(3);
      assertThat(other.readSnapshot(scratch.snapshot()).metadata().get("build.layer.method"))
          .isNull();
      List<String> overlay = manifestWithoutTimes(repo, r.snapshot());
      List<String> fromScratch = manifestWithoutTimes(other, scratch.snapshot());
      assertThat(overlay).hasSizeGreaterThan(10_000);
      List<String> onlyOverlay = new ArrayList<>(overlay);
      onlyOverlay.removeAll(fromScratch);
      List<String> onlyScratch = new ArrayList<>(fromScratch);
      onlyScratch.removeAll(overlay);
      assertThat(onlyOverlay).as("entries only in the overlay-built layer").isEmpty();
      assertThat(onlyScratch).as("entries only in the from-scratch build").isEmpty();
      assertThat(overlay).isEqualTo(fromScratch);
    }
  }

  /** The manifest of a snapshot with the mtime column dropped. */
  static List<String> manifestWithoutTimes(Repository r, org.osfarm.core.Digest snap) {
    List<String> out = new ArrayList<>();
    r.manifest(
        snap,
        line -> {
          String[] f = line.split(" ");
          f[6] = "-";
          out.add(String.join(" ", f));
        });
    return out;
  }

  @Test
  @Order(5)
  void anUnknownPackageFailsNamingItAndPublishesNothing() throws IOException {
    ImageSpec bad =
        ImageSpec.builder()
            .className("debian-bookworm")
            .group("core")
            .group("base")
            .packages("no-such-package-osfarm")
            .build();
    BuildPlan plan = builder.plan(bad, false, false);
    int refsBefore = repo.refs().list().size();
    assertThatThrownBy(() -> builder.build(bad, "images/bad", List.of(), LISTENER))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("unknown package 'no-such-package-osfarm'");
    assertThat(repo.refs().get(plan.top().ref())).isEmpty();
    assertThat(repo.refs().get("images/bad")).isEmpty();
    assertThat(repo.refs().list()).hasSize(refsBefore);
  }

  @Test
  @Order(6)
  void badSpecsFailFast() {
    assertThatThrownBy(
            () ->
                builder.plan(ImageSpec.builder().className("debian-potato").build(), false, false))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("unknown class 'debian-potato'");
    assertThatThrownBy(
            () ->
                builder.plan(
                    ImageSpec.builder().className("ubuntu-noble").arch("i386").build(),
                    false,
                    false))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("no architecture 'i386'");
    assertThatThrownBy(
            () ->
                builder.plan(
                    ImageSpec.builder().className("debian-bookworm").group("nope").build(),
                    false,
                    false))
        .hasMessageContaining("unknown group 'nope'");
  }
}
