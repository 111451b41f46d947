package org.osfarm.cli;

import java.io.PrintWriter;
import org.osfarm.core.Progress;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.posix.Posix;

/**
 * Renders progress on one self-overwriting stderr line when stderr is a terminal; warnings always
 * go to stderr.
 */
final class ProgressRenderer implements ProgressListener, AutoCloseable {
  private final PrintWriter err;
  private final boolean tty;
  private final long start = System.nanoTime();
  private boolean drawn;

  ProgressRenderer(PrintWriter err) {
    this.err = err;
    this.tty = Posix.isatty(2) && System.getenv("OSFARM_NO_PROGRESS") == null;
  }

  @Override
  public void progress(Progress p) {
    if (!tty) {
      return;
    }
    double s = (System.nanoTime() - start) / 1e9;
    String rate = s > 0 ? String.format("%.1f MB/s", p.bytes() / 1e6 / s) : "";
    String line =
        String.format(
            "\r%-14s %,10d entries  %,10.1f MB  %s%s",
            p.phase(),
            p.entries(),
            p.bytes() / 1e6,
            rate,
            p.newBytes() > 0 ? String.format("  %,.1f MB new", p.newBytes() / 1e6) : "");
    err.print(line + "\u001b[K");
    err.flush();
    drawn = true;
  }

  @Override
  public void warning(String message) {
    clear();
    err.println("osfarm: warning: " + message);
  }

  private void clear() {
    if (drawn) {
      err.print("\r\u001b[K");
      err.flush();
      drawn = false;
    }
  }

  @Override
  public void close() {
    clear();
  }
}
