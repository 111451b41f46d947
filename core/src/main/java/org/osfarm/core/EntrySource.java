package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import org.osfarm.core.tar.TarHeader;

/**
 * A stream of entries to publish, in tar's terms: a header, then for a regular file its content.
 * Tar archives and directories both present themselves this way.
 */
public interface EntrySource extends AutoCloseable {
  /** The next entry, or null at the end. */
  TarHeader next() throws IOException;

  /** The content of the current regular file; read it fully before calling {@link #next()}. */
  InputStream content() throws IOException;

  /** Bytes of input consumed so far, for progress. */
  long position();

  /** What kind of source this is, recorded in the snapshot ("tar" or "dir"). */
  String kind();

  @Override
  void close() throws IOException;
}
