package org.osfarm.core.store;

import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;

/**
 * Objects in memory, for tests and scratch repositories. Same contract as the pack store: inserted
 * objects become visible on flush, reads verify hashes, and the same compression is applied so
 * sizes are comparable.
 */
public final class InMemoryObjectStore implements ObjectStore {
  private record Stored(ObjectType type, int codec, int size, byte[] bytes) {}

  private final Map<Digest, Stored> objects = new ConcurrentHashMap<>();
  private final int level;

  public InMemoryObjectStore(int compressionLevel) {
    this.level = compressionLevel;
  }

  /** Test hook: replaces the stored bytes of {@code id} (simulates disk corruption). */
  public void corrupt(Digest id, byte[] storedBytes) {
    Stored s = objects.get(id);
    objects.put(id, new Stored(s.type, Compression.RAW, s.size, storedBytes));
  }

  @Override
  public Inserter newInserter() {
    return new Inserter() {
      private final Map<Digest, Stored> pending = new ConcurrentHashMap<>();
      private final AtomicLong written = new AtomicLong();

      @Override
      public Digest insert(ObjectType type, byte[] data, int off, int len) {
        Digest id = Digest.of(data, off, len);
        insert(type, id, data, off, len);
        return id;
      }

      @Override
      public void insert(ObjectType type, Digest id, byte[] data, int off, int len) {
        if (objects.containsKey(id) || pending.containsKey(id)) {
          return;
        }
        Compression.Encoded e = Compression.encode(data, off, len, level);
        byte[] copy = Arrays.copyOfRange(e.bytes(), e.offset(), e.offset() + e.length());
        if (pending.putIfAbsent(id, new Stored(type, e.codec(), len, copy)) == null) {
          written.addAndGet(copy.length);
        }
      }

      @Override
      public void flush() {
        pending.forEach(objects::putIfAbsent);
        pending.clear();
      }

      @Override
      public long writtenBytes() {
        return written.get();
      }

      @Override
      public long writtenObjects() {
        return pending.size();
      }

      @Override
      public void close() {
        pending.clear();
      }
    };
  }

  @Override
  public Reader newReader() {
    return new Reader() {
      @Override
      public byte[] read(Digest id, ObjectType expected) {
        return readStored(id, expected).decode(id);
      }

      @Override
      public StoredObject readStored(Digest id, ObjectType expected) {
        Stored s = objects.get(id);
        if (s == null) {
          throw new NotFoundException("object " + id + " is not in the repository");
        }
        if (s.type != expected) {
          throw new CorruptObjectException(
              "object " + id + " is a " + s.type + ", expected a " + expected);
        }
        return new StoredObject(s.type, s.codec, s.size, s.bytes.clone());
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public boolean contains(Digest id) {
    return objects.containsKey(id);
  }

  @Override
  public Optional<ObjectInfo> info(Digest id) {
    Stored s = objects.get(id);
    return s == null
        ? Optional.empty()
        : Optional.of(new ObjectInfo(id, s.type, s.size, s.bytes.length));
  }

  @Override
  public void forEach(Consumer<ObjectInfo> action) {
    objects.forEach((id, s) -> action.accept(new ObjectInfo(id, s.type, s.size, s.bytes.length)));
  }

  @Override
  public long storedBytes() {
    long total = 0;
    for (Stored s : objects.values()) {
      total += s.bytes.length;
    }
    return total;
  }

  @Override
  public GcResult retainOnly(Predicate<Digest> keep) {
    long removed = 0;
    long freed = 0;
    for (var it = objects.entrySet().iterator(); it.hasNext(); ) {
      var e = it.next();
      if (!keep.test(e.getKey())) {
        removed++;
        freed += e.getValue().bytes.length;
        it.remove();
      }
    }
    return new GcResult(removed, freed);
  }

  @Override
  public void refresh() {}

  @Override
  public void close() {}
}
