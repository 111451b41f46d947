package org.osfarm.catalog;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Labels live in the repository, not in the catalog, so that the catalog stays derived data: the
 * ref {@value #REF} names a snapshot whose root holds one file per labelled snapshot (named by its
 * hex id) with {@code key=value} lines, sorted. Each change is a new snapshot whose parent is the
 * previous one, moved by compare-and-swap, so label history is in {@code osfarm log}.
 */
final class Labels {
  static final String REF = "catalog/labels";
  private static final int MAX_ATTEMPTS = 20;

  private Labels() {}

  /** The labels of every labelled snapshot, and the label snapshot they come from (or null). */
  record State(Digest version, Map<Digest, Map<String, String>> labels) {}

  static State read(Repository repo) {
    Optional<Digest> head = repo.refs().get(REF);
    Map<Digest, Map<String, String>> out = new TreeMap<>();
    if (head.isEmpty()) {
      return new State(null, out);
    }
    Snapshot s = repo.readSnapshot(head.get());
    for (Entry e : repo.readTree(s.tree())) {
      String name = new String(e.name(), StandardCharsets.US_ASCII);
      if (e.type() != EntryType.FILE || !Digest.isHex(name)) {
        continue;
      }
      Map<String, String> kv = new TreeMap<>();
      try (InputStream in = repo.openContent(e)) {
        for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
          int eq = line.indexOf('=');
          if (eq > 0) {
            kv.put(line.substring(0, eq), line.substring(eq + 1));
          }
        }
      } catch (IOException ex) {
        throw new UncheckedIOException(ex);
      }
      out.put(Digest.fromHex(name), kv);
    }
    return new State(head.get(), out);
  }

  static void validate(String key, String value) {
    if (key.isEmpty()
        || !key.matches("[A-Za-z0-9_.\\-/]+")
        || value.indexOf('\n') >= 0
        || value.indexOf('\r') >= 0) {
      throw new IllegalArgumentException(
          "bad label '"
              + key
              + "="
              + value
              + "': keys are letters, digits and _ . - /; values are one line");
    }
  }

  /** Sets and removes labels of {@code snapshot}; returns its labels afterwards. */
  static Map<String, String> update(
      Repository repo, Digest snapshot, Map<String, String> set, Set<String> remove) {
    set.forEach(Labels::validate);
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      State cur = read(repo);
      Map<String, String> mine = new TreeMap<>(cur.labels().getOrDefault(snapshot, Map.of()));
      for (String k : remove) {
        if (mine.remove(k) == null) {
          throw new IllegalArgumentException(
              "snapshot " + snapshot.shortHex(12) + " has no label '" + k + "'");
        }
      }
      mine.putAll(set);
      Map<Digest, Map<String, String>> all = new TreeMap<>(cur.labels());
      if (mine.isEmpty()) {
        all.remove(snapshot);
      } else {
        all.put(snapshot, mine);
      }
      // Held from writing the objects until the ref names them, so a gc cannot remove them.
      try (Repository.Lease lease = repo.holdSharedLock()) {
        Digest id = write(repo, all, cur.version(), "label " + snapshot.shortHex(12));
        RefUpdate u =
            repo.refs().compareAndSet(REF, cur.version(), id, "label " + snapshot.shortHex(12));
        if (u != RefUpdate.REJECTED_CHANGED) {
          return mine;
        }
      }
    }
    throw new CatalogException("labels keep changing under us; try again");
  }

  private static Digest write(
      Repository repo, Map<Digest, Map<String, String>> all, Digest parent, String message) {
    long now = Instant.now().getEpochSecond();
    try (Repository.Lease lease = repo.holdSharedLock();
        ObjectStore.Inserter ins = repo.store().newInserter()) {
      List<Entry> entries = new ArrayList<>();
      for (var e : all.entrySet()) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (var kv : e.getValue().entrySet()) {
          b.writeBytes((kv.getKey() + "=" + kv.getValue() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        byte[] content = b.toByteArray();
        entries.add(
            TreeEdits.file(
                e.getKey().hex().getBytes(StandardCharsets.US_ASCII), ins, content, now));
      }
      byte[] tree = ObjectCodec.encodeTree(entries);
      Digest treeId = ins.insert(ObjectType.TREE, tree, 0, tree.length);
      Snapshot s =
          new Snapshot(
              TreeEdits.rootEntry(treeId, now),
              parent == null ? List.of() : List.of(parent),
              Instant.now(),
              message,
              Map.of("source", "catalog"));
      byte[] enc = repo.encodeSnapshot(s);
      Digest id = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
      ins.flush();
      return id;
    }
  }
}
