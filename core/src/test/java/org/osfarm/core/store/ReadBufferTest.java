package org.osfarm.core.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;

/**
 * {@link ObjectStore.Reader#readBuffer} on the real pack store: an uncompressed object comes back
 * as a verified read-only view of the mapped pack, a compressed one decoded, and damage in the pack
 * file is a clear error, never other bytes.
 */
class ReadBufferTest {
  @TempDir Path tmp;

  static byte[] bytes(ByteBuffer b) {
    byte[] a = new byte[b.limit()];
    b.get(0, a);
    return a;
  }

  private Path onlyPack(Path repo) throws IOException {
    Path found = null;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(repo, "*.pack")) {
      for (Path p : ds) {
        assertThat(found).as("one pack").isNull();
        found = p;
      }
    }
    assertThat(found).isNotNull();
    return found;
  }

  private Digest[] insert(ObjectStore store) {
    try (ObjectStore.Inserter ins = store.newInserter()) {
      Digest t =
          ins.insert(ObjectType.BLOB, StoredObjectTest.text(), 0, StoredObjectTest.text().length);
      Digest r =
          ins.insert(
              ObjectType.BLOB, StoredObjectTest.random(), 0, StoredObjectTest.random().length);
      ins.flush();
      return new Digest[] {t, r};
    }
  }

  @Test
  void rawObjectIsAVerifiedReadOnlyViewAndCompressedOneIsDecoded() {
    try (PackObjectStore s = new PackObjectStore(tmp, 3);
        ObjectStore.Reader rd = s.newReader()) {
      Digest[] ids = insert(s);
      ByteBuffer raw = rd.readBuffer(ids[1], ObjectType.BLOB);
      assertThat(raw.isDirect()).as("a view of the mapped pack, not a heap copy").isTrue();
      assertThat(raw.isReadOnly()).isTrue();
      assertThat(raw.position()).isZero();
      assertThat(bytes(raw)).isEqualTo(StoredObjectTest.random());
      assertThat(bytes(rd.readBuffer(ids[0], ObjectType.BLOB))).isEqualTo(StoredObjectTest.text());
      assertThatThrownBy(() -> rd.readBuffer(ids[1], ObjectType.TREE))
          .isInstanceOf(CorruptObjectException.class);
      assertThatThrownBy(() -> rd.readBuffer(Digest.of(new byte[] {1}), ObjectType.BLOB))
          .isInstanceOf(NotFoundException.class);
    }
  }

  /** Stores the two objects, closes the store, and damages the pack with {@code damage(ch, at)}. */
  private Digest randomObjectInDamagedPack(Damage damage) throws IOException {
    Digest[] ids;
    try (PackObjectStore s = new PackObjectStore(tmp, 3)) {
      ids = insert(s);
    }
    Path pack = onlyPack(tmp.resolve("pack"));
    int at = indexOf(Files.readAllBytes(pack), StoredObjectTest.random());
    assertThat(at).as("the raw object is stored as is").isPositive();
    try (FileChannel ch = FileChannel.open(pack, StandardOpenOption.WRITE)) {
      damage.apply(ch, at);
    }
    return ids[1];
  }

  interface Damage {
    void apply(FileChannel pack, int objectAt) throws IOException;
  }

  @Test
  void aDamagedByteInTheMappedPackIsReportedNotServed() throws IOException {
    byte flipped = (byte) (StoredObjectTest.random()[500] ^ 0x40);
    Digest id =
        randomObjectInDamagedPack(
            (ch, at) -> ch.write(ByteBuffer.wrap(new byte[] {flipped}), at + 500));
    try (PackObjectStore s = new PackObjectStore(tmp, 3);
        ObjectStore.Reader rd = s.newReader()) {
      assertThatThrownBy(() -> rd.readBuffer(id, ObjectType.BLOB))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining(id.toString());
    }
  }

  @Test
  void aTruncatedPackIsAClearErrorNotACrash() throws IOException {
    Digest id = randomObjectInDamagedPack((ch, at) -> ch.truncate(at + 1000));
    try (PackObjectStore s = new PackObjectStore(tmp, 3);
        ObjectStore.Reader rd = s.newReader()) {
      assertThatThrownBy(() -> rd.readBuffer(id, ObjectType.BLOB))
          .isInstanceOf(CorruptObjectException.class)
          .hasMessageContaining("truncated");
    }
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < 64; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
