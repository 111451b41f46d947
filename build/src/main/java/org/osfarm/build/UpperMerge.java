package org.osfarm.build;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.osfarm.core.Attr;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * A layer built in a kernel overlayfs as a tree edit: the parent's tree plus the overlay's upper
 * directory (published as its own tree first).
 *
 * <p>Overlayfs semantics (Documentation/filesystems/overlayfs.rst), with {@code userxattr} as
 * mounted inside a user namespace: an entry of the upper directory replaces the parent's entry of
 * the same path; a character device 0/0 (or a file carrying {@code user.overlay.whiteout}) is a
 * whiteout, a deletion; a directory present in both is merged, unless the upper one carries {@code
 * user.overlay.opaque}, which hides everything the parent had below it. The overlay's own
 * bookkeeping attributes ({@code user.overlay.*}) are dropped. Unchanged subtrees keep the parent's
 * tree ids, so the cost grows with the change, not the image.
 *
 * <p>Hard links: the repository stores a group as one file (the first name in tree order) and links
 * naming it. A parent's file the layer replaced or deleted leaves the parent's other names of that
 * inode with the old content, as overlayfs does (they are separate lower names): such links become
 * files again (the first of them holds the content, the rest link to it). The {@code dev}, {@code
 * proc} and {@code sys} directories of the upper are ignored: during the build they are mount
 * points (copied up with the mounted file system's owner and mode), and the parent's entries stay.
 */
final class UpperMerge {
  private static final byte[] OVERLAY_PREFIX = "user.overlay.".getBytes(StandardCharsets.UTF_8);
  private static final byte[] OPAQUE = "user.overlay.opaque".getBytes(StandardCharsets.UTF_8);
  private static final byte[] XWHITEOUT = "user.overlay.whiteout".getBytes(StandardCharsets.UTF_8);

  private final Repository repo;
  private final ObjectStore.Inserter ins;

  /** Paths (no leading "./") the upper replaced or deleted, relative to the image root. */
  private final List<String> touched = new ArrayList<>();

  /** Directory prefixes whose parent content an opaque upper directory hid. */
  private final List<String> hidden = new ArrayList<>();

  int changed;

  /** Trees this merge wrote, which the store shows only after the inserter's flush. */
  private final Map<Digest, List<Entry>> written = new HashMap<>();

  UpperMerge(Repository repo, ObjectStore.Inserter ins) {
    this.repo = repo;
    this.ins = ins;
  }

  /**
   * The merged root entry: {@code upperRoot}'s metadata over the merge of the parent's root tree
   * and the upper tree, with the parent's hard links repaired.
   */
  Entry merge(Digest parentSnapshot, Entry parentRoot, Entry upperRoot) {
    Digest tree = mergeTrees(parentRoot.content(), upperRoot.content(), "");
    Entry root = strip(upperRoot).withContent(tree);
    // parent links whose file the layer replaced or deleted (and that are themselves unchanged)
    Map<String, List<String>> broken = new LinkedHashMap<>();
    Map<String, Entry> oldFiles = new HashMap<>();
    repo.walk(
        parentSnapshot,
        (p, e) -> {
          String path = Bytes.escape(p);
          if (e.type() == EntryType.HARDLINK) {
            String target = norm(Bytes.escape(e.link()));
            if (isTouched(target) && !isTouched(path)) {
              broken.computeIfAbsent(target, k -> new ArrayList<>()).add(path);
            }
          } else if (e.type() == EntryType.FILE) {
            oldFiles.put(path, e);
          }
        });
    if (broken.isEmpty()) {
      return root;
    }
    Map<String, Entry> edits = new TreeMap<>();
    for (Map.Entry<String, List<String>> b : broken.entrySet()) {
      Entry file = oldFiles.get(b.getKey());
      if (file == null) {
        continue; // the parent's link named nothing usable: leave it as it was
      }
      String first = b.getValue().getFirst();
      for (String link : b.getValue()) {
        byte[] name = last(link);
        edits.put(
            link,
            link.equals(first)
                ? file.withName(name)
                : new Entry(
                    name,
                    EntryType.HARDLINK,
                    file.mode(),
                    file.uid(),
                    file.gid(),
                    file.uname(),
                    file.gname(),
                    file.mtimeSeconds(),
                    file.mtimeNanos(),
                    0,
                    null,
                    null,
                    Bytes.unescape(first),
                    0,
                    0,
                    file.xattrs(),
                    file.extras(),
                    0));
      }
    }
    return root.withContent(applyEdits(root.content(), edits, ""));
  }

  /**
   * Stores a snapshot of {@code root} (no parents), encoded by {@link Repository#encodeSnapshot}
   * (signed as a publish signs it); visible once the inserter is flushed.
   */
  Digest snapshot(Entry root, Map<String, String> meta, String message) {
    Snapshot snap = new Snapshot(root, List.of(), java.time.Instant.now(), message, meta);
    byte[] enc = repo.encodeSnapshot(snap);
    return ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
  }

  private boolean isTouched(String path) {
    for (String t : touched) {
      if (path.equals(t) || path.startsWith(t + "/")) {
        return true;
      }
    }
    for (String h : hidden) {
      if (path.startsWith(h + "/")) {
        return true;
      }
    }
    return false;
  }

  private static String norm(String p) {
    while (p.startsWith("./") || p.startsWith("/")) {
      p = p.substring(p.startsWith("./") ? 2 : 1);
    }
    return p;
  }

  private static byte[] last(String path) {
    List<byte[]> parts = Bytes.split(Bytes.unescape(path));
    return parts.getLast();
  }

  private Digest mergeTrees(Digest parent, Digest upper, String where) {
    TreeMap<ByteBuffer, Entry> out = read(parent);
    for (Entry u : repo.readTree(upper)) {
      ByteBuffer k = ByteBuffer.wrap(u.name());
      String path = where.isEmpty() ? Bytes.escape(u.name()) : where + "/" + Bytes.escape(u.name());
      if (where.isEmpty() && (path.equals("dev") || path.equals("proc") || path.equals("sys"))) {
        continue;
      }
      Entry old = out.get(k);
      if (isWhiteout(u)) {
        if (old != null) {
          out.remove(k);
          touched.add(path);
          changed++;
        }
        continue;
      }
      if (u.type() == EntryType.DIR) {
        boolean opaque = attr(u, OPAQUE) != null;
        Digest sub;
        if (!opaque && old != null && old.type() == EntryType.DIR) {
          sub = mergeTrees(old.content(), u.content(), path);
        } else {
          if (old != null) {
            if (old.type() == EntryType.DIR) {
              hidden.add(path);
            } else {
              touched.add(path);
            }
          }
          sub = clean(u.content());
        }
        Entry d = strip(u).withContent(sub);
        if (old == null || !old.equals(d)) {
          changed++;
        }
        out.put(k, d);
      } else {
        if (old != null) {
          touched.add(path);
        }
        out.put(k, strip(u));
        changed++;
      }
    }
    return write(out);
  }

  /** An upper-only subtree without whiteouts or overlay attributes. */
  private Digest clean(Digest upper) {
    TreeMap<ByteBuffer, Entry> out = new TreeMap<>();
    for (Entry u : repo.readTree(upper)) {
      if (isWhiteout(u)) {
        continue;
      }
      Entry e = strip(u);
      if (u.type() == EntryType.DIR) {
        e = e.withContent(clean(u.content()));
      }
      out.put(ByteBuffer.wrap(u.name()), e);
    }
    return write(out);
  }

  private Digest applyEdits(Digest tree, Map<String, Entry> edits, String where) {
    TreeMap<ByteBuffer, Entry> out = read(tree);
    Map<String, Map<String, Entry>> below = new TreeMap<>();
    for (Map.Entry<String, Entry> e : edits.entrySet()) {
      String rest = where.isEmpty() ? e.getKey() : e.getKey().substring(where.length() + 1);
      int slash = rest.indexOf('/');
      if (slash < 0) {
        out.put(ByteBuffer.wrap(e.getValue().name()), e.getValue());
      } else {
        below
            .computeIfAbsent(rest.substring(0, slash), k -> new TreeMap<>())
            .put(e.getKey(), e.getValue());
      }
    }
    for (Map.Entry<String, Map<String, Entry>> b : below.entrySet()) {
      ByteBuffer k = ByteBuffer.wrap(Bytes.unescape(b.getKey()));
      Entry dir = out.get(k);
      if (dir == null || dir.type() != EntryType.DIR) {
        continue;
      }
      String path = where.isEmpty() ? b.getKey() : where + "/" + b.getKey();
      out.put(k, dir.withContent(applyEdits(dir.content(), b.getValue(), path)));
    }
    return write(out);
  }

  private TreeMap<ByteBuffer, Entry> read(Digest tree) {
    TreeMap<ByteBuffer, Entry> m = new TreeMap<>(UpperMerge::compare);
    if (tree != null) {
      List<Entry> mine = written.get(tree); // not readable from the store before the flush
      for (Entry e : mine != null ? mine : repo.readTree(tree)) {
        m.put(ByteBuffer.wrap(e.name()), e);
      }
    }
    return m;
  }

  private static int compare(ByteBuffer a, ByteBuffer b) {
    return Arrays.compareUnsigned(a.array(), b.array());
  }

  private Digest write(TreeMap<ByteBuffer, Entry> entries) {
    TreeMap<ByteBuffer, Entry> sorted = new TreeMap<>(UpperMerge::compare);
    sorted.putAll(entries);
    List<Entry> list = new ArrayList<>(sorted.values());
    byte[] enc = ObjectCodec.encodeTree(list);
    Digest id = ins.insert(ObjectType.TREE, enc, 0, enc.length);
    written.put(id, list);
    return id;
  }

  static boolean isWhiteout(Entry e) {
    return (e.type() == EntryType.CHAR && e.devMajor() == 0 && e.devMinor() == 0)
        || (e.type() == EntryType.FILE && attr(e, XWHITEOUT) != null);
  }

  private static byte[] attr(Entry e, byte[] name) {
    for (Attr a : e.xattrs()) {
      if (Arrays.equals(a.name(), name)) {
        return a.value();
      }
    }
    return null;
  }

  /** {@code e} without overlayfs's own attributes. */
  static Entry strip(Entry e) {
    boolean any = false;
    for (Attr a : e.xattrs()) {
      any |= startsWith(a.name(), OVERLAY_PREFIX);
    }
    if (!any) {
      return e;
    }
    List<Attr> keep = new ArrayList<>();
    for (Attr a : e.xattrs()) {
      if (!startsWith(a.name(), OVERLAY_PREFIX)) {
        keep.add(a);
      }
    }
    return new Entry(
        e.name(),
        e.type(),
        e.mode(),
        e.uid(),
        e.gid(),
        e.uname(),
        e.gname(),
        e.mtimeSeconds(),
        e.mtimeNanos(),
        e.size(),
        e.content(),
        e.fileDigest(),
        e.link(),
        e.devMajor(),
        e.devMinor(),
        keep,
        e.extras(),
        e.flags());
  }

  private static boolean startsWith(byte[] a, byte[] prefix) {
    return a.length >= prefix.length
        && Arrays.equals(a, 0, prefix.length, prefix, 0, prefix.length);
  }
}
