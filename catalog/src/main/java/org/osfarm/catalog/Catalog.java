package org.osfarm.catalog;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.flywaydb.core.Flyway;
import org.osfarm.core.Bytes;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.sqlite.SQLiteConfig;

/**
 * The catalog: a queryable index of every snapshot in a repository — its paths and file digests,
 * the packages its dpkg status lists, its provenance and derivations, its labels, and the words of
 * its text files under {@code etc/}.
 *
 * <p><b>Derived data.</b> Everything here is computed from the repository: snapshots, trees and
 * refs from the object store and the ref database, labels from the ref {@code catalog/labels}.
 * {@link #rebuild} throws the database away and recomputes it with the same answers. {@link #sync}
 * catches up with refs moved since the last call; {@link #add} indexes one snapshot.
 *
 * <p><b>Layout.</b> Trees are indexed once each. An image derived from another costs rows only for
 * the directories it changed, so 1000 snapshots of a few images stay small. A path is found by
 * walking down from the root trees (one indexed join for the first component, then lookups in the
 * few distinct subtrees); a digest or a name by walking up the child links to the roots (a
 * recursive query). Each snapshot is indexed in one transaction: a query sees all of it or none.
 *
 * <p><b>Storage.</b> SQLite (write-ahead log) in {@code REPO/catalog.db}; the schema is managed by
 * Flyway migrations. Thread-safe (calls are serialized); several processes may use one catalog.
 */
public final class Catalog implements AutoCloseable {
  /** The database file in the repository directory. */
  public static final String DB_FILE = "catalog.db";

  /** Refs under this prefix are osfarm's own bookkeeping (labels), not images. */
  public static final String OWN_REFS = "catalog/";

  static final String DERIVED_FROM = "derived-from";

  /** Held so that the level sticks (java.util.logging keeps loggers only weakly). */
  private static final Logger FLYWAY_LOG = Logger.getLogger("org.flywaydb");

  static {
    FLYWAY_LOG.setLevel(Level.WARNING);
  }

  private static final int TEXT_MAX = 64 * 1024;

  private final Repository repo;
  private final Path file;
  private Connection c;

  private Catalog(Repository repo, Path file) {
    this.repo = repo;
    this.file = file;
    connect();
  }

  /** Opens (creating or migrating it if needed) the catalog in the repository's directory. */
  public static Catalog open(Repository repo) {
    return open(repo, repo.directory().resolve(DB_FILE));
  }

  /** Opens the catalog kept in {@code file}. */
  public static Catalog open(Repository repo, Path file) {
    return new Catalog(repo, file);
  }

  /** The repository this catalog indexes. */
  public Repository repository() {
    return repo;
  }

  private void connect() {
    String url = "jdbc:sqlite:" + file.toAbsolutePath();
    try {
      Flyway.configure(Catalog.class.getClassLoader())
          .dataSource(url, null, null)
          .locations("classpath:org/osfarm/catalog/migration")
          .load()
          .migrate();
      SQLiteConfig cfg = new SQLiteConfig();
      cfg.setJournalMode(SQLiteConfig.JournalMode.WAL);
      cfg.setSynchronous(SQLiteConfig.SynchronousMode.NORMAL);
      cfg.setBusyTimeout(60_000);
      cfg.setTransactionMode(SQLiteConfig.TransactionMode.IMMEDIATE);
      cfg.setTempStore(SQLiteConfig.TempStore.MEMORY);
      c = DriverManager.getConnection(url, cfg.toProperties());
      try (Statement s = c.createStatement()) {
        s.execute("PRAGMA cache_size = -65536");
        s.execute("CREATE TEMP TABLE keys (d BLOB PRIMARY KEY) WITHOUT ROWID");
        s.execute("CREATE TEMP TABLE ids (id INTEGER PRIMARY KEY)");
        s.execute(
            "CREATE TEMP TABLE pairs (n TEXT, parent TEXT, PRIMARY KEY (n, parent)) WITHOUT ROWID");
      }
    } catch (SQLException | RuntimeException e) {
      throw new CatalogException(
          "cannot open the catalog "
              + file
              + ": "
              + e.getMessage()
              + " (it is derived data: 'osfarm catalog rebuild' recreates it)",
          e);
    }
  }

  @Override
  public synchronized void close() {
    try {
      if (c != null) {
        c.close();
      }
    } catch (SQLException e) {
      throw new CatalogException("cannot close the catalog: " + e.getMessage(), e);
    }
  }

  // ---------------------------------------------------------------- keeping up with the repository

  /** What a {@link #sync} did. */
  public record SyncReport(int indexed, int refs, double seconds) {}

  /**
   * Indexes every snapshot that a ref names, and their ancestors, that the catalog does not hold
   * yet; mirrors the refs and the labels. Cheap when nothing changed.
   */
  public synchronized SyncReport sync() {
    long t0 = System.nanoTime();
    int indexed = 0;
    TreeMap<String, Digest> refs = new TreeMap<>();
    for (var e : repo.refs().list().entrySet()) {
      if (!e.getKey().startsWith(OWN_REFS)) {
        refs.put(e.getKey(), e.getValue());
      }
    }
    for (Digest id : refs.values()) {
      indexed += addWithAncestors(id);
    }
    syncRefs(refs);
    syncLabels();
    return new SyncReport(indexed, refs.size(), (System.nanoTime() - t0) / 1e9);
  }

