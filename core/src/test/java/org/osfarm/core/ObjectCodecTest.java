package org.osfarm.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;

/** encode∘decode = id for every object codec, and malformed bytes are rejected, never misread. */
class ObjectCodecTest {
  private static final Digest D = Digest.of(new byte[] {1, 2, 3});

  @Property(tries = 300)
  void treesRoundTrip(@ForAll("trees") List<Entry> entries) {
    byte[] enc = ObjectCodec.encodeTree(entries);
    Digest id = Digest.of(enc);
    assertThat(ObjectCodec.decodeTree(id, enc)).isEqualTo(entries);
    // Canonical: encoding the decoded value gives the same bytes, so the same id.
    assertThat(ObjectCodec.encodeTree(ObjectCodec.decodeTree(id, enc))).isEqualTo(enc);
  }

  @Property(tries = 200)
  void truncatedTreesAreRejected(@ForAll("trees") @Size(min = 1) List<Entry> entries) {
    byte[] enc = ObjectCodec.encodeTree(entries);
    for (int cut : new int[] {enc.length - 1, enc.length / 2, 5}) {
      byte[] t = Arrays.copyOf(enc, cut);
      assertThatThrownBy(() -> ObjectCodec.decodeTree(D, t))
          .isInstanceOf(CorruptObjectException.class);
    }
  }

  @Property(tries = 200)
  void snapshotsRoundTrip(
      @ForAll("entries") Entry root,
      @ForAll @Size(max = 3) List<@net.jqwik.api.constraints.StringLength(max = 20) String> keys,
      @ForAll String message,
      @ForAll long seconds) {
    Entry dir =
        new Entry(
            new byte[0],
            EntryType.DIR,
            root.mode(),
            root.uid(),
            root.gid(),
            root.uname(),
            root.gname(),
            root.mtimeSeconds(),
            root.mtimeNanos(),
            0,
            D,
            null,
            null,
            0,
            0,
            root.xattrs(),
            root.extras(),
            0);
    Map<String, String> meta = new TreeMap<>();
    for (String k : keys) {
      meta.put(k, k + "=value\nwith lines");
    }
    long sec = seconds % 100_000_000_000L;
    Snapshot s = new Snapshot(dir, List.of(D), Instant.ofEpochSecond(sec, 123), message, meta);
    byte[] enc = ObjectCodec.encodeSnapshot(s);
    Snapshot back = ObjectCodec.decodeSnapshot(Digest.of(enc), enc);
    assertThat(back.root()).isEqualTo(dir);
    assertThat(back.parents()).containsExactly(D);
    assertThat(back.time()).isEqualTo(s.time());
    assertThat(back.message()).isEqualTo(message);
    assertThat(back.metadata()).isEqualTo(meta);
    assertThat(back.signatures()).isEmpty();

    // Signed: encode∘decode = id, canonical, and the unsigned encoding is an exact prefix.
    Snapshot signed = Signatures.sign(Signatures.sign(s, KEYS[0]), KEYS[1]);
    byte[] senc = ObjectCodec.encodeSnapshot(signed);
    Snapshot sback = ObjectCodec.decodeSnapshot(Digest.of(senc), senc);
    assertThat(sback).isEqualTo(signed);
    assertThat(ObjectCodec.encodeSnapshot(sback)).isEqualTo(senc);
    assertThat(Arrays.copyOf(senc, enc.length)).isEqualTo(enc);
    assertThat(Signatures.verify(senc, TrustedKeys.of(List.of(KEYS[1].publicKey()))))
        .isEqualTo(KEYS[1].publicKey());
  }

  private static final SigningKey[] KEYS = {SigningKey.generate("one"), SigningKey.generate("two")};

  @Property(tries = 100)
  void chunkListsRoundTrip(
      @ForAll @Size(min = 1, max = 50)
          List<@net.jqwik.api.constraints.IntRange(min = 1, max = 1 << 20) Integer> lens) {
    List<ObjectCodec.Chunk> chunks = new ArrayList<>();
    long total = 0;
    for (int i = 0; i < lens.size(); i++) {
      chunks.add(new ObjectCodec.Chunk(Digest.of(new byte[] {(byte) i}), lens.get(i)));
      total += lens.get(i);
    }
    ObjectCodec.ChunkList list = new ObjectCodec.ChunkList(D, total, chunks);
    byte[] enc = ObjectCodec.encodeChunkList(list);
    assertThat(ObjectCodec.decodeChunkList(D, enc)).isEqualTo(list);
    // A list whose chunks do not add up to its size is corrupt.
    ObjectCodec.ChunkList lying = new ObjectCodec.ChunkList(D, total + 1, chunks);
    byte[] bad = ObjectCodec.encodeChunkList(lying);
    assertThatThrownBy(() -> ObjectCodec.decodeChunkList(D, bad))
        .isInstanceOf(CorruptObjectException.class)
        .hasMessageContaining("add up");
  }

