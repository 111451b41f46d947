package org.osfarm.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A bounded in-memory pipe between a producer thread and a consumer thread (any threads, unlike
 * {@link java.io.PipedInputStream}, which fails when a pool thread it last saw ends). Closing the
 * reading side makes the writer fail at once instead of blocking.
 */
final class BoundedPipe {
  private static final byte[] EOF = new byte[0];
  private final BlockingQueue<byte[]> queue;
  private volatile boolean readerClosed;
  private volatile IOException writerFailure;

  BoundedPipe(int chunks) {
    queue = new ArrayBlockingQueue<>(chunks);
  }

  /** Ends the stream with an error the reader will see. */
  void fail(IOException e) {
    writerFailure = e;
    queue.offer(EOF);
  }

  final OutputStream out =
      new OutputStream() {
        private final byte[] one = new byte[1];

        @Override
        public void write(int b) throws IOException {
          one[0] = (byte) b;
          write(one, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
          if (len == 0) {
            return;
          }
          byte[] c = java.util.Arrays.copyOfRange(b, off, off + len);
          try {
            while (!queue.offer(c, 100, TimeUnit.MILLISECONDS)) {
              if (readerClosed) {
                throw new IOException("the receiving side closed the stream");
              }
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException();
          }
        }

        @Override
        public void close() throws IOException {
          try {
            while (!queue.offer(EOF, 100, TimeUnit.MILLISECONDS)) {
              if (readerClosed) {
                return;
              }
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException();
          }
        }
      };

  final InputStream in =
      new InputStream() {
        private byte[] cur;
        private int pos;
        private boolean eof;

        @Override
        public int read() throws IOException {
          byte[] b = new byte[1];
          return read(b, 0, 1) < 0 ? -1 : b[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
          if (len == 0) {
            return 0;
          }
          while (cur == null || pos == cur.length) {
            if (eof) {
              return -1;
            }
            try {
              cur = queue.take();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new InterruptedIOException();
            }
            pos = 0;
            if (cur == EOF) {
              eof = true;
              if (writerFailure != null) {
                throw writerFailure;
              }
              return -1;
            }
          }
          int n = Math.min(len, cur.length - pos);
          System.arraycopy(cur, pos, b, off, n);
          pos += n;
          return n;
        }

        @Override
        public void close() {
          readerClosed = true;
          queue.clear();
        }
      };
}
