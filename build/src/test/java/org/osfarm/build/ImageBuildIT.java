package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
import org.osfarm.core.Digest;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.testing.Programs;

/**
 * Real builds from the Debian mirror, shared by the tests of this class: one bookworm appliance
 * (core, base, image, appliance layers; with a kernel) is built once, written as raw, qcow2, OCI
 * and tar.zst, checked by e2fsck, qemu-img, skopeo, and booted twice under QEMU. The later tests
 * build image layers on its cached core and base layers (a few seconds each): confinement of layer
 * scripts, concurrent builds, unreachable mirrors, the .deb cache.
 */
@Tag("slow")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImageBuildIT {
  static final String MARKER = "OSFARM-BOOT-MARKER";
  @TempDir static Path tmp;
  static Repository repo;
  static ImageBuilder builder;
  static BuildResult first;
  static Path runDir;
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
    runDir = run;
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
    return cat(first.snapshot(), path);
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

  /** A spec on the cached core and base layers with an image layer of {@code packages}. */
  static ImageSpec.Builder onBase(String... packages) {
    return ImageSpec.builder()
        .className("debian-bookworm")
        .group("core")
        .group("base")
        .packages(packages);
  }

  static String cat(Digest snapshot, String path) throws IOException {
    try (var in =
        repo.openContent(repo.lookupFile(snapshot, path.getBytes(StandardCharsets.UTF_8)))) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /**
   * A layer script is confined: as root of the build's user namespace it is not host root, and
   * paths that lead out of its chroot (/proc/1/root is the build's pid 1, outside the chroot; a
   * chroot escape by its own chroot(2)) reach host directories it cannot write. The script ignores
   * its failed attempts, so the build succeeds, and records them in the image.
   */
  @Test
  @Order(7)
  void aLayerScriptCannotWriteOutsideItsBuildTree() throws IOException {
    List<Path> targets = new ArrayList<>();
    if (Userns.isRoot()) {
      // root's directories outside the cache; the namespace's root is a subordinate uid
      Path host = Files.createDirectories(tmp.resolve("host"));
      targets.add(Files.createDirectories(host.resolve("open")));
      targets.add(Files.createDirectories(host.resolve("closed")));
      Files.setPosixFilePermissions(host, PosixFilePermissions.fromString("rwxr-xr-x"));
      Files.setPosixFilePermissions(targets.get(0), PosixFilePermissions.fromString("rwxr-xr-x"));
      Files.setPosixFilePermissions(targets.get(1), PosixFilePermissions.fromString("rwx------"));
      // world-writable and sticky, as /tmp: the subordinate uid may write there, the build may not
      targets.add(Files.createDirectories(host.resolve("public")));
      Files.setAttribute(targets.get(2), "unix:mode", 01777);
    } else {
      // unprivileged, the namespace's root is the caller: it must not write what the caller cannot,
      // nor what the caller can, outside its build tree
      targets.add(Path.of("/etc"));
      targets.add(Files.createDirectories(tmp.resolve("host-own")));
    }
    String name = "osfarm-escaped-" + ProcessHandle.current().pid();
    String script =
        """
        #!/bin/sh
        attempt() { what=$1; shift; if ( "$@" ) 2>/dev/null; then r=wrote; else r=denied; fi
          echo "$what $r" >> /etc/osfarm-escape; }
        escape() { perl -e 'mkdir "/tmp/jail"; chroot "/tmp/jail" or die; chdir ".." for 1..64;
          chroot "." or die; open(my $f, ">", $ARGV[0]) or die; print $f "x\\n"; close $f' "$1"; }
        cat /proc/self/uid_map > /etc/osfarm-uid-map
        : > /etc/osfarm-escape
        for t in TARGETS; do
          attempt proc1-root sh -c 'echo x > "/proc/1/root$0/$1"' "$t" NAME
          attempt chroot-escape escape "$t/NAME"
          # a mount left behind would fail the build (mmdebstrap cannot remove the tree)
          attempt bind-mount sh -c 'mkdir -p /tmp/m && mount --bind "/proc/1/root$0" /tmp/m &&
            { echo x > "/tmp/m/$1"; r=$?; umount /tmp/m; exit $r; }' "$t" NAME
          if [ -d "/proc/1/root$t" ]; then echo "host-visible $t" >> /etc/osfarm-escape; fi
        done
        """
            .replace("NAME", name)
            .replace(
                "TARGETS",
                String.join(
                    " ", targets.stream().map(t -> MmdebstrapBackend.q(t.toString())).toList()));
    ImageSpec spec = onBase().script("escape", script).build();
    BuildResult r = null;
    RuntimeException failed = null;
    try {
      r = builder.build(spec, null, List.of(), LISTENER);
    } catch (RuntimeException e) {
      failed = e;
    }
    List<Path> escaped = new ArrayList<>();
    for (Path t : targets) {
      if (Files.deleteIfExists(t.resolve(name))) {
        escaped.add(t.resolve(name));
      }
    }
    assertThat(escaped).as("files a layer script wrote outside its build tree").isEmpty();
    if (failed != null) {
      throw failed;
    }
    assertThat(r.layersBuilt()).isEqualTo(1);
    String log = cat(r.snapshot(), "etc/osfarm-escape");
    assertThat(log).doesNotContain("wrote");
    assertThat(log.lines().filter(x -> x.endsWith(" denied"))).hasSize(3 * targets.size());
    for (Path t : targets) {
      // the routes lead to the host's directory, else their failure would prove nothing
      assertThat(log).contains("host-visible " + t);
    }
    // the script's root is not the host's: its uid 0 maps to another id outside
    String[] map = cat(r.snapshot(), "etc/osfarm-uid-map").strip().split("\\s+");
    assertThat(map[0]).isEqualTo("0");
    assertThat(map[1]).isNotEqualTo("0");
    if (Userns.isRoot()) {
      assertThat(Integer.parseInt(map[1])).isEqualTo(Userns.nsRoot()[0]);
    }
  }

  /** A build on its own thread, started with the others, its steps recorded in order. */
  static Future<BuildResult> buildAlongside(
      ExecutorService pool, CyclicBarrier start, ImageSpec spec, List<String> steps) {
    BuildListener l =
        new BuildListener() {
          @Override
          public void step(String message) {
            LISTENER.step(message);
            synchronized (steps) {
              steps.add(message);
            }
          }
        };
    return pool.submit(
        () -> {
          start.await();
          return builder.build(spec, null, List.of(), l);
        });
  }

  static Map<String, String> packages(Digest snapshot) {
    Map<String, String> m = new TreeMap<>();
    for (String line : repo.readSnapshot(snapshot).metadata().get("build.packages").split("\n")) {
      int at = line.indexOf('=');
      if (at > 0) {
        m.put(line.substring(0, at), line.substring(at + 1));
      }
    }
    return m;
  }

  @Test
  @Order(8)
  void concurrentBuildsOfDifferentSpecsDoNotInterfere() throws Exception {
    List<String> steps = new ArrayList<>();
    BuildResult pv;
    BuildResult tree;
    try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
      CyclicBarrier start = new CyclicBarrier(2);
      Future<BuildResult> a = buildAlongside(pool, start, onBase("pv").build(), steps);
      Future<BuildResult> b = buildAlongside(pool, start, onBase("tree").build(), steps);
      pv = a.get();
      tree = b.get();
    }
    assertThat(pv.layersBuilt()).isEqualTo(1);
    assertThat(tree.layersBuilt()).isEqualTo(1);
    // they ran at once: both image layers were building before either was built
    List<String> image = steps.stream().filter(x -> x.startsWith("layer image")).toList();
    assertThat(image).hasSize(4);
    assertThat(image.subList(0, 2)).allMatch(x -> x.endsWith(": building"));
    // each has its own package and not the other's, in its package list and its tree
    assertThat(packages(pv.snapshot())).containsKey("pv").doesNotContainKey("tree");
    assertThat(packages(tree.snapshot())).containsKey("tree").doesNotContainKey("pv");
    assertThat(repo.lookup(pv.snapshot(), "usr/bin/pv".getBytes())).isNotNull();
    assertThatThrownBy(() -> repo.lookup(pv.snapshot(), "usr/bin/tree".getBytes()))
        .hasMessageContaining("no such path");
    assertThat(repo.lookup(tree.snapshot(), "usr/bin/tree".getBytes())).isNotNull();
    assertThatThrownBy(() -> repo.lookup(tree.snapshot(), "usr/bin/pv".getBytes()))
        .hasMessageContaining("no such path");
    // and both are on the same base layer
    assertThat(repo.readSnapshot(pv.snapshot()).metadata().get("build.layer.parent"))
        .isEqualTo(repo.readSnapshot(tree.snapshot()).metadata().get("build.layer.parent"));
  }

  @Test
  @Order(9)
  void identicalConcurrentRequestsBuildOnce() throws Exception {
    ImageSpec spec = onBase("hello").build();
    List<String> steps = new ArrayList<>();
    BuildResult one;
    BuildResult two;
    try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
      CyclicBarrier start = new CyclicBarrier(2);
      Future<BuildResult> a = buildAlongside(pool, start, spec, steps);
      Future<BuildResult> b = buildAlongside(pool, start, spec, steps);
      one = a.get();
      two = b.get();
    }
    // both planned before either had built it: the second waited for the first's layer lock
    assertThat(one.plan().top().cached()).isNull();
    assertThat(two.plan().top().cached()).isNull();
    assertThat(List.of(one.layersBuilt(), two.layersBuilt())).containsExactlyInAnyOrder(1, 0);
    assertThat(List.of(one.layersReused(), two.layersReused())).containsExactlyInAnyOrder(2, 3);
    assertThat(steps.stream().filter(x -> x.matches("layer image \\w+: building"))).hasSize(1);
    assertThat(one.snapshot()).isEqualTo(two.snapshot());
    assertThat(repo.refs().get(one.plan().top().ref())).contains(one.snapshot());
  }

  /**
   * An unreachable mirror fails the build, soon, with a message naming it, and nothing is
   * published: when its state is fetched (planning), and when the state was remembered (within the
   * class's TTL) and the mirror went down since (apt in the build).
   */
  @Test
  @Order(10)
  void anUnreachableMirrorFailsFastNamingItAndPublishesNothing(@TempDir Path classes)
      throws IOException {
    String down = "http://127.0.0.1:9/debian"; // nothing listens on the discard port
    Map<String, Digest> refsBefore = repo.refs().list();
    // an extra repository of the spec
    ImageSpec extra =
        onBase("hello").repository(new ImageSpec.Repo(down, "bookworm", null, null)).build();
    // a class's mirror (a class file of its own)
    String yaml;
    try (var in = ClassRegistry.resource("classes/debian-bookworm.yaml")) {
      yaml = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    Files.writeString(
        classes.resolve("unreachable.yaml"),
        yaml.replace("name: debian-bookworm", "name: debian-unreachable")
            .replace("mirror: http://deb.debian.org/debian", "mirror: " + down));
    ImageBuilder other = new ImageBuilder(repo, ClassRegistry.load(List.of(classes)), runDir);
    ImageSpec own = onBase("hello").className("debian-unreachable").build();
    failsNaming(builder, extra, "mirror " + down + " unreachable");
    failsNaming(other, own, "mirror " + down + " unreachable");
    Files.writeString(
        MirrorState.memo(MirrorState.memoDir(runDir), down, "bookworm"),
        System.currentTimeMillis() + " " + "0".repeat(64) + "\n");
    failsNaming(builder, extra, down);
    failsNaming(other, own, down);
    assertThat(repo.refs().list()).isEqualTo(refsBefore);
    try (var empty = Files.list(runDir.resolve("debs/debian-unreachable-amd64"))) {
      if (empty.findAny().isEmpty()) { // not left in the shared .deb cache
        Files.delete(runDir.resolve("debs/debian-unreachable-amd64"));
      }
    }
  }

  static void failsNaming(ImageBuilder b, ImageSpec spec, String problem) {
    assertTimeout(
        Duration.ofMinutes(2),
        () ->
            assertThatThrownBy(() -> b.build(spec, "images/unreachable", List.of(), LISTENER))
                .isInstanceOf(BuildException.class)
                .hasMessageContaining(problem));
  }

  @Test
  @Order(11)
  void downloadedDebsAreCachedForLaterBuilds() throws IOException {
    Path debs = runDir.resolve("debs/debian-bookworm-amd64");
    // this run downloads it: a copy an earlier run cached is removed first
    try (var old = Files.newDirectoryStream(debs, "dos2unix_*.deb")) {
      for (Path p : old) {
        Files.delete(p);
      }
    }
    BuildResult first = builder.build(onBase("dos2unix").build(), null, List.of(), LISTENER);
    String version = packages(first.snapshot()).get("dos2unix");
    Path deb = debs.resolve("dos2unix_" + version.replace(":", "%3a") + "_amd64.deb");
    assertThat(deb).isRegularFile();
    // Another layer that needs it installs the cached file, not a download: the cached file gets
    // a time no download has (apt gives a download the server's Last-Modified) and the layer's
    // script records the time of the .deb apt installed from.
    Files.setLastModifiedTime(deb, FileTime.from(Instant.ofEpochSecond(1_000_000_000)));
    ImageSpec again =
        onBase("dos2unix")
            .script("deb-time", "stat -c %Y /var/cache/apt/archives/dos2unix_*.deb > /etc/deb-time")
            .build();
    BuildResult second = builder.build(again, null, List.of(), LISTENER);
    assertThat(second.layersBuilt()).isEqualTo(1);
    assertThat(cat(second.snapshot(), "etc/deb-time")).isEqualTo("1000000000\n");
  }
}