  @Property(tries = 50)
  void unsortedOrInvalidNamesAreRejected(@ForAll("entries") Entry a) {
    Entry dot = a.withName(new byte[] {'.', '.'});
    byte[] enc = encodeUnchecked(List.of(dot));
    assertThatThrownBy(() -> ObjectCodec.decodeTree(D, enc))
        .isInstanceOf(CorruptObjectException.class)
        .hasMessageContaining("invalid entry name");
    assertThatThrownBy(
            () ->
                ObjectCodec.encodeTree(
                    List.of(a.withName(new byte[] {'b'}), a.withName(new byte[] {'a'}))))
        .isInstanceOf(IllegalArgumentException.class);
  }

  private static byte[] encodeUnchecked(List<Entry> entries) {
    // The encoder checks order, not names: a hostile peer could still send such bytes.
    return ObjectCodec.encodeTree(entries);
  }

  @Provide
  Arbitrary<List<Entry>> trees() {
    return entries().list().ofMaxSize(12).map(ObjectCodecTest::sortedUnique);
  }

  private static List<Entry> sortedUnique(List<Entry> l) {
    TreeMap<byte[], Entry> m = new TreeMap<>(Arrays::compareUnsigned);
    for (Entry e : l) {
      m.put(e.name(), e);
    }
    return new ArrayList<>(m.values());
  }

  @Provide
  Arbitrary<Entry> entries() {
    Arbitrary<byte[]> names =
        Arbitraries.bytes()
            .filter(b -> b != '/' && b != 0)
            .array(byte[].class)
            .ofMinSize(1)
            .ofMaxSize(40)
            .filter(Bytes::isValidName);
    Arbitrary<EntryType> types = Arbitraries.of(EntryType.class);
    Arbitrary<Integer> modes = Arbitraries.integers().between(0, 07777);
    Arbitrary<Long> ids = Arbitraries.longs().between(0, 1L << 40);
    Arbitrary<Long> times = Arbitraries.longs().between(-1L << 40, 1L << 40);
    Arbitrary<Integer> nanos = Arbitraries.integers().between(0, 999_999_999);
    Arbitrary<List<Attr>> attrs =
        Combinators.combine(
                Arbitraries.strings().alpha().ofMinLength(1).ofMaxLength(12),
                Arbitraries.bytes().array(byte[].class).ofMaxSize(30))
            .as(Attr::of)
            .list()
            .ofMaxSize(3)
            .map(
                l -> {
                  TreeMap<byte[], Attr> m = new TreeMap<>(Arrays::compareUnsigned);
                  l.forEach(a -> m.put(a.name(), a));
                  return new ArrayList<>(m.values());
                });
    Arbitrary<Boolean> chunked = Arbitraries.of(true, false);
    return Combinators.combine(names, types, modes, ids, ids, times, nanos, attrs)
        .as(
            (name, type, mode, uid, gid, mtime, ns, xa) -> {
              boolean file = type == EntryType.FILE;
              boolean isChunked = file && (uid & 1) == 0;
              Digest content = file || type == EntryType.DIR ? Digest.of(name) : null;
              Digest fileDigest = file ? (isChunked ? Digest.of(new byte[] {9}) : content) : null;
              boolean dev = type == EntryType.CHAR || type == EntryType.BLOCK;
              byte[] link =
                  type == EntryType.SYMLINK || type == EntryType.HARDLINK ? name : new byte[0];
              return new Entry(
                  name,
                  type,
                  mode,
                  uid,
                  gid,
                  Bytes.utf8("u" + uid % 7),
                  new byte[0],
                  mtime,
                  ns,
                  file ? uid % 100000 : 0,
                  content,
                  fileDigest,
                  link,
                  dev ? gid % 4096 : 0,
                  dev ? uid % 1000 : 0,
                  xa,
                  xa,
                  isChunked ? Entry.CHUNKED : (uid % 3 == 0 ? Entry.IMPLICIT : 0));
            });
  }
}
