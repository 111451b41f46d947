package org.osfarm.transfer;

import com.github.luben.zstd.ZstdInputStream;
import com.github.luben.zstd.ZstdOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.store.ObjectType;
import org.osfarm.core.store.StoredObject;

/**
 * The object pack: a zstd-compressed stream of objects, as the object protocol sends them.
 *
 * <p>Format (inside one zstd frame sequence): {@code "OSFP" 1}, then per object {@code type(1)
 * id(32) length(4, big-endian) bytes}, then {@code 0 count(8)}. A stream that ends before the
 * trailer, or whose count disagrees, is truncated. The reader does not trust ids: the caller hashes
 * every object's bytes and compares (see {@link Reader#next}). Public for the mount's remote
 * source, which reads packs of the objects a sequential read will need.
 */
public final class ObjectPack {
  static final byte[] MAGIC = {'O', 'S', 'F', 'P', 1};

  /** Objects above this size are refused (core chunks files at 512 KiB; trees are far smaller). */
  public static final int MAX_OBJECT = 64 << 20;

  /** Magic of a stored pack (version 2): not wrapped in zstd; each object carries its codec. */
  static final byte[] STORED_MAGIC = {'O', 'S', 'F', 'P', 2};

  /** The content type of a stored pack; a plain pack is {@code application/x-osfarm-pack}. */
  public static final String STORED_TYPE = "application/x-osfarm-pack-stored";

  /** The content type of one object as stored ({@code GET /v1/objects/HEX?stored=1}). */
  public static final String STORED_OBJECT_TYPE = "application/x-osfarm-object-stored";

  private ObjectPack() {}

  /**
   * Writes a stored pack (version 2): {@code "OSFP" 2}, then per object {@code type(1) id(32)
   * codec(1) size(4) storedLength(4) stored bytes}, then {@code 0 count(8)}; big-endian. The bytes
   * are those the repository keeps ({@link StoredObject}): raw, or one zstd frame. Nothing is
   * decompressed, hashed or compressed on the way; the reader verifies every object.
   */
  public static final class StoredWriter implements AutoCloseable {
    private final DataOutputStream out;
    private long count;

    public StoredWriter(OutputStream raw) throws IOException {
      this.out = new DataOutputStream(new java.io.BufferedOutputStream(raw, 1 << 16));
      out.write(STORED_MAGIC);
    }

    public void write(Digest id, StoredObject o) throws IOException {
      out.writeByte(o.type().code());
      out.write(id.toBytes());
      out.writeByte(o.codec());
      out.writeInt(o.size());
      out.writeInt(o.bytes().length);
      out.write(o.bytes());
      count++;
    }

    @Override
    public void close() throws IOException {
      out.writeByte(0);
      out.writeLong(count);
      out.close();
    }
  }

  /** Writes a pack; close to write the trailer and finish the compressed stream. */
  public static final class Writer implements AutoCloseable {
    private final DataOutputStream out;
    private long count;

    public Writer(OutputStream raw, int level) throws IOException {
      ZstdOutputStream z = new ZstdOutputStream(raw, level);
      this.out = new DataOutputStream(new java.io.BufferedOutputStream(z, 1 << 16));
      out.write(MAGIC);
    }

    public void write(ObjectType type, Digest id, byte[] data) throws IOException {
      out.writeByte(type.code());
      out.write(id.toBytes());
      out.writeInt(data.length);
      out.write(data);
      count++;
    }

    void flush() throws IOException {
      out.flush();
    }

    @Override
    public void close() throws IOException {
      out.writeByte(0);
      out.writeLong(count);
      out.close();
    }
  }

  /**
   * One object read from a pack: its claimed type and id, and its bytes (not yet verified).
   *
   * @param damage null, or (stored packs only) why this object's stored bytes could not be decoded;
   *     {@code data} is then null. The pack's framing is intact, so the next objects still read.
   */
  public record Item(ObjectType type, Digest claimedId, byte[] data, String damage) {
    public Item(ObjectType type, Digest claimedId, byte[] data) {
      this(type, claimedId, data, null);
    }
  }

