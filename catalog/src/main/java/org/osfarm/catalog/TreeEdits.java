package org.osfarm.catalog;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.UnaryOperator;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.InvalidInputException;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Repository;
import org.osfarm.core.chunk.FastCdc;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Editing snapshot trees without checking them out: only the directories on the way to a change are
 * rewritten, every other subtree is shared with the original by id (Merkle sharing). This is what
 * makes an overlay cost kilobytes, and a memoized install a tree merge instead of a rerun.
 */
final class TreeEdits {
  private static final Comparator<byte[]> BY_NAME = Arrays::compareUnsigned;

  private TreeEdits() {}

  static Entry rootEntry(Digest tree, long mtime) {
    return dir(new byte[0], tree, 0755, mtime);
  }

  static Entry dir(byte[] name, Digest tree, int mode, long mtime) {
    return new Entry(
        name,
        EntryType.DIR,
        mode,
        0,
        0,
        null,
        null,
        mtime,
        0,
        0,
        tree,
        null,
        null,
        0,
        0,
        List.of(),
        List.of(),
        0);
  }

  /** A root-owned 0644 file holding {@code content}, stored as one blob. */
  static Entry file(byte[] name, ObjectStore.Inserter ins, byte[] content, long mtime) {
    Digest id = ins.insert(ObjectType.BLOB, content, 0, content.length);
    return new Entry(
        name,
        EntryType.FILE,
        0644,
        0,
        0,
        null,
        null,
        mtime,
        0,
        content.length,
        id,
        id,
        null,
        0,
        0,
        List.of(),
        List.of(),
        0);
  }

  /** {@code template} (or a new root-owned 0644 file) with other content. */
  static Entry withContent(
      Entry template, byte[] name, ObjectStore.Inserter ins, byte[] content, long mtime) {
    Entry f = file(name, ins, content, mtime);
    if (template == null || template.type() != EntryType.FILE) {
      return f;
    }
    return new Entry(
        name,
        EntryType.FILE,
        template.mode(),
        template.uid(),
        template.gid(),
        template.uname(),
        template.gname(),
        mtime,
        0,
        f.size(),
        f.content(),
        f.fileDigest(),
        null,
        0,
        0,
        template.xattrs(),
        List.of(),
        0);
  }

  /**
   * A file's content stored as the repository stores it: one blob below {@link
   * FastCdc#MIN_CHUNKED_FILE}, content-defined chunks and a chunk list above, streamed.
   */
  static Entry fileFrom(
      Entry template, byte[] name, ObjectStore.Inserter ins, Path source, long mtime)
      throws IOException {
    long size = Files.size(source);
    if (size < FastCdc.MIN_CHUNKED_FILE) {
      return withContent(template, name, ins, Files.readAllBytes(source), mtime);
    }
    FastCdc cdc = new FastCdc();
    MessageDigest whole = Digest.newMessageDigest();
    List<ObjectCodec.Chunk> chunks = new ArrayList<>();
    byte[] buf = new byte[cdc.maxSize() * 2];
    int len = 0;
    try (InputStream in = Files.newInputStream(source)) {
      boolean eof = false;
      while (!eof || len > 0) {
        while (!eof && len < buf.length) {
          int n = in.read(buf, len, buf.length - len);
          if (n < 0) {
            eof = true;
          } else {
            len += n;
          }
        }
        int cut = eof && len <= cdc.maxSize() ? len : cdc.cut(buf, 0, len);
        whole.update(buf, 0, cut);
        Digest id = ins.insert(ObjectType.BLOB, buf, 0, cut);
        chunks.add(new ObjectCodec.Chunk(id, cut));
        System.arraycopy(buf, cut, buf, 0, len - cut);
        len -= cut;
      }
    }
    Digest fileDigest = Digest.of(whole);
    byte[] list = ObjectCodec.encodeChunkList(new ObjectCodec.ChunkList(fileDigest, size, chunks));
    Digest listId = ins.insert(ObjectType.CHUNKLIST, list, 0, list.length);
    Entry t = template != null && template.type() == EntryType.FILE ? template : null;
    return new Entry(
        name,
        EntryType.FILE,
        t == null ? 0644 : t.mode(),
        t == null ? 0 : t.uid(),
        t == null ? 0 : t.gid(),
        t == null ? null : t.uname(),
        t == null ? null : t.gname(),
        mtime,
        0,
        size,
        listId,
        fileDigest,
        null,
        0,
        0,
        t == null ? List.of() : t.xattrs(),
        List.of(),
        Entry.CHUNKED);
  }