  /**
   * Makes sure one snapshot (and its ancestors) is indexed, and that {@code ref} (if not null)
   * names it in the catalog, as the repository's ref does now. Call it after a publish.
   */
  public synchronized void add(Digest snapshot, String ref) {
    addWithAncestors(snapshot);
    if (ref != null && !ref.startsWith(OWN_REFS)) {
      Optional<Digest> now = repo.refs().get(ref);
      tx(
          () -> {
            try (PreparedStatement d = c.prepareStatement("DELETE FROM refs WHERE name = ?")) {
              d.setString(1, ref);
              d.executeUpdate();
            }
            if (now.isPresent()) {
              try (PreparedStatement i =
                  c.prepareStatement("INSERT INTO refs (name, snapshot) VALUES (?, ?)")) {
                i.setString(1, ref);
                i.setLong(2, snapshotRow(now.get()));
                i.executeUpdate();
              }
            }
            return null;
          });
    }
  }

  /** Throws the database away and indexes the repository again from scratch. */
  public synchronized SyncReport rebuild() {
    close();
    for (String suffix : new String[] {"", "-wal", "-shm", "-journal"}) {
      try {
        Files.deleteIfExists(file.resolveSibling(file.getFileName() + suffix));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot remove " + file + suffix, e);
      }
    }
    view = null;
    connect();
    return sync();
  }

  private int addWithAncestors(Digest id) {
    int n = 0;
    ArrayDeque<Digest> todo = new ArrayDeque<>();
    todo.push(id);
    Set<Digest> seen = new HashSet<>();
    while (!todo.isEmpty()) {
      Digest d = todo.pop();
      if (!seen.add(d) || snapshotRow(d) != null || !repo.store().contains(d)) {
        continue;
      }
      Snapshot s = repo.readSnapshot(d);
      tx(() -> indexSnapshot(d, s));
      n++;
      for (Digest p : s.parents()) {
        todo.push(p);
      }
    }
    return n;
  }

  private Long snapshotRow(Digest id) {
    try (PreparedStatement q = c.prepareStatement("SELECT id FROM snapshots WHERE digest = ?")) {
      q.setBytes(1, id.toBytes());
      try (ResultSet r = q.executeQuery()) {
        return r.next() ? r.getLong(1) : null;
      }
    } catch (SQLException e) {
      throw fail(e);
    }
  }

  private Long indexSnapshot(Digest id, Snapshot s) throws SQLException, IOException {
    Long existing = snapshotRow(id); // another process may have been faster
    if (existing != null) {
      return existing;
    }
    try (TreeIndexer ti = new TreeIndexer()) {
      long root = ti.tree(s.tree(), "");
      byte[] status = null;
      try {
        Entry st = repo.lookupFile(id, Bytes.utf8("var/lib/dpkg/status"));
        if (st.type() == EntryType.FILE) {
          status = st.fileDigest().toBytes();
          indexStatus(st);
        }
      } catch (NotFoundException noDpkg) {
        // not a Debian image: no packages
      }
      long row;
      try (PreparedStatement i =
          c.prepareStatement(
              "INSERT INTO snapshots (digest, root, time_ms, message, status) VALUES (?,?,?,?,?)",
              Statement.RETURN_GENERATED_KEYS)) {
        i.setBytes(1, id.toBytes());
        i.setLong(2, root);
        i.setLong(3, s.time().toEpochMilli());
        i.setString(4, s.message());
        i.setBytes(5, status);
        i.executeUpdate();
        try (ResultSet k = i.getGeneratedKeys()) {
          k.next();
          row = k.getLong(1);
        }
      }
      try (PreparedStatement m =
          c.prepareStatement("INSERT INTO snapshot_meta (snapshot, key, value) VALUES (?,?,?)")) {
        for (var e : s.metadata().entrySet()) {
          m.setLong(1, row);
          m.setString(2, e.getKey());
          m.setString(3, e.getValue());
          m.addBatch();
        }
        m.executeBatch();
      }
      try (PreparedStatement d =
          c.prepareStatement(
              "INSERT OR IGNORE INTO derivations (snapshot, source, kind) VALUES (?,?,?)")) {
        for (Digest p : s.parents()) {
          d.setLong(1, row);
          d.setBytes(2, p.toBytes());
          d.setString(3, "parent");
          d.addBatch();
        }
        String base = s.metadata().get(DERIVED_FROM);
        if (base != null && Digest.isHex(base)) {
          d.setLong(1, row);
          d.setBytes(2, Digest.fromHex(base).toBytes());
          d.setString(3, "base");
          d.addBatch();
        }
        d.executeBatch();
      }
      return row;
    }
  }

  /** Indexes trees bottom-up, each once; collects text files under etc/. */
  private final class TreeIndexer implements AutoCloseable {
    final PreparedStatement findTree;
    final PreparedStatement insTree;
    final PreparedStatement insEntry;
    final PreparedStatement findText;
    final PreparedStatement insText;
    final PreparedStatement insWords;

