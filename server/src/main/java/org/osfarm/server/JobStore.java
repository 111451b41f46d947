package org.osfarm.server;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The jobs table. Every state change is written before it is acted on, so the table is the truth
 * after a restart. Thread-safe (under the database's monitor).
 */
final class JobStore {
  private static final String COLS =
      "id, checksum, name, spec, format, state, stages, error, snapshot, output, output_size,"
          + " output_digest, layers_built, layers_reused, requester, created, started, finished";
  private final ServerDatabase db;

  JobStore(ServerDatabase db) {
    this.db = db;
  }

  void insert(Job j) {
    update(
        "INSERT INTO jobs(id, checksum, name, spec, format, state, requester, created)"
            + " VALUES(?,?,?,?,?,?,?,?)",
        j.id(),
        j.checksum(),
        j.name(),
        j.spec(),
        j.format(),
        j.state().label(),
        j.requester(),
        j.created().toEpochMilli());
  }

  Optional<Job> get(String id) {
    List<Job> l = query("SELECT " + COLS + " FROM jobs WHERE id = ?", id);
    return l.isEmpty() ? Optional.empty() : Optional.of(l.getFirst());
  }

  /** The queued or running job with this checksum, if any. */
  Optional<Job> active(String checksum) {
    List<Job> l =
        query(
            "SELECT "
                + COLS
                + " FROM jobs WHERE checksum = ? AND state IN ('queued','running')"
                + " ORDER BY created LIMIT 1",
            checksum);
    return l.isEmpty() ? Optional.empty() : Optional.of(l.getFirst());
  }

  List<Job> recent(int max) {
    return query("SELECT " + COLS + " FROM jobs ORDER BY created DESC, rowid DESC LIMIT ?", max);
  }

  int count(Job.State state) {
    synchronized (db) {
      try (PreparedStatement p =
          db.connection().prepareStatement("SELECT count(*) FROM jobs WHERE state = ?")) {
        p.setString(1, state.label());
        try (ResultSet r = p.executeQuery()) {
          r.next();
          return r.getInt(1);
        }
      } catch (SQLException e) {
        throw new IllegalStateException("job database: " + e.getMessage(), e);
      }
    }
  }

  /** Takes the oldest queued job and marks it running, atomically; empty if none waits. */
  Optional<Job> claimNext() {
    synchronized (db) {
      List<Job> l =
          query(
              "SELECT "
                  + COLS
                  + " FROM jobs WHERE state = 'queued' ORDER BY created, rowid LIMIT 1");
      if (l.isEmpty()) {
        return Optional.empty();
      }
      Job j = l.getFirst();
      update(
          "UPDATE jobs SET state = 'running', started = ? WHERE id = ?",
          System.currentTimeMillis(),
          j.id());
      return get(j.id());
    }
  }

  void addStage(String id, String message) {
    String line = System.currentTimeMillis() + "\t" + message.replace('\n', ' ') + "\n";
    update("UPDATE jobs SET stages = stages || ? WHERE id = ?", line, id);
  }

  void finish(
      String id,
      String snapshot,
      String output,
      long size,
      String digest,
      int layersBuilt,
      int layersReused) {
    update(
        "UPDATE jobs SET state = 'done', snapshot = ?, output = ?, output_size = ?,"
            + " output_digest = ?, layers_built = ?, layers_reused = ?, finished = ? WHERE id = ?",
        snapshot,
        output,
        size,
        digest,
        layersBuilt,
        layersReused,
        System.currentTimeMillis(),
        id);
  }

  void fail(String id, String error) {
    update(
        "UPDATE jobs SET state = 'failed', error = ?, finished = ? WHERE id = ?",
        error,
        System.currentTimeMillis(),
        id);
  }

  /**
   * After a restart: a job that was running is failed with a clear message (its worker is gone and
   * a half-made build is never resumed from the middle); queued jobs stay queued and run.
   *
   * @return the ids of the jobs failed
   */
  List<String> recoverAfterRestart() {
    synchronized (db) {
      List<String> ids = new ArrayList<>();
      for (Job j : query("SELECT " + COLS + " FROM jobs WHERE state = 'running'")) {
        ids.add(j.id());
      }
      for (String id : ids) {
        addStage(id, "interrupted: the service stopped while this job ran");
        fail(
            id,
            "interrupted: the service stopped while this job was running; nothing of it was"
                + " published. Request the image again (finished layers are reused).");
      }
      return ids;
    }
  }

  private void update(String sql, Object... args) {
    synchronized (db) {
      try (PreparedStatement p = db.connection().prepareStatement(sql)) {
        bind(p, args);
        p.executeUpdate();
      } catch (SQLException e) {
        throw new IllegalStateException("job database: " + e.getMessage(), e);
      }
    }
  }

  private List<Job> query(String sql, Object... args) {
    synchronized (db) {
      Connection c = db.connection();
      try (PreparedStatement p = c.prepareStatement(sql)) {
        bind(p, args);
        try (ResultSet r = p.executeQuery()) {
          List<Job> out = new ArrayList<>();
          while (r.next()) {
            out.add(row(r));
          }
          return out;
        }
      } catch (SQLException e) {
        throw new IllegalStateException("job database: " + e.getMessage(), e);
      }
    }
  }

  private static void bind(PreparedStatement p, Object[] args) throws SQLException {
    for (int i = 0; i < args.length; i++) {
      p.setObject(i + 1, args[i]);
    }
  }

  private static Job row(ResultSet r) throws SQLException {
    List<Job.Stage> stages = new ArrayList<>();
    String s = r.getString("stages");
    if (s != null) {
      for (String line : s.split("\n")) {
        int tab = line.indexOf('\t');
        if (tab > 0) {
          stages.add(
              new Job.Stage(
                  Instant.ofEpochMilli(Long.parseLong(line.substring(0, tab))),
                  line.substring(tab + 1)));
        }
      }
    }
    return new Job(
        r.getString("id"),
        r.getString("checksum"),
        r.getString("name"),
        r.getString("spec"),
        r.getString("format"),
        Job.State.valueOf(r.getString("state").toUpperCase(java.util.Locale.ROOT)),
        stages,
        r.getString("error"),
        r.getString("snapshot"),
        r.getString("output"),
        r.getLong("output_size"),
        r.getString("output_digest"),
        r.getInt("layers_built"),
        r.getInt("layers_reused"),
        r.getString("requester"),
        Instant.ofEpochMilli(r.getLong("created")),
        instant(r, "started"),
        instant(r, "finished"));
  }

  private static Instant instant(ResultSet r, String col) throws SQLException {
    long v = r.getLong(col);
    return r.wasNull() ? null : Instant.ofEpochMilli(v);
  }
}