  // ---------------------------------------------------------------- edits by path

  /** Edits to apply, as a trie of path components. */
  static final class Edits {
    final TreeMap<ByteBuffer, Edits> children = new TreeMap<>();
    UnaryOperator<Entry> replace; // given the old entry (or null), the new one
    boolean remove;

    private Edits at(String path) {
      List<byte[]> parts = Bytes.split(Bytes.unescape(path));
      if (parts.isEmpty()) {
        throw new IllegalArgumentException("'" + path + "' names the image root, not a file");
      }
      Edits n = this;
      for (byte[] p : parts) {
        if (p.length == 2 && p[0] == '.' && p[1] == '.') {
          throw new IllegalArgumentException("'..' is not allowed in '" + path + "'");
        }
        n = n.children.computeIfAbsent(ByteBuffer.wrap(p), k -> new Edits());
      }
      if (n.replace != null || n.remove || !n.children.isEmpty()) {
        throw new IllegalArgumentException("'" + path + "' is changed twice");
      }
      return n;
    }

    void set(String path, UnaryOperator<Entry> replace) {
      at(path).replace = replace;
    }

    void remove(String path) {
      at(path).remove = true;
    }

    boolean isEmpty() {
      return children.isEmpty();
    }
  }

  /** Applies {@code edits} to {@code tree}; returns the new tree's id. */
  static Digest apply(
      Repository repo,
      ObjectStore.Inserter ins,
      Digest tree,
      Edits edits,
      String where,
      long mtime) {
    TreeMap<byte[], Entry> entries = new TreeMap<>(BY_NAME);
    if (tree != null) {
      for (Entry e : repo.readTree(tree)) {
        entries.put(e.name(), e);
      }
    }
    for (Map.Entry<ByteBuffer, Edits> c : edits.children.entrySet()) {
      byte[] name = new byte[c.getKey().remaining()];
      c.getKey().duplicate().get(name);
      String path = where.isEmpty() ? Bytes.escape(name) : where + "/" + Bytes.escape(name);
      Edits ed = c.getValue();
      Entry old = entries.get(name);
      if (ed.remove) {
        if (old == null) {
          throw new NotFoundException("cannot remove '" + path + "': no such path in the image");
        }
        entries.remove(name);
      } else if (ed.replace != null) {
        if (old != null && old.type() == EntryType.DIR) {
          throw new InvalidInputException("cannot replace '" + path + "': it is a directory");
        }
        entries.put(name, ed.replace.apply(old).withName(name));
      } else {
        if (old != null && old.type() != EntryType.DIR) {
          throw new InvalidInputException(
              "cannot change '" + path + "/...': '" + path + "' is not a directory");
        }
        Digest sub = apply(repo, ins, old == null ? null : old.content(), ed, path, mtime);
        entries.put(name, old == null ? dir(name, sub, 0755, mtime) : old.withContent(sub));
      }
    }
    return writeTree(ins, new ArrayList<>(entries.values()));
  }

  static Digest writeTree(ObjectStore.Inserter ins, List<Entry> sorted) {
    byte[] b = ObjectCodec.encodeTree(sorted);
    return ins.insert(ObjectType.TREE, b, 0, b.length);
  }

  // ---------------------------------------------------------------- three-way merge