    TreeIndexer() throws SQLException {
      findTree = c.prepareStatement("SELECT id FROM trees WHERE digest = ?");
      insTree =
          c.prepareStatement(
              "INSERT INTO trees (digest) VALUES (?)", Statement.RETURN_GENERATED_KEYS);
      insEntry =
          c.prepareStatement(
              "INSERT INTO entries (tree, name, type, mode, uid, gid, size, digest, child, link)"
                  + " VALUES (?,?,?,?,?,?,?,?,?,?)");
      findText = c.prepareStatement("SELECT 1 FROM texts WHERE digest = ?");
      insText =
          c.prepareStatement(
              "INSERT INTO texts (digest) VALUES (?)", Statement.RETURN_GENERATED_KEYS);
      insWords = c.prepareStatement("INSERT INTO text_index (rowid, body) VALUES (?, ?)");
    }

    long tree(Digest tree, String path) throws SQLException, IOException {
      findTree.setBytes(1, tree.toBytes());
      try (ResultSet r = findTree.executeQuery()) {
        if (r.next()) {
          return r.getLong(1);
        }
      }
      List<Entry> entries = repo.readTree(tree);
      long[] children = new long[entries.size()];
      boolean text = path.equals("etc") || path.startsWith("etc/");
      for (int i = 0; i < entries.size(); i++) {
        Entry e = entries.get(i);
        String name = Bytes.escape(e.name());
        if (e.type() == EntryType.DIR) {
          children[i] = tree(e.content(), path.isEmpty() ? name : path + "/" + name);
        } else if (text && e.type() == EntryType.FILE && e.size() <= TEXT_MAX) {
          text(e);
        }
      }
      long id;
      insTree.setBytes(1, tree.toBytes());
      insTree.executeUpdate();
      try (ResultSet k = insTree.getGeneratedKeys()) {
        k.next();
        id = k.getLong(1);
      }
      for (int i = 0; i < entries.size(); i++) {
        Entry e = entries.get(i);
        insEntry.setLong(1, id);
        insEntry.setString(2, Bytes.escape(e.name()));
        insEntry.setString(3, e.type().label());
        insEntry.setInt(4, e.mode());
        insEntry.setLong(5, e.uid());
        insEntry.setLong(6, e.gid());
        insEntry.setLong(7, e.size());
        insEntry.setBytes(8, e.fileDigest() == null ? null : e.fileDigest().toBytes());
        if (e.type() == EntryType.DIR) {
          insEntry.setLong(9, children[i]);
        } else {
          insEntry.setNull(9, java.sql.Types.INTEGER);
        }
        insEntry.setString(10, e.link().length == 0 ? null : Bytes.escape(e.link()));
        insEntry.addBatch();
      }
      insEntry.executeBatch();
      return id;
    }

    void text(Entry e) throws SQLException, IOException {
      findText.setBytes(1, e.fileDigest().toBytes());
      try (ResultSet r = findText.executeQuery()) {
        if (r.next()) {
          return;
        }
      }
      byte[] b;
      try (InputStream in = repo.openContent(e)) {
        b = in.readAllBytes();
      }
      String s = textOf(b);
      if (s == null) {
        return;
      }
      insText.setBytes(1, e.fileDigest().toBytes());
      insText.executeUpdate();
      long id;
      try (ResultSet k = insText.getGeneratedKeys()) {
        k.next();
        id = k.getLong(1);
      }
      insWords.setLong(1, id);
      insWords.setString(2, s);
      insWords.executeUpdate();
    }

    @Override
    public void close() throws SQLException {
      findTree.close();
      insTree.close();
      insEntry.close();
      findText.close();
      insText.close();
      insWords.close();
    }
  }

  /** The content as text, or null if it is not UTF-8 text (NUL bytes, invalid sequences). */
  private static String textOf(byte[] b) {
    for (byte x : b) {
      if (x == 0) {
        return null;
      }
    }
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(b))
          .toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  private void indexStatus(Entry status) throws SQLException, IOException {
    byte[] d = status.fileDigest().toBytes();
    try (PreparedStatement q = c.prepareStatement("SELECT 1 FROM statuses WHERE digest = ?")) {
      q.setBytes(1, d);
      try (ResultSet r = q.executeQuery()) {
        if (r.next()) {
          return;
        }
      }
    }
    List<PackageInfo> pkgs;
    try (InputStream in = repo.openContent(status)) {
      pkgs = DpkgStatus.parse(in);
    }
    try (PreparedStatement s = c.prepareStatement("INSERT INTO statuses (digest) VALUES (?)");
        PreparedStatement p =
            c.prepareStatement(
                "INSERT OR REPLACE INTO packages (status, name, arch, version, source,"
                    + " source_version) VALUES (?,?,?,?,?,?)")) {
      s.setBytes(1, d);
      s.executeUpdate();
      for (PackageInfo pi : pkgs) {
        p.setBytes(1, d);
        p.setString(2, pi.name());
        p.setString(3, pi.architecture());
        p.setString(4, pi.version());
        p.setString(5, pi.source());
        p.setString(6, pi.sourceVersion());
        p.addBatch();
      }
      p.executeBatch();
    }
  }

