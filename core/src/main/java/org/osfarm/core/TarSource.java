package org.osfarm.core;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import org.osfarm.core.tar.TarHeader;
import org.osfarm.core.tar.TarReader;

/** A tar archive (plain, gzip or zstd, detected from its first bytes) as an {@link EntrySource}. */
public final class TarSource implements EntrySource {
  private final InputStream raw;
  private final CountingInputStream counted;
  private final TarReader reader;

  /** Reads {@code in}, which may be compressed; closes it on {@link #close()}. */
  public TarSource(InputStream in) throws IOException {
    // Reading ahead on its own thread keeps the disk streaming while this thread parses.
    this.raw = new ReadAheadInputStream(in, 1 << 20, 16);
    this.counted = new CountingInputStream(new BufferedInputStream(raw, 1 << 16));
    InputStream decoded = decompressing(counted);
    this.reader = new TarReader(decoded);
  }

  public static TarSource open(Path file) throws IOException {
    return new TarSource(Files.newInputStream(file));
  }

  private static InputStream decompressing(InputStream in) throws IOException {
    in.mark(4);
    byte[] m = in.readNBytes(4);
    in.reset();
    try {
      if (m.length >= 2 && (m[0] & 0xff) == 0x1f && (m[1] & 0xff) == 0x8b) {
        return new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 20);
      }
      if (m.length == 4
          && (m[0] & 0xff) == 0x28
          && (m[1] & 0xff) == 0xb5
          && (m[2] & 0xff) == 0x2f
          && (m[3] & 0xff) == 0xfd) {
        return new BufferedInputStream(new ZstdInputStream(in), 1 << 20);
      }
    } catch (IOException e) {
      throw new InvalidInputException("corrupt compressed archive: " + e.getMessage(), e);
    }
    return in;
  }

  @Override
  public TarHeader next() throws IOException {
    try {
      return reader.next();
    } catch (java.util.zip.ZipException | java.io.EOFException e) {
      throw new InvalidInputException(
          "corrupt or truncated compressed archive: " + e.getMessage(), e);
    } catch (com.github.luben.zstd.ZstdIOException e) {
      throw new InvalidInputException("corrupt zstd archive: " + e.getMessage(), e);
    }
  }

  @Override
  public InputStream content() {
    InputStream c = reader.content();
    return new FilterInputStream(c) {
      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        try {
          return super.read(b, off, len);
        } catch (java.util.zip.ZipException | java.io.EOFException e) {
          throw new InvalidInputException(
              "corrupt or truncated compressed archive: " + e.getMessage(), e);
        } catch (com.github.luben.zstd.ZstdIOException e) {
          throw new InvalidInputException("corrupt zstd archive: " + e.getMessage(), e);
        }
      }
    };
  }

  @Override
  public long position() {
    return counted.count;
  }

  @Override
  public String kind() {
    return "tar";
  }

  @Override
  public void close() throws IOException {
    raw.close();
  }

  private static final class CountingInputStream extends FilterInputStream {
    volatile long count;

    CountingInputStream(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) {
        count++;
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, len);
      if (n > 0) {
        count += n;
      }
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      long s = super.skip(n);
      count += s;
      return s;
    }

    private long mark;

    @Override
    public synchronized void mark(int limit) {
      super.mark(limit);
      mark = count;
    }

    @Override
    public synchronized void reset() throws IOException {
      super.reset();
      count = mark;
    }
  }
}
