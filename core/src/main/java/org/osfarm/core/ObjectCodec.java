package org.osfarm.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The canonical binary encodings of trees, chunk lists and snapshots. Encoding is a function of the
 * value (sorted entries, sorted attributes, minimal varints), so equal values get equal ids;
 * decoding validates structure and throws {@link CorruptObjectException} on anything malformed.
 *
 * <p>Tree: {@code "OSFT" 1 count entry*}. Entry: {@code name type flags mode uid gid uname gname
 * mtimeSeconds(zigzag) mtimeNanos size [content(32)] [fileDigest(32)] link [major minor] xattrs
 * extras}; byte strings are a varint length then the bytes. Chunk list: {@code "OSFC" 1
 * fileDigest(32) size count (chunk(32) length)*}. Snapshot: {@code "OSFS" 1 root-entry parents
 * seconds nanos message metadata [signatures]}, where the optional trailing {@code signatures} is
 * {@code count (algorithm keyId signature)*} (count at least 1, algorithm 1 = Ed25519 with an
 * 8-byte key id and a 64-byte signature, sorted by key id) and each signature covers the encoding
 * without it, so unsigned snapshots encode exactly as before signatures existed.
 */
public final class ObjectCodec {
  private static final byte[] TREE_MAGIC = {'O', 'S', 'F', 'T', 1};
  private static final byte[] CHUNKS_MAGIC = {'O', 'S', 'F', 'C', 1};
  private static final byte[] SNAPSHOT_MAGIC = {'O', 'S', 'F', 'S', 1};

  private ObjectCodec() {}

  /** One chunk of a large file. */
  public record Chunk(Digest id, int length) {}

  /** A large file: its chunks in order, its whole-content digest and size. */
  public record ChunkList(Digest fileDigest, long size, List<Chunk> chunks) {
    public ChunkList {
      chunks = List.copyOf(chunks);
    }
  }

  // ---- trees ----

  /** Encodes a directory. {@code entries} must be sorted by name, names unique. */
  public static byte[] encodeTree(List<Entry> entries) {
    Out out = new Out(64 + entries.size() * 64);
    out.raw(TREE_MAGIC);
    out.varint(entries.size());
    byte[] prev = null;
    for (Entry e : entries) {
      if (prev != null && Arrays.compareUnsigned(prev, e.name()) >= 0) {
        throw new IllegalArgumentException("tree entries not sorted or not unique at " + e);
      }
      prev = e.name();
      writeEntry(out, e);
    }
    return out.toByteArray();
  }

  public static List<Entry> decodeTree(Digest id, byte[] b) {
    In in = new In(id, b);
    in.magic(TREE_MAGIC, "tree");
    int n = in.count();
    List<Entry> entries = new ArrayList<>(n);
    byte[] prev = null;
    for (int i = 0; i < n; i++) {
      Entry e = readEntry(in);
      if (!Bytes.isValidName(e.name())) {
        throw in.bad("invalid entry name '" + e.nameString() + "'");
      }
      if (prev != null && Arrays.compareUnsigned(prev, e.name()) >= 0) {
        throw in.bad("entries not sorted at '" + e.nameString() + "'");
      }
      prev = e.name();
      entries.add(e);
    }
    in.end();
    return entries;
  }

  private static void writeEntry(Out out, Entry e) {
    out.bytes(e.name());
    out.u8(e.type().code());
    out.varint(e.flags());
    out.varint(e.mode());
    out.varint(e.uid());
    out.varint(e.gid());
    out.bytes(e.uname());
    out.bytes(e.gname());
    out.varint(zigzag(e.mtimeSeconds()));
    out.varint(e.mtimeNanos());
    out.varint(e.size());
    if (e.type() == EntryType.FILE || e.type() == EntryType.DIR) {
      out.digest(e.content());
    }
    if (e.type() == EntryType.FILE && e.chunked()) {
      out.digest(e.fileDigest());
    }
    out.bytes(e.link());
    if (e.type() == EntryType.CHAR || e.type() == EntryType.BLOCK) {
      out.varint(e.devMajor());
      out.varint(e.devMinor());
    }
    writeAttrs(out, e.xattrs());
    writeAttrs(out, e.extras());
  }

  private static void writeAttrs(Out out, List<Attr> attrs) {
    out.varint(attrs.size());
    byte[] prev = null;
    for (Attr a : attrs) {
      if (prev != null && Arrays.compareUnsigned(prev, a.nameRef()) >= 0) {
        throw new IllegalArgumentException(
            "attributes not sorted or not unique: " + a.nameString());
      }
      prev = a.nameRef();
      out.bytes(a.nameRef());
      out.bytes(a.valueRef());
    }
  }

