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
import org.osfarm.core.Digest;
import org.osfarm.core.store.ObjectType;

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

  private ObjectPack() {}

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

  /** One object read from a pack: its claimed type and id, and its bytes (not yet verified). */
  public record Item(ObjectType type, Digest claimedId, byte[] data) {}

  /** Reads a pack. */
  public static final class Reader implements AutoCloseable {
    private final DataInputStream in;
    private long count;
    private boolean done;

    public Reader(InputStream raw) throws IOException {
      this.in =
          new DataInputStream(new java.io.BufferedInputStream(new ZstdInputStream(raw), 1 << 16));
      byte[] m = new byte[MAGIC.length];
      try {
        in.readFully(m);
      } catch (EOFException e) {
        throw new PeerDataException("object pack is empty or truncated");
      }
      if (!Arrays.equals(m, MAGIC)) {
        throw new PeerDataException("not an osfarm object pack (bad magic)");
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
        int len = in.readInt();
        if (len < 0 || len > MAX_OBJECT) {
          throw new PeerDataException("object pack has an object of " + len + " bytes");
        }
        byte[] data = new byte[len];
        in.readFully(data);
        count++;
        return new Item(type, Digest.fromBytes(id, 0), data);
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

    @Override
    public void close() throws IOException {
      in.close();
    }
  }
}
