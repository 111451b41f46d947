package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hook that ends a multi-layer run waits for the background snapshot streams: it must report a
 * failed or vanished stream instead of polling forever. Runs the hook's shell text with sh, as
 * mmdebstrap does, on the status files the snapshot hooks write.
 */
class SnapshotWaitHookTest {
  @TempDir Path work;

  private record Result(int exit, String err, double seconds) {}

  private Result runHook(int n) throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    Process p =
        new ProcessBuilder("sh", "-c", MmdebstrapBackend.waitHook(work, n))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
    p.getOutputStream().close();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).as("the wait hook ends").isTrue();
    return new Result(p.exitValue(), err, (System.nanoTime() - t0) / 1e9);
  }

  private Process background(String script) throws IOException {
    return new ProcessBuilder("sh", "-c", script).start();
  }

  private void pid(int k, long pid) throws IOException {
    Files.writeString(work.resolve("snap-" + k + ".pid"), pid + "\n");
  }

  @Test
  void succeedsWhenEveryStreamSucceeded() throws Exception {
    for (int k = 0; k < 2; k++) {
      pid(k, 999_999_999L);
      Files.writeString(work.resolve("snap-" + k + ".rc"), "0\n");
    }
    Result r = runHook(2);
    assertThat(r.exit()).as(r.err()).isZero();
  }

  @Test
  void waitsForARunningStreamThenSucceeds() throws Exception {
    Path rc = work.resolve("snap-0.rc");
    Process bg = background("sleep 1; echo 0 > '" + rc + ".tmp'; mv '" + rc + ".tmp' '" + rc + "'");
    pid(0, bg.pid());
    Result r = runHook(1);
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.seconds()).isGreaterThan(0.8);
  }

  @Test
  void failsWhenAStreamFailed() throws Exception {
    pid(0, 999_999_999L);
    Files.writeString(work.resolve("snap-0.rc"), "0\n");
    pid(1, 999_999_999L);
    Files.writeString(work.resolve("snap-1.rc"), "141\n");
    Result r = runHook(2);
    assertThat(r.exit()).isNotZero();
    assertThat(r.err()).contains("E: snapshot 1 failed (exit 141)");
  }

  @Test
  void failsAtOnceWhenTheSnapshotHookDiedBeforeItsBackgroundPart() throws Exception {
    Result r = runHook(1); // no pid file, no status: nothing will ever write one
    assertThat(r.exit()).isNotZero();
    assertThat(r.err()).contains("E: snapshot 0 ended without a status");
    assertThat(r.seconds()).isLessThan(5);
  }

  @Test
  void failsWhenTheBackgroundPartVanishedWithoutAStatus() throws Exception {
    Process bg = background("sleep 0.5");
    pid(0, bg.pid());
    Result r = runHook(1);
    assertThat(r.exit()).isNotZero();
    assertThat(r.err()).contains("E: snapshot 0 ended without a status");
  }
}