  private static Entry readEntry(In in) {
    byte[] name = in.bytes();
    EntryType type;
    try {
      type = EntryType.ofCode(in.u8());
    } catch (IllegalArgumentException e) {
      throw in.bad(e.getMessage());
    }
    int flags = (int) in.varint();
    int mode = (int) in.varint();
    if ((mode & ~07777) != 0) {
      throw in.bad("mode out of range: " + Integer.toOctalString(mode));
    }
    long uid = in.varint();
    long gid = in.varint();
    byte[] uname = in.bytes();
    byte[] gname = in.bytes();
    long mtime = unzigzag(in.varint());
    long nanos = in.varint();
    if (nanos >= 1_000_000_000L) {
      throw in.bad("mtime nanoseconds out of range");
    }
    long size = in.varint();
    Digest content = null;
    Digest fileDigest = null;
    if (type == EntryType.FILE || type == EntryType.DIR) {
      content = in.digest();
      fileDigest = type == EntryType.FILE ? content : null;
    }
    if (type == EntryType.FILE && (flags & Entry.CHUNKED) != 0) {
      fileDigest = in.digest();
    }
    byte[] link = in.bytes();
    long major = 0;
    long minor = 0;
    if (type == EntryType.CHAR || type == EntryType.BLOCK) {
      major = in.varint();
      minor = in.varint();
    }
    List<Attr> xattrs = readAttrs(in);
    List<Attr> extras = readAttrs(in);
    return new Entry(
        name,
        type,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtime,
        (int) nanos,
        size,
        content,
        fileDigest,
        link,
        major,
        minor,
        xattrs,
        extras,
        flags);
  }

  private static List<Attr> readAttrs(In in) {
    int n = in.count();
    List<Attr> attrs = new ArrayList<>(n);
    byte[] prev = null;
    for (int i = 0; i < n; i++) {
      byte[] k = in.bytes();
      if (prev != null && Arrays.compareUnsigned(prev, k) >= 0) {
        throw in.bad("attributes not sorted");
      }
      prev = k;
      attrs.add(new Attr(k, in.bytes()));
    }
    return attrs;
  }

  // ---- chunk lists ----

  public static byte[] encodeChunkList(ChunkList list) {
    Out out = new Out(48 + list.chunks().size() * 36);
    out.raw(CHUNKS_MAGIC);
    out.digest(list.fileDigest());
    out.varint(list.size());
    out.varint(list.chunks().size());
    for (Chunk c : list.chunks()) {
      out.digest(c.id());
      out.varint(c.length());
    }
    return out.toByteArray();
  }

  public static ChunkList decodeChunkList(Digest id, byte[] b) {
    In in = new In(id, b);
    in.magic(CHUNKS_MAGIC, "chunk list");
    Digest file = in.digest();
    long size = in.varint();
    int n = in.count();
    List<Chunk> chunks = new ArrayList<>(n);
    long total = 0;
    for (int i = 0; i < n; i++) {
      Digest c = in.digest();
      long len = in.varint();
      if (len <= 0 || len > Integer.MAX_VALUE) {
        throw in.bad("chunk length out of range");
      }
      total += len;
      chunks.add(new Chunk(c, (int) len));
    }
    if (total != size) {
      throw in.bad("chunks add up to " + total + " bytes, list says " + size);
    }
    in.end();
    return new ChunkList(file, size, chunks);
  }

  // ---- snapshots ----

  public static byte[] encodeSnapshot(Snapshot s) {
    Out out = new Out(512);
    out.raw(SNAPSHOT_MAGIC);
    writeEntry(out, s.root());
    out.varint(s.parents().size());
    for (Digest p : s.parents()) {
      out.digest(p);
    }
    out.varint(zigzag(s.time().getEpochSecond()));
    out.varint(s.time().getNano());
    out.bytes(s.message().getBytes(StandardCharsets.UTF_8));
    out.varint(s.metadata().size());
    for (Map.Entry<String, String> m : s.metadata().entrySet()) {
      out.bytes(m.getKey().getBytes(StandardCharsets.UTF_8));
      out.bytes(m.getValue().getBytes(StandardCharsets.UTF_8));
    }
    if (!s.signatures().isEmpty()) {
      out.varint(s.signatures().size());
      for (SnapshotSignature sig : s.signatures()) {
        out.u8(SnapshotSignature.ED25519);
        out.bytes(sig.keyIdBytes());
        out.bytes(sig.valueRef());
      }
    }
    return out.toByteArray();
  }