  private void syncRefs(TreeMap<String, Digest> refs) {
    Map<String, Digest> have = new TreeMap<>();
    try (Statement s = c.createStatement();
        ResultSet r =
            s.executeQuery(
                "SELECT r.name, s.digest FROM refs r JOIN snapshots s ON s.id = r.snapshot")) {
      while (r.next()) {
        have.put(r.getString(1), Digest.fromBytes(r.getBytes(2), 0));
      }
    } catch (SQLException e) {
      throw fail(e);
    }
    if (have.equals(refs)) {
      return;
    }
    tx(
        () -> {
          try (Statement d = c.createStatement()) {
            d.executeUpdate("DELETE FROM refs");
          }
          try (PreparedStatement i =
              c.prepareStatement("INSERT INTO refs (name, snapshot) VALUES (?, ?)")) {
            for (var e : refs.entrySet()) {
              Long row = snapshotRow(e.getValue());
              if (row != null) {
                i.setString(1, e.getKey());
                i.setLong(2, row);
                i.addBatch();
              }
            }
            i.executeBatch();
          }
          return null;
        });
  }

  private void syncLabels() {
    Optional<Digest> head = repo.refs().get(Labels.REF);
    String want = head.map(Digest::hex).orElse("");
    if (want.equals(state("labels"))) {
      return;
    }
    Labels.State st = Labels.read(repo);
    tx(
        () -> {
          try (Statement d = c.createStatement()) {
            d.executeUpdate("DELETE FROM labels");
          }
          try (PreparedStatement i =
              c.prepareStatement("INSERT INTO labels (snapshot, key, value) VALUES (?,?,?)")) {
            for (var e : st.labels().entrySet()) {
              for (var kv : e.getValue().entrySet()) {
                i.setBytes(1, e.getKey().toBytes());
                i.setString(2, kv.getKey());
                i.setString(3, kv.getValue());
                i.addBatch();
              }
            }
            i.executeBatch();
          }
          setState("labels", st.version() == null ? "" : st.version().hex());
          return null;
        });
  }

  private String state(String key) {
    try (PreparedStatement q = c.prepareStatement("SELECT value FROM state WHERE key = ?")) {
      q.setString(1, key);
      try (ResultSet r = q.executeQuery()) {
        return r.next() ? r.getString(1) : null;
      }
    } catch (SQLException e) {
      throw fail(e);
    }
  }

  private void setState(String key, String value) throws SQLException {
    try (PreparedStatement q =
        c.prepareStatement("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)")) {
      q.setString(1, key);
      q.setString(2, value);
      q.executeUpdate();
    }
  }

  // ---------------------------------------------------------------- labels

  /**
   * Sets and removes labels of a snapshot. Labels are kept in the repository (ref {@value
   * Labels#REF}, with history); the catalog mirrors them.
   *
   * @return the snapshot's labels afterwards
   * @throws IllegalArgumentException for a malformed label or a label to remove that is not set
   */
  public synchronized Map<String, String> label(
      Digest snapshot, Map<String, String> set, Set<String> remove) {
    Map<String, String> after = Labels.update(repo, snapshot, set, remove);
    syncLabels();
    return after;
  }

