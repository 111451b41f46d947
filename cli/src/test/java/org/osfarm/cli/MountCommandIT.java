package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.core.testing.Programs;
import org.osfarm.mount.MountTable;

/** {@code osfarm mount} in background mode and {@code osfarm umount}, with their errors. */
@Tag("slow")
class MountCommandIT {
  @TempDir Path dir;

  record Result(int exit, String out, String err) {}

  static Result osfarm(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    return new Result(exit, out.toString(), err.toString());
  }

  @Test
  void mountsInTheBackgroundAndUnmountsWithCleanErrors() throws Exception {
    boolean fuse = Files.exists(Path.of("/dev/fuse"));
    if (!fuse && Programs.inCi()) {
      throw new AssertionError("/dev/fuse is missing; CI must run with FUSE available");
    }
    assumeTrue(fuse, "/dev/fuse is absent");
    Programs.require("fusermount3");
    Path tree = Files.createDirectories(dir.resolve("tree/etc"));
    Files.writeString(tree.resolve("motd"), "welcome\n");
    Path repoDir = dir.resolve("repo");
    try (Repository repo = Repository.init(repoDir);
        DirectorySource src = new DirectorySource(dir.resolve("tree"), ProgressListener.NONE)) {
      repo.publish(src, "images/tiny", "tiny", Map.of(), ProgressListener.NONE);
    }
    Path mp = Files.createDirectories(dir.resolve("mnt"));
    Path cache = dir.resolve("cache");

    Result r = osfarm("umount", mp.toString());
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("is not mounted");

    r =
        osfarm(
            "mount", repoDir.toString(), "images/nope", mp.toString(), "--cache", cache.toString());
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("no ref or snapshot 'images/nope'");

    r =
        osfarm(
            "mount",
            repoDir.toString(),
            "images/tiny",
            mp.toString(),
            "--cache",
            cache.toString(),
            "--stats-file",
            dir.resolve("stats.json").toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out()).contains("mounted on " + mp);
    assertThat(MountTable.isMounted(mp, MountTable.FUSE_TYPE)).isTrue();
    assertThat(Files.readString(mp.resolve("etc/motd"))).isEqualTo("welcome\n");
    assertThat(Files.readString(cache.resolve("mount.log")))
        .as("the serving process has native access (FUSE, libcrypto)")
        .doesNotContain("restricted method");

    r = osfarm("mount", repoDir.toString(), "images/tiny", mp.toString());
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("already an osfarm mount");

    // busy: a process has its working directory in the mount
    Process busy = new ProcessBuilder("sleep", "60").directory(mp.resolve("etc").toFile()).start();
    try {
      r = osfarm("umount", mp.toString());
      assertThat(r.exit()).isEqualTo(1);
      assertThat(r.err()).contains("is busy");
      assertThat(MountTable.isMounted(mp, MountTable.FUSE_TYPE)).isTrue();
    } finally {
      busy.destroy();
      busy.waitFor(10, TimeUnit.SECONDS);
    }

    r = osfarm("umount", mp.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(MountTable.isMounted(mp, MountTable.FUSE_TYPE)).isFalse();
    // the background process saw the unmount, wrote its final statistics and exited
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (ProcessHandle.allProcesses()
        .anyMatch(
            p ->
                p.pid() != ProcessHandle.current().pid()
                    && p.info().commandLine().orElse("").contains("--cache " + cache))) {
      assertThat(System.nanoTime()).as("serving process still running").isLessThan(deadline);
      Thread.sleep(100);
    }
    assertThat(Files.readString(dir.resolve("stats.json"))).contains("\"objectsFetched\":");
  }
}