  public static Snapshot decodeSnapshot(Digest id, byte[] b) {
    In in = new In(id, b);
    in.magic(SNAPSHOT_MAGIC, "snapshot");
    Entry root = readEntry(in);
    if (root.type() != EntryType.DIR || root.name().length != 0) {
      throw in.bad("snapshot root is not an unnamed directory");
    }
    int np = in.count();
    List<Digest> parents = new ArrayList<>(np);
    for (int i = 0; i < np; i++) {
      parents.add(in.digest());
    }
    long sec = unzigzag(in.varint());
    long nanos = in.varint();
    if (nanos >= 1_000_000_000L) {
      throw in.bad("time nanoseconds out of range");
    }
    String message = new String(in.bytes(), StandardCharsets.UTF_8);
    int nm = in.count();
    Map<String, String> meta = new TreeMap<>();
    for (int i = 0; i < nm; i++) {
      meta.put(
          new String(in.bytes(), StandardCharsets.UTF_8),
          new String(in.bytes(), StandardCharsets.UTF_8));
    }
    List<SnapshotSignature> sigs = new ArrayList<>();
    if (in.pos < b.length) {
      int ns = in.count();
      if (ns == 0) {
        throw in.bad("empty signature list (an unsigned snapshot has none)");
      }
      byte[] prev = null;
      for (int i = 0; i < ns; i++) {
        int alg = in.u8();
        if (alg != SnapshotSignature.ED25519) {
          throw in.bad("unsupported signature algorithm " + alg);
        }
        byte[] keyId = in.bytes();
        byte[] value = in.bytes();
        if (keyId.length != SnapshotSignature.KEY_ID_LENGTH
            || value.length != SnapshotSignature.SIGNATURE_LENGTH) {
          throw in.bad("signature record has the wrong length");
        }
        if (prev != null && Arrays.compareUnsigned(prev, keyId) >= 0) {
          throw in.bad("signatures not sorted by key id or not unique");
        }
        prev = keyId;
        sigs.add(new SnapshotSignature(keyId, value));
      }
    }
    in.end();
    return new Snapshot(root, parents, Instant.ofEpochSecond(sec, nanos), message, meta, sigs);
  }

  // ---- primitives ----

  private static long zigzag(long v) {
    return (v << 1) ^ (v >> 63);
  }

  private static long unzigzag(long v) {
    return (v >>> 1) ^ -(v & 1);
  }

  private static final class Out extends ByteArrayOutputStream {
    Out(int size) {
      super(size);
    }

    void raw(byte[] b) {
      writeBytes(b);
    }

    void u8(int v) {
      write(v);
    }

    void varint(long v) {
      while ((v & ~0x7FL) != 0) {
        write((int) ((v & 0x7F) | 0x80));
        v >>>= 7;
      }
      write((int) v);
    }

    void bytes(byte[] b) {
      varint(b.length);
      writeBytes(b);
    }

    void digest(Digest d) {
      if (d == null) {
        throw new IllegalArgumentException("missing digest");
      }
      ensure(32);
      d.copyTo(buf, count);
      count += 32;
    }

    private void ensure(int n) {
      if (count + n > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, count + n));
      }
    }
  }

  private static final class In {
    final Digest id;
    final byte[] b;
    int pos;

    In(Digest id, byte[] b) {
      this.id = id;
      this.b = b;
    }

    CorruptObjectException bad(String why) {
      return new CorruptObjectException("object " + id + " is malformed: " + why);
    }

    void magic(byte[] magic, String what) {
      if (b.length < magic.length || !Arrays.equals(b, 0, magic.length, magic, 0, magic.length)) {
        throw bad("not a " + what + " (or an unsupported format version)");
      }
      pos = magic.length;
    }

    int u8() {
      if (pos >= b.length) {
        throw bad("truncated");
      }
      return b[pos++] & 0xff;
    }

    long varint() {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        int c = u8();
        v |= (long) (c & 0x7F) << shift;
        if ((c & 0x80) == 0) {
          return v;
        }
      }
      throw bad("varint too long");
    }

    int count() {
      long n = varint();
      if (n < 0 || n > b.length - pos) {
        throw bad("count " + n + " exceeds the object");
      }
      return (int) n;
    }

    byte[] bytes() {
      int n = count();
      byte[] r = Arrays.copyOfRange(b, pos, pos + n);
      pos += n;
      return r;
    }

    Digest digest() {
      if (pos + 32 > b.length) {
        throw bad("truncated");
      }
      Digest d = Digest.fromBytes(b, pos);
      pos += 32;
      return d;
    }

    void end() {
      if (pos != b.length) {
        throw bad((b.length - pos) + " trailing bytes");
      }
    }
  }
}
