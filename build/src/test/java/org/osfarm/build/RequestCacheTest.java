package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.Digest;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;

/**
 * The request cache against a real repository, real refs and real tar outputs. Every layer of the
 * plan is cached beforehand (a small published tree under each {@code cache/layers/<key>}) and the
 * mirror state is remembered, so the full path answers from the cache without mmdebstrap or
 * network; the fast lane must then give the same answer, and decline whenever an input changed.
 */
class RequestCacheTest {
  @TempDir Path tmp;
  Repository repo;
  Path cache;
  ImageBuilder builder;
  ImageSpec spec;
  final List<String> steps = new ArrayList<>();
  final BuildListener listener =
      new BuildListener() {
        @Override
        public void step(String message) {
          steps.add(message);
        }
      };

  @BeforeEach
  void setUp() throws IOException {
    repo = Repository.init(tmp.resolve("repo"));
    cache = tmp.resolve("cache");
    builder = new ImageBuilder(repo, ClassRegistry.builtIn(), cache);
    spec =
        ImageSpec.builder()
            .className("debian-bookworm")
            .group("core")
            .group("base")
            .packages("openssh-server")
            .build();
    DistroClass c = ClassRegistry.builtIn().get("debian-bookworm");
    Path memo = MirrorState.memo(MirrorState.memoDir(cache), c.mirror(), c.suite());
    Files.createDirectories(memo.getParent());
    Files.writeString(memo, System.currentTimeMillis() + " " + "ab".repeat(32) + "\n");
    Path tree = Files.createDirectories(tmp.resolve("tree/etc"));
    Files.writeString(tree.resolve("machine-id"), "");
    Files.writeString(tree.resolve("os-release"), "ID=debian\n");
    Digest image =
        repo.publish(
                new DirectorySource(tmp.resolve("tree"), ProgressListener.NONE),
                "scratch",
                "test image",
                Map.of(),
                ProgressListener.NONE)
            .snapshot();
    for (PlannedLayer l : builder.plan(spec, false, false).layers()) {
      repo.tag(l.ref(), image.hex());
    }
  }

  RequestCache.Request request(Path out) {
    return new RequestCache.Request(
        repo.directory(), null, spec, "images/web", List.of(OutputRequest.of(out, null)));
  }

  BuildResult fullPath(Path out) throws IOException {
    BuildResult r =
        builder.build(spec, "images/web", List.of(OutputRequest.of(out, null)), listener);
    new RequestCache(cache, false).record(request(out), repo, r, "images/web");
    return r;
  }

  @Test
  void anAnsweredRequestIsAnsweredAgainWithTheSameSnapshotBytesAndLines() throws IOException {
    Path first = tmp.resolve("out/first.tar");
    BuildResult slow = fullPath(first);
    assertThat(slow.layersBuilt()).isZero();
    List<String> slowSteps = new ArrayList<>(steps);
    steps.clear();

    Path second = tmp.resolve("out/second.tar");
    RequestCache.Hit hit =
        new RequestCache(cache, false).answer(request(second), listener).orElseThrow();
    assertThat(hit.snapshot()).isEqualTo(slow.snapshot());
    assertThat(hit.layersReused()).isEqualTo(3);
    assertThat(hit.outputsFromCache()).isEqualTo(1);
    assertThat(Files.readAllBytes(second)).isEqualTo(Files.readAllBytes(first));
    // the same lines, but for the output's name and the ref (already there: the full path says
    // "updated" the first time only)
    assertThat(steps.subList(0, 3)).isEqualTo(slowSteps.subList(0, 3));
    assertThat(steps.get(3)).isEqualTo("ref images/web: no_change");
    assertThat(steps.get(4)).isEqualTo("output " + second + ": from cache");
  }

  @Test
  void deliveriesShareNoInodeSoWritingOneCorruptsNothing() throws IOException {
    Path first = tmp.resolve("out/first.tar");
    fullPath(first);
    Path second = tmp.resolve("out/second.tar");
    new RequestCache(cache, false).answer(request(second), listener).orElseThrow();
    Path cached =
        ImageBuilder.cachedOutput(
            cache, builder.plan(spec, false, false).top().key().hex(), OutputFormat.TAR);
    Object ino = Files.getAttribute(cached, "unix:ino");
    assertThat(Files.getAttribute(first, "unix:ino")).isNotEqualTo(ino);
    assertThat(Files.getAttribute(second, "unix:ino"))
        .isNotEqualTo(ino)
        .isNotEqualTo(Files.getAttribute(first, "unix:ino"));
    assertThat(Files.getAttribute(cached, "unix:nlink")).isEqualTo(1);
    byte[] pristine = Files.readAllBytes(cached);
    // a user appends to and overwrites the delivered file (as root, modes would not stop it)
    Files.writeString(second, "scribble", StandardOpenOption.APPEND);
    Files.writeString(first, "overwritten", StandardOpenOption.TRUNCATE_EXISTING);
    assertThat(Files.readAllBytes(cached)).isEqualTo(pristine);
    assertThat(OutputDelivery.spare(cached)).exists(); // made again after the second delivery
    Path third = tmp.resolve("out/third.tar");
    new RequestCache(cache, false).answer(request(third), listener).orElseThrow();
    assertThat(Files.readAllBytes(third)).isEqualTo(pristine);
  }

