package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;

/**
 * Where an export goes. The exporter calls {@link #enter}/{@link #leave} around a directory's
 * children (depth first, children sorted by name) and {@link #entry} for everything else; a file's
 * content stream is passed along. {@code path} is relative to the image root.
 */
interface ExportSink extends AutoCloseable {
  /** The image root's own metadata (applied when the export ends, after its children). */
  void root(Entry root) throws IOException;

  void enter(byte[] path, Entry dir) throws IOException;

  void leave(byte[] path, Entry dir) throws IOException;

  /**
   * A non-directory entry. For a hard link, {@code link} is the path of a file already written by
   * this export; for a file, {@code content} holds exactly {@code e.size()} bytes.
   */
  void entry(byte[] path, Entry e, InputStream content) throws IOException;

  /** Finishes the export (flushes, applies the root's metadata). */
  void finish() throws IOException;

  @Override
  void close() throws IOException;
}
