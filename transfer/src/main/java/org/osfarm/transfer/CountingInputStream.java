package org.osfarm.transfer;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.atomic.AtomicLong;

/** Adds every byte read through it to a counter (bytes on the wire of a client). */
public final class CountingInputStream extends FilterInputStream {
  private final AtomicLong n;

  public CountingInputStream(InputStream in, AtomicLong n) {
    super(in);
    this.n = n;
  }

  @Override
  public int read() throws IOException {
    int b = super.read();
    if (b >= 0) {
      n.incrementAndGet();
    }
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int r = super.read(b, off, len);
    if (r > 0) {
      n.addAndGet(r);
    }
    return r;
  }
}
