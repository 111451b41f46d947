package org.osfarm.core.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;

/** Reading objects as stored, on the real pack store and the in-memory one. */
class StoredObjectTest {
  @TempDir Path tmp;

  static byte[] text() {
    return "a line that compresses well\n".repeat(4000).getBytes(StandardCharsets.US_ASCII);
  }

  static byte[] random() {
    byte[] b = new byte[100_000];
    new Random(3).nextBytes(b);
    return b;
  }

  void check(ObjectStore store) {
    Digest t;
    Digest r;
    try (ObjectStore.Inserter ins = store.newInserter()) {
      t = ins.insert(ObjectType.BLOB, text(), 0, text().length);
      r = ins.insert(ObjectType.BLOB, random(), 0, random().length);
      ins.flush();
    }
    try (ObjectStore.Reader rd = store.newReader()) {
      StoredObject st = rd.readStored(t, ObjectType.BLOB);
      assertThat(st.codec()).isEqualTo(StoredObject.ZSTD);
      assertThat(st.size()).isEqualTo(text().length);
      assertThat(st.bytes().length).isLessThan(text().length / 10);
      assertThat(st.decode(t)).isEqualTo(text());
      StoredObject sr = rd.readStored(r, ObjectType.BLOB);
      assertThat(sr.codec()).isEqualTo(StoredObject.RAW);
      assertThat(sr.decode(r)).isEqualTo(random());
      // damaged stored bytes: a clear error, never other bytes
      byte[] bad = st.bytes().clone();
      bad[bad.length / 2] ^= 0x5a;
      assertThatThrownBy(
              () -> new StoredObject(ObjectType.BLOB, st.codec(), st.size(), bad).decode(t))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining(t.toString());
      byte[] badRaw = sr.bytes().clone();
      badRaw[7] ^= 1;
      assertThatThrownBy(
              () ->
                  new StoredObject(ObjectType.BLOB, StoredObject.RAW, sr.size(), badRaw).decode(r))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("corrupt");
      assertThatThrownBy(
              () -> new StoredObject(ObjectType.BLOB, 9, st.size(), st.bytes()).decode(t))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("unknown codec");
      assertThatThrownBy(() -> rd.readStored(t, ObjectType.TREE))
          .isInstanceOf(CorruptObjectException.class);
      assertThatThrownBy(() -> rd.readStored(Digest.of(new byte[] {1}), ObjectType.BLOB))
          .isInstanceOf(NotFoundException.class);
    }
  }

  @Test
  void packStoreHandsOutStoredBytesThatDecodeToTheObject() {
    try (PackObjectStore s = new PackObjectStore(tmp, 3)) {
      check(s);
    }
  }

  @Test
  void inMemoryStoreHandsOutStoredBytesThatDecodeToTheObject() {
    check(new InMemoryObjectStore(3));
  }
}
