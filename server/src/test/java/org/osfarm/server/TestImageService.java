package org.osfarm.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.osfarm.build.BuildListener;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.DistroClass;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.SpecException;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.PublishResult;
import org.osfarm.core.Repository;

/**
 * An image service for testing the queue's orchestration quickly: it publishes a small real tree (a
 * file per requested package) into the real repository and exports it as the output, optionally
 * waiting on a gate first so a test can hold a build "running". The real builder is exercised by
 * {@link BrowserWalkTest}.
 */
final class TestImageService implements ImageService {
  final AtomicInteger builds = new AtomicInteger();
  volatile ImageSpec lastSpec;
  volatile CountDownLatch gate = new CountDownLatch(0);
  volatile CountDownLatch started = new CountDownLatch(1);
  volatile Repository repo;
  final Path work;

  TestImageService(Path work) {
    this.work = work;
  }

  @Override
  public Collection<DistroClass> classes() {
    return ClassRegistry.builtIn().all();
  }

  @Override
  public void check(ImageSpec spec, OutputFormat format) {
    new BuilderImageService(
            new org.osfarm.build.ImageBuilder(repo, ClassRegistry.builtIn(), work.resolve("c")))
        .check(spec, format);
  }

  @Override
  public Outcome build(
      ImageSpec spec, String ref, Path output, OutputFormat format, BuildListener l)
      throws IOException {
    builds.incrementAndGet();
    lastSpec = spec;
    started.countDown();
    l.step("layer image: building");
    l.log("test build of " + spec.name());
    try {
      if (!gate.await(120, TimeUnit.SECONDS)) {
        throw new IOException("gate never opened");
      }
    } catch (InterruptedException e) {
      throw new IOException("interrupted", e);
    }
    for (int i = 0; repo == null && i < 100; i++) {
      try {
        Thread.sleep(50); // the test sets repo right after start(); a resumed job may be quicker
      } catch (InterruptedException e) {
        throw new IOException("interrupted", e);
      }
    }
    if (spec.packages().contains("does-not-exist")) {
      throw new SpecException("package does-not-exist is not in the mirror");
    }
    Path dir = Files.createTempDirectory(work, "tree");
    Files.writeString(dir.resolve("name"), spec.name() + "\n");
    for (String p : spec.packages()) {
      Files.writeString(dir.resolve("pkg-" + p), p + "\n", StandardCharsets.UTF_8);
    }
    PublishResult r =
        repo.publish(
            new DirectorySource(dir, ProgressListener.NONE),
            ref,
            "test build",
            Map.of("spec", spec.toString()),
            ProgressListener.NONE);
    repo.export(
        r.snapshot(),
        java.util.List.of(),
        ExportFormat.parse(format.label()),
        output,
        ProgressListener.NONE);
    return new Outcome(r.snapshot(), 1, 0, false);
  }
}