  @Test
  void theCommandLinesSpareIsCopiedAfterTheAnswerFromTheEntry() throws Exception {
    ImageBuilder commandLine = new ImageBuilder(repo, ClassRegistry.builtIn(), cache, true);
    Path first = tmp.resolve("out/first.tar");
    commandLine.build(spec, "images/web", List.of(OutputRequest.of(first, null)), listener);
    Path cached =
        ImageBuilder.cachedOutput(
            cache, builder.plan(spec, false, false).top().key().hex(), OutputFormat.TAR);
    Path spare = OutputDelivery.spare(cached);
    // a detached process makes it a second after the answer (renamed into place when complete)
    for (int i = 0; i < 300 && !Files.exists(spare); i++) {
      Thread.sleep(100);
    }
    assertThat(spare).exists();
    byte[] pristine = Files.readAllBytes(cached);
    assertThat(Files.readAllBytes(first)).isEqualTo(pristine);
    assertThat(Files.readAllBytes(spare)).isEqualTo(pristine);
    assertThat(Files.getAttribute(spare, "unix:ino"))
        .isNotEqualTo(Files.getAttribute(cached, "unix:ino"))
        .isNotEqualTo(Files.getAttribute(first, "unix:ino"));
    try (var leftovers = Files.list(cached.getParent())) {
      assertThat(leftovers.map(p -> p.getFileName().toString()))
          .containsExactlyInAnyOrder("image.tar", "image.tar.spare");
    }
  }

  @Test
  void aChangedInputIsAMissAndLeavesTheTargetAlone() throws IOException {
    Path first = tmp.resolve("out/first.tar");
    fullPath(first);
    Path target = tmp.resolve("out/again.tar");
    RequestCache rc = new RequestCache(cache, false);
    DistroClass c = ClassRegistry.builtIn().get("debian-bookworm");
    Path memo = MirrorState.memo(MirrorState.memoDir(cache), c.mirror(), c.suite());
    String memoWas = Files.readString(memo);

    // the mirror state was refreshed (another Release file): the plan would compute other keys
    Files.writeString(memo, System.currentTimeMillis() + " " + "cd".repeat(32) + "\n");
    assertThat(rc.answer(request(target), listener)).isEmpty();
    // its TTL expired: the plan would fetch it again
    Files.writeString(memo, (System.currentTimeMillis() - 25 * 3600_000L) + " " + "ab".repeat(32));
    assertThat(rc.answer(request(target), listener)).isEmpty();
    Files.writeString(memo, memoWas);
    assertThat(rc.answer(request(tmp.resolve("out/ok.tar")), listener)).isPresent();

    // a layer ref moved (e.g. rebuilt), or the image's ref points elsewhere
    PlannedLayer base = builder.plan(spec, false, false).layers().get(1);
    Digest was = repo.refs().get(base.ref()).orElseThrow();
    repo.refs().compareAndSet(base.ref(), was, null, "test");
    assertThat(rc.answer(request(target), listener)).isEmpty();
    repo.tag(base.ref(), was.hex());
    Digest other =
        repo.publish(
                new DirectorySource(
                    Files.createDirectories(tmp.resolve("other")), ProgressListener.NONE),
                "other",
                "other",
                Map.of(),
                ProgressListener.NONE)
            .snapshot();
    repo.tag("images/web", other.hex());
    assertThat(rc.answer(request(target), listener)).isEmpty();

    // another request (one more package) has no entry
    RequestCache.Request more =
        new RequestCache.Request(
            repo.directory(),
            null,
            ImageSpec.builder()
                .className("debian-bookworm")
                .group("core")
                .group("base")
                .packages("openssh-server", "curl")
                .build(),
            "images/web",
            List.of(OutputRequest.of(target, null)));
    assertThat(rc.answer(more, listener)).isEmpty();
    assertThat(target).doesNotExist();
  }

  @Test
  void theKeyIgnoresOrderAndOutputPathsButNotFormats() throws IOException {
    Path a = tmp.resolve("a.tar");
    ImageSpec reordered =
        ImageSpec.builder()
            .className("debian-bookworm")
            .group("base")
            .group("core")
            .packages("openssh-server")
            .build();
    RequestCache.Request r1 = request(a);
    RequestCache.Request r2 =
        new RequestCache.Request(
            repo.directory(),
            null,
            reordered,
            "images/web",
            List.of(OutputRequest.of(tmp.resolve("elsewhere/b.tar"), null)));
    assertThat(RequestCache.key(r2)).isEqualTo(RequestCache.key(r1));
    RequestCache.Request zst =
        new RequestCache.Request(
            repo.directory(),
            null,
            spec,
            "images/web",
            List.of(OutputRequest.of(tmp.resolve("a.tar.zst"), null)));
    assertThat(RequestCache.key(zst)).isNotEqualTo(RequestCache.key(r1));
    assertThat(new String(RequestCache.key(r1).hex().getBytes(), StandardCharsets.US_ASCII))
        .hasSize(64);
  }
}
