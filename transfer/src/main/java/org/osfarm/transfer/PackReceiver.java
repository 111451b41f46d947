package org.osfarm.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectInfo;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Stores a pushed pack, verifying everything.
 *
 * <p>Invariant kept for the whole store: an object that refers to others (chunk list, tree,
 * snapshot) is stored only when everything it refers to is already stored (or earlier in the same
 * pack). So a stored tree implies its whole subtree is stored, which lets both pull and push skip a
 * subtree as soon as its root is present. Each object's bytes are hashed and compared with its id;
 * the first mismatch aborts the pack. What was flushed before stays (it is verified and
 * self-contained), which is how an interrupted push resumes.
 */
final class PackReceiver {
  /** Flush (make durable) after this many received bytes, so an interrupted transfer resumes. */
  static final long FLUSH_BYTES = 64L << 20;

  record Result(long objects, long bytes) {}

  private final ObjectStore store;
  private final ObjectStore.Inserter ins;
  private final Map<Digest, ObjectType> seen = new HashMap<>();
  private final org.osfarm.core.RepositoryKeys policy;

  PackReceiver(ObjectStore store, ObjectStore.Inserter ins, org.osfarm.core.RepositoryKeys policy) {
    this.store = store;
    this.ins = ins;
    this.policy = policy;
  }

  Result receive(InputStream body) throws IOException {
    long objects = 0;
    long bytes = 0;
    long sinceFlush = 0;
    try (ObjectPack.Reader r = new ObjectPack.Reader(body)) {
      ObjectPack.Item it;
      while ((it = r.next()) != null) {
        Digest id = verifyHash(it);
        checkReferences(it.type(), id, it.data());
        ins.insert(it.type(), id, it.data(), 0, it.data().length);
        seen.put(id, it.type());
        objects++;
        bytes += it.data().length;
        sinceFlush += it.data().length;
        if (sinceFlush >= FLUSH_BYTES) {
          ins.flush();
          sinceFlush = 0;
        }
      }
    }
    return new Result(objects, bytes);
  }

  /** Hashes an item's bytes; throws if they are not what its id says. */
  static Digest verifyHash(ObjectPack.Item it) {
    Digest id = Digest.of(it.data());
    if (!id.equals(it.claimedId())) {
      throw new PeerDataException(
          "peer sent bytes for object "
              + it.claimedId().hex()
              + " that hash to "
              + id.hex()
              + ": corrupted or lying peer; the object was discarded");
    }
    return id;
  }

  private void checkReferences(ObjectType type, Digest id, byte[] data) {
    try {
      switch (type) {
        case BLOB -> {}
        case CHUNKLIST -> {
          for (ObjectCodec.Chunk c : ObjectCodec.decodeChunkList(id, data).chunks()) {
            require(c.id(), ObjectType.BLOB, id);
          }
        }
        case TREE -> {
          for (Entry e : ObjectCodec.decodeTree(id, data)) {
            requireContent(e, id);
          }
        }
        case SNAPSHOT -> {
          Snapshot s = ObjectCodec.decodeSnapshot(id, data);
          requireContent(s.root(), id);
          try {
            policy.checkIncoming(data); // require-signatures: only trusted signed snapshots
          } catch (org.osfarm.core.SignatureException e) {
            throw new PeerDataException(e.getMessage());
          }
        }
      }
    } catch (CorruptObjectException e) {
      throw new PeerDataException("peer sent an undecodable " + type + ": " + e.getMessage());
    }
  }

  private void requireContent(Entry e, Digest parent) {
    if (e.type() == EntryType.DIR) {
      require(e.content(), ObjectType.TREE, parent);
    } else if (e.type() == EntryType.FILE && e.content() != null) {
      require(e.content(), e.chunked() ? ObjectType.CHUNKLIST : ObjectType.BLOB, parent);
    }
  }

  private void require(Digest id, ObjectType type, Digest parent) {
    ObjectType t = seen.get(id);
    if (t == null) {
      Optional<ObjectInfo> i = store.info(id);
      t = i.map(ObjectInfo::type).orElse(null);
    }
    if (t == null) {
      throw new PeerDataException(
          "object "
              + parent.hex()
              + " refers to "
              + type.name().toLowerCase(java.util.Locale.ROOT)
              + " "
              + id.hex()
              + ", which was neither sent before it nor stored here");
    }
    if (t != type) {
      throw new PeerDataException(
          "object " + parent.hex() + " refers to " + id.hex() + " as a " + type + ", it is a " + t);
    }
  }
}
