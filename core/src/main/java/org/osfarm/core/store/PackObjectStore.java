package org.osfarm.core.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
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
 * Objects in pack files on a local file system.
 *
 * <p>Design: an inserter appends objects to its own temporary pack ({@code tmp/}); {@code flush}
 * fsyncs it, renames it to {@code pack-<random>.pack}, then writes, fsyncs and renames its index
 * {@code pack-<random>.idx}. A pack is part of the store only once its index exists, so a process
 * killed at any moment leaves either a complete pack or garbage that {@link #retainOnly} deletes;
 * objects that were already stored are never touched. Packs are immutable after the rename; gc
 * rewrites a pack that holds garbage into a new one and deletes the old one only after the new one
 * is durable.
 *
 * <p>Pack file: {@code "OSFPACK\1"}, then records {@code id(32) type(1) codec(1) size(4)
 * storedSize(4) bytes(storedSize)}, big-endian. Index: {@code "OSFIDX\0\1"}, count(4), entries
 * sorted by id {@code id(32) type(1) codec(1) offset(8) size(4) storedSize(4)}, then the SHA-256 of
 * everything before it. A damaged index is ignored in favour of a scan of its pack.
 *
 * <p>All objects are kept in one in-memory map from id to location, read from the indexes at open.
 */
public final class PackObjectStore implements ObjectStore {
  static final byte[] PACK_MAGIC = {'O', 'S', 'F', 'P', 'A', 'C', 'K', 1};
  static final byte[] IDX_MAGIC = {'O', 'S', 'F', 'I', 'D', 'X', 0, 1};
  static final int RECORD_HEADER = 32 + 1 + 1 + 4 + 4;
  static final int IDX_ENTRY = 32 + 1 + 1 + 8 + 4 + 4;

  /** A pack being written starts going to disk in the background every this many bytes. */
  private static final long EARLY_WRITEBACK = 32L << 20;

  /** A pack is closed and a new one started when it grows past this. */
  private static final long MAX_PACK_BYTES = 1L << 30;

  private static final SecureRandom RANDOM = new SecureRandom();

  private final Path packDir;
  private final Path tmpDir;
  private final int level;
  private final ConcurrentHashMap<Digest, Location> index = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, Pack> packs = new ConcurrentHashMap<>();

  private record Location(
      Pack pack, long offset, ObjectType type, int codec, int size, int stored) {}

  private static final class Pack {
    final String name;
    final Path file;
    volatile FileChannel channel;
    volatile MemorySegment mapping;

    Pack(String name, Path file) {
      this.name = name;
      this.file = file;
    }

    FileChannel channel() throws IOException {
      FileChannel c = channel;
      if (c == null) {
        synchronized (this) {
          c = channel;
          if (c == null) {
            c = FileChannel.open(file, StandardOpenOption.READ);
            channel = c;
          }
        }
      }
      return c;
    }

    /**
     * The whole pack, mapped read-only on first use. Packs never change once renamed into place, so
     * the mapping stays valid; it is unmapped when it becomes unreachable (an automatic arena),
     * never while a slice of it is still in use, even after {@link #close} or a gc that deleted the
     * file.
     */
    MemorySegment mapped() throws IOException {
      MemorySegment m = mapping;
      if (m == null) {
        synchronized (this) {
          m = mapping;
          if (m == null) {
            FileChannel c = channel();
            m = c.map(FileChannel.MapMode.READ_ONLY, 0, c.size(), Arena.ofAuto());
            mapping = m;
          }
        }
      }
      return m;
    }

    synchronized void close() throws IOException {
      mapping = null;
      if (channel != null) {
        channel.close();
        channel = null;
      }
    }
  }

  /**
   * Opens (creating if needed) a store under {@code dir}.
   *
   * @param compressionLevel zstd level for new objects; 0 stores everything raw
   */
  public PackObjectStore(Path dir, int compressionLevel) {
    this.packDir = dir.resolve("pack");
    this.tmpDir = dir.resolve("tmp");
    this.level = compressionLevel;
    try {
      Files.createDirectories(packDir);
      Files.createDirectories(tmpDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create object store in " + dir, e);
    }
    refresh();
  }

  /**
   * Loads packs that appeared since the last look, and forgets packs whose index is gone (gc in
   * another process or another store instance rewrote or deleted them). Without the second part a
   * long-lived store would keep believing it holds objects gc removed, and a publish would skip
   * writing them.
   */
  @Override
  public synchronized void refresh() {
    try {
      java.util.Set<Pack> vanished = new java.util.HashSet<>();
      for (Pack p : packs.values()) {
        if (!Files.exists(packDir.resolve(p.name + ".idx"))) {
          vanished.add(p);
        }
      }
      Map<Digest, Location> fresh = new HashMap<>();
      List<Pack> added = new ArrayList<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(packDir, "pack-*.idx")) {
        for (Path idx : ds) {
          String name = idx.getFileName().toString();
          name = name.substring(0, name.length() - 4);
          if (packs.containsKey(name)) {
            continue;
          }
          Path packFile = packDir.resolve(name + ".pack");
          if (!Files.exists(packFile)) {
            continue; // gc removed it between listing and here
          }
          Pack pack = new Pack(name, packFile);
          loadIndex(pack, idx, fresh);
          added.add(pack);
        }
      }
      for (Pack p : added) {
        packs.put(p.name, p);
      }
      // New locations first (an object gc moved to a new pack keeps being found), then drop what
      // still points into a vanished pack.
      fresh.forEach(
          (id, l) -> index.merge(id, l, (old, neu) -> vanished.contains(old.pack) ? neu : old));
      if (!vanished.isEmpty()) {
        index.values().removeIf(l -> vanished.contains(l.pack));
        for (Pack p : vanished) {
          packs.remove(p.name);
          p.close();
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list packs in " + packDir, e);
    }
  }

  private void loadIndex(Pack pack, Path idx, Map<Digest, Location> into) throws IOException {
    byte[] b = Files.readAllBytes(idx);
    boolean ok = b.length >= 12 + 32;
    if (ok) {
      ok = java.util.Arrays.equals(b, 0, 8, IDX_MAGIC, 0, 8);
      MessageDigest md = Digest.newMessageDigest();
      md.update(b, 0, b.length - 32);
      ok &= java.util.Arrays.equals(md.digest(), 0, 32, b, b.length - 32, b.length);
    }
    if (!ok) {
      scanPack(pack, into); // a damaged index: the pack describes itself
      return;
    }
    ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.BIG_ENDIAN);
    int count = buf.getInt(8);
    int pos = 12;
    for (int i = 0; i < count; i++, pos += IDX_ENTRY) {
      Digest id = Digest.fromBytes(b, pos);
      ObjectType type = ObjectType.ofCode(b[pos + 32]);
      int codec = b[pos + 33];
      long offset = buf.getLong(pos + 34);
      int size = buf.getInt(pos + 42);
      int stored = buf.getInt(pos + 46);
      into.putIfAbsent(id, new Location(pack, offset, type, codec, size, stored));
    }
  }

  private void scanPack(Pack pack, Map<Digest, Location> into) throws IOException {
    try (FileChannel ch = FileChannel.open(pack.file, StandardOpenOption.READ)) {
      long end = ch.size();
      long pos = PACK_MAGIC.length;
      ByteBuffer h = ByteBuffer.allocate(RECORD_HEADER);
      while (pos + RECORD_HEADER <= end) {
        h.clear();
        readFully(ch, h, pos);
        byte[] hb = h.array();
        Digest id = Digest.fromBytes(hb, 0);
        int stored = h.getInt(38);
        if (pos + RECORD_HEADER + stored > end) {
          break;
        }
        into.putIfAbsent(
            id, new Location(pack, pos, ObjectType.ofCode(hb[32]), hb[33], h.getInt(34), stored));
        pos += RECORD_HEADER + stored;
      }
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new CorruptObjectException("pack is truncated at offset " + pos);
      }
      pos += n;
    }
  }

  @Override
  public boolean contains(Digest id) {
    return index.containsKey(id);
  }

  @Override
  public Optional<ObjectInfo> info(Digest id) {
    Location l = index.get(id);
    return l == null ? Optional.empty() : Optional.of(toInfo(id, l));
  }

  private static ObjectInfo toInfo(Digest id, Location l) {
    return new ObjectInfo(id, l.type, l.size, l.stored);
  }

  @Override
  public void forEach(Consumer<ObjectInfo> action) {
    index.forEach((id, l) -> action.accept(toInfo(id, l)));
  }

  @Override
  public long storedBytes() {
    long total = 0;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(packDir)) {
      for (Path p : ds) {
        total += Files.size(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return total;
  }

  @Override
  public Inserter newInserter() {
    return new PackInserter();
  }

  @Override
  public Reader newReader() {
    return new PackReader();
  }

  @Override
  public synchronized void close() {
    for (Pack p : packs.values()) {
      try {
        p.close();
      } catch (IOException ignored) {
        // read-only channel: nothing to lose
      }
    }
  }

  private final class PackReader implements Reader {
    @Override
    public byte[] read(Digest id, ObjectType expected) {
      Location l = locate(id, expected);
      byte[] data = Compression.decode(id, l.codec, readRecord(l), l.size);
      Compression.verify(id, data);
      return data;
    }

    @Override
    public ByteBuffer readBuffer(Digest id, ObjectType expected) {
      Location l = locate(id, expected);
      if (l.codec != Compression.RAW || l.stored != l.size) {
        byte[] data = Compression.decode(id, l.codec, readRecord(l), l.size);
        Compression.verify(id, data);
        return ByteBuffer.wrap(data);
      }
      MemorySegment pack;
      try {
        pack = l.pack.mapped();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot map " + l.pack.file, e);
      }
      long from = l.offset + RECORD_HEADER;
      if (from + l.size > pack.byteSize()) {
        throw new CorruptObjectException(
            "pack " + l.pack.file + " is truncated: object " + id + " ends past its end");
      }
      ByteBuffer b = pack.asSlice(from, l.size).asByteBuffer().asReadOnlyBuffer();
      Compression.verify(id, b);
      return b;
    }

    @Override
    public StoredObject readStored(Digest id, ObjectType expected) {
      Location l = locate(id, expected);
      return new StoredObject(l.type, l.codec, l.size, readRecord(l));
    }

    private byte[] readRecord(Location l) {
      byte[] stored = new byte[l.stored];
      try {
        readFully(l.pack.channel(), ByteBuffer.wrap(stored), l.offset + RECORD_HEADER);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + l.pack.file, e);
      }
      return stored;
    }

    private Location locate(Digest id, ObjectType expected) {
      Location l = index.get(id);
      if (l == null) {
        refresh();
        l = index.get(id);
        if (l == null) {
          throw new NotFoundException("object " + id + " is not in the repository");
        }
      }
      if (l.type != expected) {
        throw new CorruptObjectException(
            "object " + id + " is a " + l.type + ", expected a " + expected);
      }
      return l;
    }

    @Override
    public void close() {}
  }

  /** One temporary pack being appended to, and the index entries for it. */
  private final class PackWriter {
    final Path tmp;
    final FileChannel ch;
    final List<byte[]> entries = new ArrayList<>();
    long pos;
    long flushedUpTo;
    private Thread writeback;

    /**
     * Starts writing what is appended so far to disk on a background thread, so the fsync at commit
     * finds little left to do: the disk works while the inserter keeps compressing.
     */
    private void startWriteback() {
      if (writeback != null && writeback.isAlive()) {
        return;
      }
      flushedUpTo = pos;
      writeback =
          Thread.ofPlatform()
              .daemon()
              .name("osfarm-writeback")
              .start(
                  () -> {
                    try {
                      ch.force(false);
                    } catch (IOException ignored) {
                      // commit's own force reports any real failure
                    }
                  });
    }

    private void joinWriteback() {
      if (writeback != null) {
        try {
          writeback.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }

    PackWriter() throws IOException {
      tmp = Files.createTempFile(tmpDir, "pack-", ".tmp");
      FileChannel c = null;
      try {
        c = FileChannel.open(tmp, StandardOpenOption.WRITE);
        writeAll(c, ByteBuffer.wrap(PACK_MAGIC));
      } catch (IOException | RuntimeException e) {
        // e.g. interrupted (ClosedByInterruptException): leave no temp file behind
        if (c != null) {
          c.close();
        }
        Files.deleteIfExists(tmp);
        throw e;
      }
      ch = c;
      pos = PACK_MAGIC.length;
    }

    long append(Digest id, ObjectType type, int codec, int size, byte[] b, int off, int len)
        throws IOException {
      ByteBuffer h = ByteBuffer.allocate(RECORD_HEADER);
      h.put(id.toBytes()).put((byte) type.code()).put((byte) codec).putInt(size).putInt(len);
      h.flip();
      long at = pos;
      ByteBuffer[] bufs = {h, ByteBuffer.wrap(b, off, len)};
      long want = RECORD_HEADER + (long) len;
      long done = 0;
      while (done < want) {
        done += ch.write(bufs);
      }
      pos += want;
      if (pos - flushedUpTo >= EARLY_WRITEBACK) {
        startWriteback();
      }
      byte[] e = new byte[IDX_ENTRY];
      ByteBuffer eb = ByteBuffer.wrap(e);
      eb.put(id.toBytes()).put((byte) type.code()).put((byte) codec).putLong(at).putInt(size);
      eb.putInt(len);
      entries.add(e);
      return at;
    }

    /** Makes the pack durable and visible; returns it. */
    Pack commit() throws IOException {
      joinWriteback();
      ch.force(true);
      ch.close();
      byte[] rnd = new byte[10];
      RANDOM.nextBytes(rnd);
      String name = "pack-" + HexFormat.of().formatHex(rnd);
      Path packFile = packDir.resolve(name + ".pack");
      move(tmp, packFile);
      entries.sort(java.util.Arrays::compareUnsigned);
      Path idxTmp = Files.createTempFile(tmpDir, "idx-", ".tmp");
      try (FileChannel ic = FileChannel.open(idxTmp, StandardOpenOption.WRITE)) {
        MessageDigest md = Digest.newMessageDigest();
        ByteBuffer head = ByteBuffer.allocate(12);
        head.put(IDX_MAGIC).putInt(entries.size()).flip();
        md.update(head.array());
        writeAll(ic, head);
        ByteBuffer body = ByteBuffer.allocate(64 * 1024);
        for (byte[] e : entries) {
          if (body.remaining() < e.length) {
            body.flip();
            writeAll(ic, body);
            body.clear();
          }
          md.update(e);
          body.put(e);
        }
        body.put(md.digest());
        body.flip();
        writeAll(ic, body);
        ic.force(true);
      }
      move(idxTmp, packDir.resolve(name + ".idx"));
      fsyncDir(packDir);
      return new Pack(name, packFile);
    }

    void abort() {
      try {
        ch.close();
        Files.deleteIfExists(tmp);
      } catch (IOException ignored) {
        // a leftover temp file is removed by the next gc
      }
    }
  }

  private static void writeAll(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the file system does not support atomic rename: " + to, e);
    }
  }

  static void fsyncDir(Path dir) throws IOException {
    try (FileChannel c = FileChannel.open(dir, StandardOpenOption.READ)) {
      c.force(true);
    }
  }

  private final class PackInserter implements Inserter {
    private final Map<Digest, Boolean> pending = new ConcurrentHashMap<>();
    private final AtomicLong written = new AtomicLong();
    private final AtomicLong objects = new AtomicLong();
    private PackWriter writer;
    private final List<Map.Entry<Digest, long[]>> locations = new ArrayList<>();

    @Override
    public Digest insert(ObjectType type, byte[] data, int off, int len) {
      Digest id = Digest.of(data, off, len);
      insert(type, id, data, off, len);
      return id;
    }

    @Override
    public void insert(ObjectType type, Digest id, byte[] data, int off, int len) {
      if (index.containsKey(id) || pending.putIfAbsent(id, Boolean.TRUE) != null) {
        return;
      }
      Compression.Encoded enc = Compression.encode(data, off, len, level);
      synchronized (this) {
        try {
          if (writer == null) {
            writer = new PackWriter();
          }
          long at =
              writer.append(id, type, enc.codec(), len, enc.bytes(), enc.offset(), enc.length());
          locations.add(
              Map.entry(id, new long[] {at, type.code(), enc.codec(), len, enc.length()}));
          written.addAndGet(RECORD_HEADER + enc.length());
          objects.incrementAndGet();
          if (writer.pos > MAX_PACK_BYTES) {
            flushLocked();
          }
        } catch (IOException e) {
          throw new UncheckedIOException("cannot write to the object store", e);
        }
      }
    }

    @Override
    public synchronized void flush() {
      try {
        flushLocked();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot flush the object store", e);
      }
    }

    private void flushLocked() throws IOException {
      if (writer == null) {
        return;
      }
      PackWriter w = writer;
      writer = null;
      Pack pack;
      try {
        pack = w.commit();
      } catch (IOException | RuntimeException e) {
        w.abort();
        throw e;
      }
      packs.put(pack.name, pack);
      for (Map.Entry<Digest, long[]> e : locations) {
        long[] v = e.getValue();
        index.putIfAbsent(
            e.getKey(),
            new Location(
                pack, v[0], ObjectType.ofCode((int) v[1]), (int) v[2], (int) v[3], (int) v[4]));
      }
      locations.clear();
      pending.clear();
    }

    @Override
    public long writtenBytes() {
      return written.get();
    }

    @Override
    public long writtenObjects() {
      return objects.get();
    }

    @Override
    public synchronized void close() {
      if (writer != null) {
        writer.abort();
        writer = null;
      }
      locations.clear();
      pending.clear();
    }
  }

  @Override
  public synchronized GcResult retainOnly(Predicate<Digest> keep) {
    long removed = 0;
    long freed = 0;
    try {
      // Leftovers of interrupted writes: no inserter is open, so every temp file is garbage.
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(tmpDir)) {
        for (Path p : ds) {
          freed += Files.size(p);
          Files.deleteIfExists(p);
        }
      }
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(packDir, "pack-*.pack")) {
        for (Path p : ds) {
          String name = p.getFileName().toString().replace(".pack", "");
          if (!Files.exists(packDir.resolve(name + ".idx"))) {
            freed += Files.size(p);
            Files.deleteIfExists(p);
          }
        }
      }
      for (Pack pack : new ArrayList<>(packs.values())) {
        Map<Digest, Location> live = new HashMap<>();
        int dead = 0;
        for (Map.Entry<Digest, Location> e : index.entrySet()) {
          Location l = e.getValue();
          if (l.pack != pack) {
            continue;
          }
          if (keep.test(e.getKey())) {
            live.put(e.getKey(), l);
          } else {
            dead++;
          }
        }
        long packSize = Files.size(pack.file);
        long liveBytes = PACK_MAGIC.length;
        for (Location l : live.values()) {
          liveBytes += RECORD_HEADER + l.stored;
        }
        // Objects stored twice (two writers raced) count as garbage in the copy the index ignores.
        if (dead == 0 && liveBytes == packSize) {
          continue;
        }
        Pack replacement = null;
        Map<Digest, Long> offsets = new HashMap<>();
        if (!live.isEmpty()) {
          PackWriter w = new PackWriter();
          try {
            for (Map.Entry<Digest, Location> e : live.entrySet()) {
              Location l = e.getValue();
              byte[] stored = new byte[l.stored];
              readFully(pack.channel(), ByteBuffer.wrap(stored), l.offset + RECORD_HEADER);
              offsets.put(
                  e.getKey(), w.append(e.getKey(), l.type, l.codec, l.size, stored, 0, l.stored));
            }
            replacement = w.commit();
          } catch (IOException | RuntimeException e) {
            w.abort();
            throw e;
          }
          packs.put(replacement.name, replacement);
        }
        for (var it = index.entrySet().iterator(); it.hasNext(); ) {
          var e = it.next();
          Location l = e.getValue();
          if (l.pack != pack) {
            continue;
          }
          Long at = offsets.get(e.getKey());
          if (at == null) {
            it.remove();
          } else {
            e.setValue(new Location(replacement, at, l.type, l.codec, l.size, l.stored));
          }
        }
        removed += dead;
        long newSize = replacement == null ? 0 : Files.size(replacement.file);
        freed += packSize - newSize;
        packs.remove(pack.name);
        pack.close();
        Files.deleteIfExists(packDir.resolve(pack.name + ".idx"));
        Files.deleteIfExists(pack.file);
      }
      fsyncDir(packDir);
    } catch (NoSuchFileException e) {
      throw new UncheckedIOException("object store changed during gc", e);
    } catch (IOException e) {
      throw new UncheckedIOException("gc failed; the store is intact, run gc again", e);
    }
    return new GcResult(removed, freed);
  }
}
