package org.osfarm.mount;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Snapshot;

/**
 * One snapshot as the file system sees it: path lookup over tree objects read through the cache,
 * hard links resolved to the entry that holds the content, link counts.
 *
 * <p>Opening a view walks every tree of the snapshot once (trees are small next to file contents)
 * and pins them: that gives exact link counts for hard links and directories, the image size for
 * statfs, and a directory structure that stays browsable offline. Thread-safe.
 */
final class SnapshotView {
  private static final int TREE_MEMORY = 8192;

  private final ObjectCache cache;
  private final Digest id;
  private final Snapshot snapshot;

  /** Canonical path of a hard link's target → number of names it has. */
  private final Map<String, Integer> linkCounts = new HashMap<>();

  /** Tree id → number of subdirectories. */
  private final Map<Digest, Integer> subdirs = new HashMap<>();

  private final LinkedHashMap<Digest, List<Entry>> trees =
      new LinkedHashMap<>(1024, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Digest, List<org.osfarm.core.Entry>> e) {
          return size() > TREE_MEMORY;
        }
      };

  private long totalBytes;
  private long entries;
  private long treeBytes;

  /** A resolved path: the entry (the content holder for a hard link) and its canonical path. */
  record Node(Entry entry, String canonical) {}

  SnapshotView(ObjectCache cache, Digest id) throws IOException {
    this.cache = cache;
    this.id = id;
    this.snapshot = ObjectCodec.decodeSnapshot(id, cache.pin(id));
    walk();
  }

  Digest id() {
    return id;
  }

  Snapshot snapshot() {
    return snapshot;
  }

  /** Bytes of all regular files (hard links counted once). */
  long totalBytes() {
    return totalBytes;
  }

  long entries() {
    return entries;
  }

  long treeBytes() {
    return treeBytes;
  }

  /** Breadth first, one level at a time, prefetching each level's trees. */
  private void walk() throws IOException {
    List<Digest> level = List.of(snapshot.tree());
    List<byte[]> prefixes = List.of(new byte[0]);
    while (!level.isEmpty()) {
      cache.prefetch(level);
      List<Digest> next = new ArrayList<>();
      List<byte[]> nextPrefixes = new ArrayList<>();
      for (int i = 0; i < level.size(); i++) {
        Digest t = level.get(i);
        byte[] raw = cache.pin(t);
        treeBytes += raw.length;
        List<Entry> list = ObjectCodec.decodeTree(t, raw);
        synchronized (trees) {
          trees.put(t, list);
        }
        int dirs = 0;
        for (Entry e : list) {
          entries++;
          byte[] path = child(prefixes.get(i), e.name());
          switch (e.type()) {
            case DIR -> {
              dirs++;
              next.add(e.content());
              nextPrefixes.add(path);
            }
            case FILE -> totalBytes += e.size();
            case HARDLINK -> linkCounts.merge(canonical(e.link()), 1, Integer::sum);
            default -> {}
          }
        }
        subdirs.put(t, dirs);
      }
      level = next;
      prefixes = nextPrefixes;
    }
  }

  private static byte[] child(byte[] prefix, byte[] name) {
    if (prefix.length == 0) {
      return name;
    }
    byte[] p = Arrays.copyOf(prefix, prefix.length + 1 + name.length);
    p[prefix.length] = '/';
    System.arraycopy(name, 0, p, prefix.length + 1, name.length);
    return p;
  }

  private static String canonical(byte[] path) {
    return new String(Bytes.join(Bytes.split(path)), StandardCharsets.ISO_8859_1);
  }

  /** The entries of a directory, sorted by name. */
  List<Entry> list(Entry dir) throws IOException {
    Digest t = dir.content();
    synchronized (trees) {
      List<Entry> l = trees.get(t);
      if (l != null) {
        return l;
      }
    }
    List<Entry> l = ObjectCodec.decodeTree(t, cache.read(t));
    synchronized (trees) {
      trees.put(t, l);
    }
    return l;
  }

  /**
   * The entry at a FUSE path ({@code /} is the root), as stored (a hard link stays a hard link);
   * null if there is none.
   */
  Entry lookup(String path) throws IOException {
    return lookup(Bytes.split(path.getBytes(StandardCharsets.UTF_8)));
  }

  private Entry lookup(List<byte[]> parts) throws IOException {
    Entry cur = snapshot.root();
    for (byte[] part : parts) {
      if (cur.type() != EntryType.DIR) {
        return null;
      }
      cur = find(list(cur), part);
      if (cur == null) {
        return null;
      }
    }
    return cur;
  }

  /** Like {@link #lookup}, but a hard link resolves to the entry holding the content. */
  Node resolve(String path) throws IOException {
    List<byte[]> parts = Bytes.split(path.getBytes(StandardCharsets.UTF_8));
    Entry e = lookup(parts);
    if (e == null) {
      return null;
    }
    if (e.type() == EntryType.HARDLINK) {
      List<byte[]> target = Bytes.split(e.link());
      Entry t = lookup(target);
      if (t == null || t.type() == EntryType.HARDLINK) {
        throw new IOException("hard link " + path + " names a missing file " + e.nameString());
      }
      return new Node(t, new String(Bytes.join(target), StandardCharsets.ISO_8859_1));
    }
    return new Node(e, new String(Bytes.join(parts), StandardCharsets.ISO_8859_1));
  }

  /** How many names the file at this canonical path has. */
  int linkCount(Node n) {
    return switch (n.entry().type()) {
      case DIR -> 2 + subdirs.getOrDefault(n.entry().content(), 0);
      case FILE -> 1 + linkCounts.getOrDefault(n.canonical(), 0);
      default -> 1;
    };
  }

  /** The chunks of a regular file: one for a small file, the chunk list for a large one. */
  List<ObjectCodec.Chunk> chunks(Entry file) throws IOException {
    if (!file.chunked()) {
      return List.of(new ObjectCodec.Chunk(file.content(), (int) file.size()));
    }
    ObjectCodec.ChunkList list =
        ObjectCodec.decodeChunkList(file.content(), cache.read(file.content()));
    if (list.size() != file.size()) {
      throw new IOException(
          "chunk list " + file.content() + " holds " + list.size() + " bytes, not " + file.size());
    }
    return list.chunks();
  }

  /**
   * Pins everything under {@code path} (a file's content, a directory's whole subtree, a link's
   * target file when it is a hard link). Returns the bytes pinned.
   */
  long pin(String path) throws IOException {
    Node n = resolve(path);
    if (n == null) {
      throw new IOException("--pin: no such path in snapshot " + id.hex() + ": " + path);
    }
    return pin(n.entry(), path);
  }

  private long pin(Entry e, String path) throws IOException {
    long bytes = 0;
    switch (e.type()) {
      case FILE -> {
        if (e.chunked()) {
          cache.pin(e.content());
        }
        List<ObjectCodec.Chunk> chunks = chunks(e);
        List<Digest> ids = new ArrayList<>(chunks.size());
        for (ObjectCodec.Chunk c : chunks) {
          ids.add(c.id());
        }
        cache.prefetch(ids);
        for (Digest d : ids) {
          bytes += cache.pin(d).length;
        }
      }
      case DIR -> {
        for (Entry c : list(e)) {
          String name = new String(c.name(), StandardCharsets.UTF_8);
          String p = path.endsWith("/") ? path + name : path + "/" + name;
          if (c.type() == EntryType.HARDLINK) {
            Node t = resolve(p);
            bytes += pin(t.entry(), p);
          } else {
            bytes += pin(c, p);
          }
        }
      }
      default -> {}
    }
    return bytes;
  }

  private static Entry find(List<Entry> tree, byte[] name) {
    int lo = 0;
    int hi = tree.size() - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1;
      int c = Arrays.compareUnsigned(tree.get(mid).name(), name);
      if (c == 0) {
        return tree.get(mid);
      }
      if (c < 0) {
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return null;
  }
}
