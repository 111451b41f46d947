package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/** A file's content read object by object (one blob, or the chunks of a chunk list), verified. */
final class ContentStream extends InputStream {
  private final ObjectStore.Reader reader;
  private final List<ObjectCodec.Chunk> chunks;
  private int next;
  private byte[] cur = new byte[0];
  private int pos;

  ContentStream(ObjectStore.Reader reader, Entry e) {
    this.reader = reader;
    if (e.chunked()) {
      ObjectCodec.ChunkList list =
          ObjectCodec.decodeChunkList(e.content(), reader.read(e.content(), ObjectType.CHUNKLIST));
      if (list.size() != e.size()) {
        throw new CorruptObjectException(
            "chunk list "
                + e.content()
                + " holds "
                + list.size()
                + " bytes, the entry says "
                + e.size());
      }
      this.chunks = list.chunks();
    } else {
      this.chunks = List.of(new ObjectCodec.Chunk(e.content(), (int) e.size()));
    }
  }

  private boolean fill() {
    while (pos >= cur.length) {
      if (next >= chunks.size()) {
        return false;
      }
      ObjectCodec.Chunk c = chunks.get(next++);
      cur = reader.read(c.id(), ObjectType.BLOB);
      if (cur.length != c.length()) {
        throw new CorruptObjectException(
            "object " + c.id() + " has " + cur.length + " bytes, expected " + c.length());
      }
      pos = 0;
    }
    return true;
  }

  @Override
  public int read() throws IOException {
    return fill() ? cur[pos++] & 0xff : -1;
  }

  @Override
  public int read(byte[] b, int off, int len) {
    if (len == 0) {
      return 0;
    }
    if (!fill()) {
      return -1;
    }
    int n = Math.min(len, cur.length - pos);
    System.arraycopy(cur, pos, b, off, n);
    pos += n;
    return n;
  }
}