  /**
   * Reads a pack: a plain one ({@link #Reader(InputStream)}) or a stored one ({@link
   * #stored(InputStream)}), whose objects it decompresses (into a buffer it reuses) but does not
   * hash.
   */
  public static final class Reader implements AutoCloseable {
    private final DataInputStream in;
    private final boolean stored;
    private byte[] buffer = new byte[0];
    private long count;
    private boolean done;

    /** A reader of a plain (zstd-wrapped, version 1) pack. */
    public Reader(InputStream raw) throws IOException {
      this(
          new DataInputStream(new java.io.BufferedInputStream(new ZstdInputStream(raw), 1 << 16)),
          false);
    }

    /** A reader of a stored (version 2) pack, the answer of {@code POST /objects/pack?stored=1}. */
    public static Reader stored(InputStream raw) throws IOException {
      return new Reader(new DataInputStream(new java.io.BufferedInputStream(raw, 1 << 16)), true);
    }

    private Reader(DataInputStream in, boolean stored) throws IOException {
      this.in = in;
      this.stored = stored;
      byte[] want = stored ? STORED_MAGIC : MAGIC;
      byte[] m = new byte[want.length];
      try {
        in.readFully(m);
      } catch (EOFException e) {
        throw new PeerDataException("object pack is empty or truncated");
      }
      if (!Arrays.equals(m, want)) {
        throw new PeerDataException(
            "not an osfarm " + (stored ? "stored " : "") + "object pack (bad magic)");
      }
    }

    /** The next object, or null after the trailer. */
    public Item next() throws IOException {
      if (done) {
        return null;
      }
      try {
        int t = in.readUnsignedByte();
        if (t == 0) {
          long n = in.readLong();
          if (n != count) {
            throw new PeerDataException("object pack trailer says " + n + " objects, got " + count);
          }
          done = true;
          return null;
        }
        ObjectType type;
        try {
          type = ObjectType.ofCode(t);
        } catch (IllegalArgumentException e) {
          throw new PeerDataException("object pack has an unknown object type " + t);
        }
        byte[] id = new byte[Digest.LENGTH];
        in.readFully(id);
        int len = stored ? in.readUnsignedByte() : in.readInt();
        if (!stored && (len < 0 || len > MAX_OBJECT)) {
          throw new PeerDataException("object pack has an object of " + len + " bytes");
        }
        Digest claimed = Digest.fromBytes(id, 0);
        byte[] data;
        if (stored) {
          try {
            data = readStored(claimed, len);
          } catch (CorruptObjectException e) {
            count++;
            return new Item(type, claimed, null, e.getMessage());
          }
        } else {
          data = readPlain(len);
        }
        count++;
        return new Item(type, claimed, data);
      } catch (EOFException e) {
        throw new PeerDataException(
            "object pack truncated after " + count + " objects (connection lost?)");
      } catch (IOException e) {
        if (e.getClass().getName().contains("Zstd")) {
          throw new PeerDataException("object pack is corrupt: " + e.getMessage());
        }
        throw e;
      }
    }

    private byte[] readPlain(int len) throws IOException {
      byte[] data = new byte[len];
      in.readFully(data);
      return data;
    }

    /**
     * After {@code type id codec}: {@code size storedLength bytes}; returns the decoded bytes, or
     * throws {@link CorruptObjectException} (after reading the whole record) if they do not decode.
     */
    private byte[] readStored(Digest claimed, int codec) throws IOException {
      int size = in.readInt();
      int len = in.readInt();
      if (size < 0 || size > MAX_OBJECT || len < 0 || len > MAX_OBJECT) {
        throw new PeerDataException(
            "object pack has object " + claimed.hex() + " of " + size + " bytes stored in " + len);
      }
      if (codec == StoredObject.RAW) {
        if (len != size) {
          throw new PeerDataException(
              "object pack has raw object " + claimed.hex() + " of " + len + " bytes, not " + size);
        }
        return readPlain(len);
      }
      if (buffer.length < len) {
        buffer = new byte[Math.max(len, 1 << 16)];
      }
      in.readFully(buffer, 0, len);
      // throws CorruptObjectException for an unknown codec or bytes that do not decompress
      return StoredObject.decode(claimed, codec, buffer, len, size);
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }
}