  /** The labels of a snapshot (as of the last sync). */
  public synchronized Map<String, String> labels(Digest snapshot) {
    Map<String, String> out = new TreeMap<>();
    try (PreparedStatement q =
        c.prepareStatement("SELECT key, value FROM labels WHERE snapshot = ?")) {
      q.setBytes(1, snapshot.toBytes());
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) {
          out.put(r.getString(1), r.getString(2));
        }
      }
    } catch (SQLException e) {
      throw fail(e);
    }
    return out;
  }

  // ---------------------------------------------------------------- queries

  /**
   * Every indexed snapshot matching {@code q}, newest first, with the entries that matched. Call
   * {@link #sync} first to see refs that moved since the catalog last looked.
   */
  public synchronized List<Match> find(FindQuery q) {
    try {
      View v = view();
      Map<Long, List<Match.Found>> hits = null;
      if (!q.paths().isEmpty()) {
        hits = and(hits, findPaths(v, q.paths()));
      }
      if (!q.digests().isEmpty()) {
        setKeys(q.digests().stream().map(Digest::toBytes).toList());
        hits =
            and(
                hits,
                upward(
                    v,
                    seeds(
                        "SELECT tree, name, type, size, digest, link FROM entries"
                            + " WHERE digest IN (SELECT d FROM temp.keys)",
                        List.of(),
                        ""),
                    null));
      }
      if (!q.names().isEmpty()) {
        StringBuilder w = new StringBuilder();
        for (int i = 0; i < q.names().size(); i++) {
          w.append(i == 0 ? "" : " OR ").append("name GLOB ?");
        }
        hits =
            and(
                hits,
                upward(
                    v,
                    seeds(
                        "SELECT tree, name, type, size, digest, link FROM entries WHERE " + w,
                        q.names(),
                        ""),
                    null));
      }
      for (PackageSpec p : q.packages()) {
        hits = and(hits, findPackage(v, p));
      }
      for (var l : q.labels().entrySet()) {
        hits = and(hits, findLabel(v, l.getKey(), l.getValue()));
      }
      for (String word : q.words()) {
        hits =
            and(
                hits,
                upward(
                    v,
                    seeds(
                        "SELECT tree, name, type, size, digest, link FROM entries WHERE digest IN"
                            + " (SELECT t.digest FROM texts t WHERE t.id IN"
                            + " (SELECT rowid FROM text_index WHERE text_index MATCH ?))",
                        List.of("\"" + word + "\""),
                        "text " + word),
                    null));
      }
      if (q.latest()) {
        hits.keySet().retainAll(v.current);
      }
      return matches(v, hits);
    } catch (SQLException e) {
      throw fail(e);
    }
  }

  private static Map<Long, List<Match.Found>> and(
      Map<Long, List<Match.Found>> acc, Map<Long, List<Match.Found>> next) {
    if (acc == null) {
      return next;
    }
    acc.keySet().retainAll(next.keySet());
    for (var e : acc.entrySet()) {
      e.getValue().addAll(next.get(e.getKey()));
    }
    return acc;
  }

  private void setKeys(List<byte[]> keys) throws SQLException {
    try (Statement d = c.createStatement()) {
      d.executeUpdate("DELETE FROM temp.keys");
    }
    try (PreparedStatement i = c.prepareStatement("INSERT OR IGNORE INTO temp.keys VALUES (?)")) {
      for (byte[] k : keys) {
        i.setBytes(1, k);
        i.addBatch();
      }
      i.executeBatch();
    }
  }

  // ---------------------------------------------------------------- the snapshot view

  /**
   * What every query needs about snapshots, kept in memory: their rows, which snapshots each root
   * tree and each dpkg status belongs to, refs. Reloaded (one query each) when the database
   * changed, in this process or another ({@code PRAGMA data_version}).
   */
  private static final class View {
    final long version;
    final Map<Long, Object[]> rows = new HashMap<>(); // id -> {Digest, Instant, message}
    final Map<Long, List<Long>> byRoot = new HashMap<>();
    final Map<java.nio.ByteBuffer, List<Long>> byStatus = new HashMap<>();
    final Map<Long, List<String>> refs = new HashMap<>();
    final Set<Long> current = new HashSet<>();

    View(long version) {
      this.version = version;
    }
  }

  private View view;
  private long localVersion;

  private View view() throws SQLException {
    long dv;
    try (Statement s = c.createStatement();
        ResultSet r = s.executeQuery("PRAGMA data_version")) {
      r.next();
      dv = r.getLong(1);
    }
    long version = dv * 1_000_003L + localVersion;
    if (view != null && view.version == version) {
      return view;
    }
    View v = new View(version);
    try (Statement s = c.createStatement()) {
      try (ResultSet r =
          s.executeQuery("SELECT id, digest, time_ms, message, root, status FROM snapshots")) {
        while (r.next()) {
          long id = r.getLong(1);
          v.rows.put(
              id,
              new Object[] {
                Digest.fromBytes(r.getBytes(2), 0),
                Instant.ofEpochMilli(r.getLong(3)),
                r.getString(4)
              });
          v.byRoot.computeIfAbsent(r.getLong(5), k -> new ArrayList<>(1)).add(id);
          byte[] st = r.getBytes(6);
          if (st != null) {
            v.byStatus
                .computeIfAbsent(java.nio.ByteBuffer.wrap(st), k -> new ArrayList<>())
                .add(id);
          }
        }
      }
      try (ResultSet r = s.executeQuery("SELECT snapshot, name FROM refs ORDER BY name")) {
        while (r.next()) {
          v.refs.computeIfAbsent(r.getLong(1), k -> new ArrayList<>()).add(r.getString(2));
          v.current.add(r.getLong(1));
        }
      }
    }
    view = v;
    return v;
  }

  // ---------------------------------------------------------------- walking up the trees

  /** An entry where a search starts: found by digest, name, word or path. */
  private record Seed(
      long tree, String name, String type, long size, byte[] digest, String detail) {}

  private List<Seed> seeds(String sql, List<String> args, String detail) throws SQLException {
    List<Seed> out = new ArrayList<>();
    try (PreparedStatement q = c.prepareStatement(sql)) {
      for (int i = 0; i < args.size(); i++) {
        q.setString(i + 1, args.get(i));
      }
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) {
          String link = r.getString(6);
          out.add(
              new Seed(
                  r.getLong(1),
                  r.getString(2),
                  r.getString(3),
                  r.getLong(4),
                  r.getBytes(5),
                  !detail.isEmpty() ? detail : link == null ? "" : "-> " + link));
        }
      }
    }
    return out;
  }

  /**
   * From seed entries up through every tree that contains them, to the snapshots' roots. Parent
   * links are loaded level by level (one query per level for all trees at that level); the paths of
   * a tree are computed once and shared by everything in it and below it.
   *
   * @param wanted if not null, for each seed name the paths (from the root) to keep
   */
  private Map<Long, List<Match.Found>> upward(
      View v, List<Seed> seeds, Map<String, Set<String>> wanted) throws SQLException {
    Map<Long, List<long[]>> parents = new HashMap<>(); // tree -> {parent tree, name index}
    List<String> names = new ArrayList<>();
    Map<String, Integer> nameIds = new HashMap<>();
    Set<Long> frontier = new HashSet<>();
    for (Seed s : seeds) {
      frontier.add(s.tree());
    }
    try (Statement d = c.createStatement();
        PreparedStatement ins = c.prepareStatement("INSERT INTO temp.ids VALUES (?)");
        PreparedStatement up =
            c.prepareStatement(
                "SELECT child, tree, name FROM entries WHERE child IN (SELECT id FROM temp.ids)")) {
      while (!frontier.isEmpty()) {
        d.executeUpdate("DELETE FROM temp.ids");
        for (long t : frontier) {
          ins.setLong(1, t);
          ins.addBatch();
          parents.put(t, new ArrayList<>(1));
        }
        ins.executeBatch();
        Set<Long> next = new HashSet<>();
        try (ResultSet r = up.executeQuery()) {
          while (r.next()) {
            long child = r.getLong(1);
            long parent = r.getLong(2);
            String name = r.getString(3);
            Integer ni = nameIds.get(name);
            if (ni == null) {
              ni = names.size();
              names.add(name);
              nameIds.put(name, ni);
            }
            parents.get(child).add(new long[] {parent, ni});
            if (!parents.containsKey(parent)) {
              next.add(parent);
            }
          }
        }
        frontier = next;
      }
    }
    Map<Long, Map<String, List<Long>>> memo = new HashMap<>();
    // Found entries with the roots they are under, fanned out to snapshots in path order, so
    // each snapshot's list comes out sorted without sorting it.
    List<Map.Entry<Match.Found, List<Long>>> found = new ArrayList<>();
    for (Seed s : seeds) {
      Set<String> keep = wanted == null ? null : wanted.get(s.name());
      for (var e : prefixes(s.tree(), v, parents, names, memo).entrySet()) {
        String path = e.getKey().isEmpty() ? s.name() : e.getKey() + "/" + s.name();
        if (keep != null && !keep.contains(path)) {
          continue;
        }
        Match.Found f =
            new Match.Found(
                path,
                s.type(),
                s.size(),
                s.digest() == null ? null : Digest.fromBytes(s.digest(), 0),
                s.detail());
        found.add(Map.entry(f, e.getValue()));
      }
    }
    found.sort(Map.Entry.comparingByKey(FOUND_ORDER));
    Map<Long, List<Match.Found>> out = new HashMap<>();
    for (var e : found) {
      for (long root : e.getValue()) {
        for (long snap : v.byRoot.getOrDefault(root, List.of())) {
          out.computeIfAbsent(snap, k -> new ArrayList<>()).add(e.getKey());
        }
      }
    }
    return out;
  }

  /** The paths of {@code tree} from snapshot roots: path prefix -> root trees. */
  private static Map<String, List<Long>> prefixes(
      long tree,
      View v,
      Map<Long, List<long[]>> parents,
      List<String> names,
      Map<Long, Map<String, List<Long>>> memo) {
    Map<String, List<Long>> m = memo.get(tree);
    if (m != null) {
      return m;
    }
    m = new HashMap<>();
    if (v.byRoot.containsKey(tree)) {
      m.computeIfAbsent("", k -> new ArrayList<>()).add(tree);
    }
    for (long[] p : parents.getOrDefault(tree, List.of())) {
      String name = names.get((int) p[1]);
      for (var e : prefixes(p[0], v, parents, names, memo).entrySet()) {
        String pre = e.getKey().isEmpty() ? name : e.getKey() + "/" + name;
        m.computeIfAbsent(pre, k -> new ArrayList<>()).addAll(e.getValue());
      }
    }
    memo.put(tree, m);
    return m;
  }

  /** Exact paths: entries with the path's last name, kept where their path is the one asked. */
  private Map<Long, List<Match.Found>> findPaths(View v, List<String> paths) throws SQLException {
    Map<String, Set<String>> wanted = new HashMap<>();
    for (String p : paths) {
      List<String> parts = new ArrayList<>();
      for (byte[] b : Bytes.split(Bytes.unescape(p))) {
        parts.add(Bytes.escape(b));
      }
      if (parts.isEmpty()) {
        throw new IllegalArgumentException("give a path below the image root, not '" + p + "'");
      }
      wanted
          .computeIfAbsent(parts.get(parts.size() - 1), k -> new HashSet<>())
          .add(String.join("/", parts));
    }
    // Seeds: entries with the path's last name whose directory has the path's next-to-last
    // name (or that sit in a root tree), which leaves out most same-named files elsewhere.
    try (Statement d = c.createStatement()) {
      d.executeUpdate("DELETE FROM temp.pairs");
    }
    try (PreparedStatement i =
        c.prepareStatement("INSERT OR IGNORE INTO temp.pairs VALUES (?, ?)")) {
      for (var e : wanted.entrySet()) {
        for (String path : e.getValue()) {
          int slash = path.lastIndexOf('/');
          String dirPath = slash < 0 ? "" : path.substring(0, slash);
          i.setString(1, e.getKey());
          i.setString(2, dirPath.substring(dirPath.lastIndexOf('/') + 1));
          i.addBatch();
        }
      }
      i.executeBatch();
    }
    return upward(
        v,
        seeds(
            "SELECT DISTINCT tree, name, type, size, digest, link FROM ("
                + "SELECT e.tree, e.name, e.type, e.size, e.digest, e.link FROM temp.pairs k"
                + " CROSS JOIN entries e ON e.name = k.n" // CROSS JOIN: this order
                + " CROSS JOIN entries p ON p.child = e.tree AND p.name = k.parent"
                + " WHERE k.parent <> ''"
                + " UNION ALL"
                + " SELECT e.tree, e.name, e.type, e.size, e.digest, e.link FROM temp.pairs k"
                + " CROSS JOIN entries e ON e.name = k.n"
                + " WHERE k.parent = '' AND e.tree IN (SELECT root FROM snapshots))",
            List.of(),
            ""),
        wanted);
  }

  private Map<Long, List<Match.Found>> findPackage(View v, PackageSpec spec) throws SQLException {
    Map<Long, List<Match.Found>> out = new HashMap<>();
    try (PreparedStatement q =
        c.prepareStatement(
            "SELECT status, name, version, arch, source, source_version FROM packages"
                + " WHERE name = ?")) {
      q.setString(1, spec.name());
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) {
          PackageInfo p =
              new PackageInfo(
                  r.getString(2), r.getString(3), r.getString(4), r.getString(5), r.getString(6));
          if (spec.matches(p)) {
            Match.Found f =
                new Match.Found(
                    "var/lib/dpkg/status",
                    "package",
                    0,
                    null,
                    p.name() + " " + p.version() + " " + p.architecture());
            for (long snap :
                v.byStatus.getOrDefault(java.nio.ByteBuffer.wrap(r.getBytes(1)), List.of())) {
              out.computeIfAbsent(snap, k -> new ArrayList<>()).add(f);
            }
          }
        }
      }
    }
    return out;
  }

  private Map<Long, List<Match.Found>> findLabel(View v, String key, String valueGlob)
      throws SQLException {
    Map<Long, List<Match.Found>> out = new HashMap<>();
    try (PreparedStatement q =
        c.prepareStatement(
            "SELECT s.id, l.value FROM labels l JOIN snapshots s ON s.digest = l.snapshot"
                + " WHERE l.key = ? AND l.value GLOB ?")) {
      q.setString(1, key);
      q.setString(2, valueGlob);
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) {
          out.computeIfAbsent(r.getLong(1), k -> new ArrayList<>())
              .add(new Match.Found("", "label", 0, null, key + "=" + r.getString(2)));
        }
      }
    }
    return out;
  }

  private static final Comparator<Match.Found> FOUND_ORDER =
      Comparator.comparing(Match.Found::path).thenComparing(Match.Found::detail);

  private static boolean sorted(List<Match.Found> l) {
    for (int i = 1; i < l.size(); i++) {
      if (FOUND_ORDER.compare(l.get(i - 1), l.get(i)) > 0) {
        return false;
      }
    }
    return true;
  }

  private List<Match> matches(View v, Map<Long, List<Match.Found>> hits) {
    List<Match> out = new ArrayList<>(hits.size());
    for (var e : hits.entrySet()) {
      Object[] row = v.rows.get(e.getKey());
      List<Match.Found> found = e.getValue();
      if (!sorted(found)) {
        found.sort(FOUND_ORDER); // entries from several criteria
      }
      out.add(
          new Match(
              (Digest) row[0],
              (Instant) row[1],
              (String) row[2],
              v.refs.getOrDefault(e.getKey(), List.of()),
              java.util.Collections.unmodifiableList(found)));
    }
    out.sort(Comparator.comparing(Match::time).reversed().thenComparing(m -> m.snapshot().hex()));
    return out;
  }

  private Map<Long, List<String>> refsByRow() throws SQLException {
    return view().refs;
  }

  /** The packages of a snapshot's dpkg status, by name (indexing the snapshot if needed). */
  public synchronized List<PackageInfo> packages(Digest snapshot) {
    addWithAncestors(snapshot);
    List<PackageInfo> out = new ArrayList<>();
    try (PreparedStatement q =
        c.prepareStatement(
            "SELECT p.name, p.version, p.arch, p.source, p.source_version FROM snapshots s"
                + " JOIN packages p ON p.status = s.status WHERE s.digest = ?"
                + " ORDER BY p.name, p.arch")) {
      q.setBytes(1, snapshot.toBytes());
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) {
          out.add(
              new PackageInfo(
                  r.getString(1), r.getString(2), r.getString(3), r.getString(4), r.getString(5)));
        }
      }
    } catch (SQLException e) {
      throw fail(e);
    }
    return out;
  }

  /** True if the snapshot has a dpkg status (is a Debian-like image). */
  public synchronized boolean hasPackages(Digest snapshot) {
    addWithAncestors(snapshot);
    try (PreparedStatement q =
        c.prepareStatement("SELECT status IS NOT NULL FROM snapshots WHERE digest = ?")) {
      q.setBytes(1, snapshot.toBytes());
      try (ResultSet r = q.executeQuery()) {
        return r.next() && r.getBoolean(1);
      }
    } catch (SQLException e) {
      throw fail(e);
    }
  }

  /** Packages added, removed, upgraded and downgraded from {@code a} to {@code b}, by name. */
  public synchronized List<PackageChange> packageChanges(Digest a, Digest b) {
    Map<String, PackageInfo> pa = byKey(packages(a));
    Map<String, PackageInfo> pb = byKey(packages(b));
    TreeMap<String, PackageChange> out = new TreeMap<>();
    for (var e : pa.entrySet()) {
      PackageInfo after = pb.get(e.getKey());
      PackageInfo before = e.getValue();
      if (after == null) {
        out.put(
            e.getKey(), new PackageChange(PackageChange.Kind.REMOVED, before.name(), before, null));
      } else {
        int cmp = DebianVersion.compare(before.version(), after.version());
        if (cmp < 0) {
          out.put(
              e.getKey(),
              new PackageChange(PackageChange.Kind.UPGRADED, before.name(), before, after));
        } else if (cmp > 0) {
          out.put(
              e.getKey(),
              new PackageChange(PackageChange.Kind.DOWNGRADED, before.name(), before, after));
        }
      }
    }
    for (var e : pb.entrySet()) {
      if (!pa.containsKey(e.getKey())) {
        out.put(
            e.getKey(),
            new PackageChange(PackageChange.Kind.ADDED, e.getValue().name(), null, e.getValue()));
      }
    }
    return new ArrayList<>(out.values());
  }

  private static Map<String, PackageInfo> byKey(List<PackageInfo> ps) {
    Map<String, PackageInfo> m = new TreeMap<>();
    for (PackageInfo p : ps) {
      m.put(p.name() + ":" + p.architecture(), p);
    }
    return m;
  }

  // ---------------------------------------------------------------- provenance and derivations

  /**
   * How a snapshot came to be: its metadata (spec, builder, layer keys...), and its lineage —
   * parents (earlier versions) and bases (what it was derived from), transitively, up to {@code
   * maxDepth} steps.
   */
  public synchronized Provenance provenance(Digest snapshot, int maxDepth) {
    Snapshot s = repo.readSnapshot(snapshot);
    Map<Long, List<String>> refs;
    try {
      refs = refsByRow();
    } catch (SQLException e) {
      throw fail(e);
    }
    List<Related> lineage = new ArrayList<>();
    ArrayDeque<Object[]> todo = new ArrayDeque<>();
    Set<Digest> seen = new HashSet<>();
    seen.add(snapshot);
    enqueue(todo, s, 1);
    while (!todo.isEmpty()) {
      Object[] t = todo.poll();
      Digest id = (Digest) t[0];
      String kind = (String) t[1];
      int depth = (Integer) t[2];
      if (!seen.add(id)) {
        continue;
      }
      if (!repo.store().contains(id)) {
        lineage.add(new Related(id, kind, depth, false, null, "", List.of()));
        continue;
      }
      Snapshot p = repo.readSnapshot(id);
      Long row = snapshotRow(id);
      lineage.add(
          new Related(
              id,
              kind,
              depth,
              true,
              p.time(),
              p.message(),
              row == null ? List.of() : refs.getOrDefault(row, List.of())));
      if (depth < maxDepth) {
        enqueue(todo, p, depth + 1);
      }
    }
    Long row = snapshotRow(snapshot);
    return new Provenance(
        snapshot,
        s.time(),
        s.message(),
        row == null ? List.of() : refs.getOrDefault(row, List.of()),
        s.metadata(),
        lineage,
        labels(snapshot));
  }

  private static void enqueue(ArrayDeque<Object[]> todo, Snapshot s, int depth) {
    String base = s.metadata().get(DERIVED_FROM);
    if (base != null && Digest.isHex(base)) {
      todo.add(new Object[] {Digest.fromHex(base), "base", depth});
    }
    for (Digest p : s.parents()) {
      todo.add(new Object[] {p, "parent", depth});
    }
  }

  /**
   * Snapshots derived from {@code snapshot}: later versions of its refs ({@code parent}) and
   * overlays and installs made from it ({@code base}); with {@code recursive}, theirs too.
   */
  public synchronized List<Related> derived(Digest snapshot, boolean recursive) {
    List<Related> out = new ArrayList<>();
    try {
      Map<Long, List<String>> refs = refsByRow();
      ArrayDeque<Object[]> todo = new ArrayDeque<>();
      todo.add(new Object[] {snapshot, 1});
      Set<Digest> seen = new HashSet<>(List.of(snapshot));
      try (PreparedStatement q =
          c.prepareStatement(
              "SELECT s.id, s.digest, s.time_ms, s.message, d.kind FROM derivations d"
                  + " JOIN snapshots s ON s.id = d.snapshot WHERE d.source = ?"
                  + " ORDER BY s.time_ms, s.digest")) {
        while (!todo.isEmpty()) {
          Object[] t = todo.poll();
          int depth = (Integer) t[1];
          q.setBytes(1, ((Digest) t[0]).toBytes());
          List<Object[]> next = new ArrayList<>();
          try (ResultSet r = q.executeQuery()) {
            while (r.next()) {
              Digest d = Digest.fromBytes(r.getBytes(2), 0);
              if (!seen.add(d)) {
                continue;
              }
              out.add(
                  new Related(
                      d,
                      r.getString(5),
                      depth,
                      true,
                      Instant.ofEpochMilli(r.getLong(3)),
                      r.getString(4),
                      refs.getOrDefault(r.getLong(1), List.of())));
              next.add(new Object[] {d, depth + 1});
            }
          }
          if (recursive) {
            todo.addAll(next);
          }
        }
      }
    } catch (SQLException e) {
      throw fail(e);
    }
    return out;
  }

  // ---------------------------------------------------------------- plumbing

  private interface Work<T> {
    T run() throws SQLException, IOException;
  }

  private <T> T tx(Work<T> w) {
    try {
      c.setAutoCommit(false);
      try {
        T t = w.run();
        c.commit();
        localVersion++;
        return t;
      } catch (SQLException | IOException | RuntimeException e) {
        c.rollback();
        throw e;
      } finally {
        c.setAutoCommit(true);
      }
    } catch (SQLException e) {
      throw fail(e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private CatalogException fail(SQLException e) {
    return new CatalogException(
        "catalog "
            + file
            + ": "
            + e.getMessage()
            + " (it is derived data: 'osfarm catalog rebuild' recreates it)",
        e);
  }
}