  /**
   * Carries the change from {@code base} to {@code changed} over to {@code target}: the tree {@code
   * target + (changed - base)} ({@code base} null: an empty tree). Where {@code target} and {@code
   * changed} both differ from {@code base} in the same non-directory entry, {@code changed} wins.
   * Subtrees equal on two sides are decided without being read.
   */
  static Digest merge(
      Repository repo, ObjectStore.Inserter ins, Digest base, Digest changed, Digest target) {
    if (Objects.equals(base, changed)) {
      return target;
    }
    if (Objects.equals(base, target) || Objects.equals(changed, target)) {
      return changed;
    }
    return writeTree(ins, mergeEntries(repo, ins, base, changed, target));
  }

  /** The entries of {@link #merge}'s result, before it is written. */
  static List<Entry> mergeEntries(
      Repository repo, ObjectStore.Inserter ins, Digest base, Digest changed, Digest target) {
    TreeMap<byte[], Entry> b = read(repo, base);
    TreeMap<byte[], Entry> c = read(repo, changed);
    TreeMap<byte[], Entry> t = read(repo, target);
    TreeMap<byte[], Boolean> names = new TreeMap<>(BY_NAME);
    for (byte[] n : b.keySet()) {
      names.put(n, true);
    }
    for (byte[] n : c.keySet()) {
      names.put(n, true);
    }
    for (byte[] n : t.keySet()) {
      names.put(n, true);
    }
    List<Entry> out = new ArrayList<>();
    for (byte[] n : names.keySet()) {
      Entry eb = b.get(n);
      Entry ec = c.get(n);
      Entry et = t.get(n);
      Entry result;
      if (Objects.equals(eb, ec)) {
        result = et;
      } else if (Objects.equals(eb, et)) {
        result = ec;
      } else if (ec != null
          && et != null
          && ec.type() == EntryType.DIR
          && et.type() == EntryType.DIR) {
        Digest sub =
            merge(
                repo,
                ins,
                eb != null && eb.type() == EntryType.DIR ? eb.content() : null,
                ec.content(),
                et.content());
        Entry meta = eb != null && eb.sameMetadata(ec) ? et : ec;
        result = meta.withContent(sub);
      } else {
        result = ec;
      }
      if (result != null) {
        out.add(result);
      }
    }
    return out;
  }

  /**
   * {@code raw} with every entry that is {@code base}'s in all but owner names and kept tar header
   * records replaced by {@code base}'s own, so that unchanged subtrees get {@code base}'s ids
   * again. For trees that went through a tar written without owner names (an install's output).
   */
  static Digest normalize(Repository repo, ObjectStore.Inserter ins, Digest base, Digest raw) {
    if (Objects.equals(base, raw)) {
      return base;
    }
    TreeMap<byte[], Entry> b = read(repo, base);
    List<Entry> out = new ArrayList<>();
    boolean same = true;
    for (Entry er : repo.readTree(raw)) {
      Entry eb = b.get(er.name());
      Entry result = er;
      if (eb != null && eb.type() == EntryType.DIR && er.type() == EntryType.DIR) {
        Digest sub = normalize(repo, ins, eb.content(), er.content());
        result = eb.sameMetadata(er) && sub.equals(eb.content()) ? eb : er.withContent(sub);
      } else if (eb != null
          && eb.sameMetadata(er)
          && eb.size() == er.size()
          && Objects.equals(eb.fileDigest(), er.fileDigest())) {
        result = eb;
      }
      same &= result == eb;
      out.add(result);
    }
    if (same && out.size() == b.size()) {
      return base;
    }
    return writeTree(ins, out);
  }

  private static TreeMap<byte[], Entry> read(Repository repo, Digest tree) {
    TreeMap<byte[], Entry> m = new TreeMap<>(BY_NAME);
    if (tree == null) {
      return m;
    }
    for (Entry e : repo.readTree(tree)) {
      m.put(e.name(), e);
    }
    return m;
  }
}
