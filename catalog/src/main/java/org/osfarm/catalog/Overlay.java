package org.osfarm.catalog;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.RefConflictException;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Customized clones as overlays (Mirage's overlay manifests): a new snapshot whose tree is the base
 * image's tree with a few paths set or removed. Only the changed files and the directories on the
 * way to them are new objects; every other subtree is the base's, shared by id — a per-host
 * customization costs kilobytes, and exporting the overlay still yields the whole image.
 *
 * <p>The snapshot records {@code derived-from} (the base id) and {@code overlay.changes}; its
 * parent is the previous value of its ref, as for a publish.
 */
public final class Overlay {
  private Overlay() {}

  /**
   * What to change.
   *
   * @param set paths to create or replace, with the local file that holds the new content (an
   *     existing file keeps its mode and owner; a new one is root's, 0644; missing directories are
   *     created 0755)
   * @param remove paths to remove (a directory with everything in it)
   * @param hostname if not null, the new {@code etc/hostname}, also put in {@code etc/hosts}
   * @param message the snapshot's message (null: a description of the changes)
   */
  public record Spec(Map<String, Path> set, List<String> remove, String hostname, String message) {
    public Spec {
      set = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(set));
      remove = List.copyOf(remove);
      if (set.isEmpty() && remove.isEmpty() && hostname == null) {
        throw new IllegalArgumentException("nothing to change: give --set, --rm or --hostname");
      }
      if (hostname != null && !hostname.matches("[A-Za-z0-9]([A-Za-z0-9.\\-]{0,252})")) {
        throw new IllegalArgumentException(
            "bad hostname '" + hostname + "': letters, digits, '-' and '.' only");
      }
    }
  }

  /**
   * @param newObjects objects the overlay added to the repository
   * @param newBytes their stored size
   */
  public record Result(Digest snapshot, RefUpdate update, long newObjects, long newBytes) {}

  /**
   * Creates the overlay of {@code base} described by {@code spec}, moves {@code ref} to it, and
   * adds it to the catalog.
   *
   * @throws NotFoundException if a path to remove does not exist
   * @throws org.osfarm.core.InvalidInputException if a change contradicts the image (a file where a
   *     directory is, ...)
   * @throws RefConflictException if the ref moved meanwhile
   */
  public static Result create(Catalog catalog, Digest base, String ref, Spec spec)
      throws IOException {
    Repository repo = catalog.repository();
    RefDatabase.validateName(ref);
    if (ref.startsWith(Catalog.OWN_REFS)) {
      throw new IllegalArgumentException("refs under " + Catalog.OWN_REFS + " are osfarm's own");
    }
    for (Path p : spec.set().values()) {
      if (!Files.isRegularFile(p)) {
        throw new NotFoundException("--set: " + p + " is not a readable regular file");
      }
    }
    Snapshot b = repo.readSnapshot(base);
    long now = Instant.now().getEpochSecond();
    List<String> described = new ArrayList<>();
    TreeEdits.Edits edits = new TreeEdits.Edits();
    Optional<Digest> old = repo.refs().get(ref);
    try (Repository.Lease lease = repo.holdSharedLock();
        ObjectStore.Inserter ins = repo.store().newInserter()) {
      for (var e : spec.set().entrySet()) {
        Path src = e.getValue();
        byte[] name = last(e.getKey());
        edits.set(
            e.getKey(),
            oldEntry -> {
              try {
                return TreeEdits.fileFrom(oldEntry, name, ins, src, now);
              } catch (IOException x) {
                throw new UncheckedIOException("cannot read " + src, x);
              }
            });
        described.add("set " + e.getKey());
      }
      for (String r : spec.remove()) {
        edits.remove(r);
        described.add("rm " + r);
      }
      if (spec.hostname() != null) {
        String h = spec.hostname();
        edits.set(
            "etc/hostname",
            o -> TreeEdits.withContent(o, Bytes.utf8("hostname"), ins, Bytes.utf8(h + "\n"), now));
        Entry hosts = existing(repo, base, "etc/hosts");
        if (hosts != null && hosts.type() == EntryType.FILE) {
          byte[] content = hostsWith(repo, hosts, h);
          edits.set(
              "etc/hosts", o -> TreeEdits.withContent(o, Bytes.utf8("hosts"), ins, content, now));
        }
        described.add("hostname " + h);
      }
      Digest tree = TreeEdits.apply(repo, ins, b.tree(), edits, "", now);
      Map<String, String> meta = new TreeMap<>();
      for (var e : b.metadata().entrySet()) {
        if (e.getKey().equals("source") || e.getKey().startsWith("tar.")) {
          meta.put(e.getKey(), e.getValue()); // so the overlay exports exactly like its base
        }
      }
      meta.put(Catalog.DERIVED_FROM, base.hex());
      meta.put("overlay.changes", String.join("; ", described));
      String message =
          spec.message() != null
              ? spec.message()
              : "overlay of " + base.shortHex(12) + ": " + String.join("; ", described);
      Snapshot s =
          new Snapshot(
              b.root().withContent(tree),
              old.map(List::of).orElse(List.of()),
              Instant.now(),
              message,
              meta);
      byte[] enc = repo.encodeSnapshot(s);
      Digest id = ins.insert(ObjectType.SNAPSHOT, enc, 0, enc.length);
      ins.flush();
      RefUpdate u = repo.refs().compareAndSet(ref, old.orElse(null), id, "overlay: " + message);
      if (u == RefUpdate.REJECTED_CHANGED) {
        throw new RefConflictException(
            "ref '"
                + ref
                + "' changed while the overlay was made; snapshot "
                + id
                + " is stored but not named: run 'osfarm tag "
                + ref
                + " "
                + id.shortHex(12)
                + "' or try again");
      }
      catalog.add(id, ref);
      return new Result(id, u, ins.writtenObjects(), ins.writtenBytes());
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  private static byte[] last(String path) {
    List<byte[]> parts = Bytes.split(Bytes.unescape(path));
    if (parts.isEmpty()) {
      throw new IllegalArgumentException("'" + path + "' names the image root, not a file");
    }
    return parts.get(parts.size() - 1);
  }

  private static Entry existing(Repository repo, Digest snapshot, String path) {
    try {
      return repo.lookup(snapshot, Bytes.utf8(path));
    } catch (NotFoundException e) {
      return null;
    }
  }

  /** etc/hosts with the 127.0.1.1 line naming {@code host} (replaced, or added). */
  private static byte[] hostsWith(Repository repo, Entry hosts, String host) throws IOException {
    String text;
    try (InputStream in = repo.openContent(hosts)) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    StringBuilder out = new StringBuilder();
    boolean done = false;
    for (String line : text.split("\n", -1)) {
      if (line.startsWith("127.0.1.1") && !done) {
        out.append("127.0.1.1\t").append(host).append('\n');
        done = true;
      } else if (!line.isEmpty()) {
        out.append(line).append('\n');
      }
    }
    if (!done) {
      out.append("127.0.1.1\t").append(host).append('\n');
    }
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }
}
