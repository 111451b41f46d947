package org.osfarm.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The service's SQLite database: jobs and tokens. One connection, used under this object's lock
 * (SQLite serializes writers anyway); WAL mode and a busy timeout let {@code osfarm token create}
 * write while the service runs.
 */
final class ServerDatabase implements AutoCloseable {
  private final Connection c;

  private ServerDatabase(Connection c) {
    this.c = c;
  }

  static ServerDatabase open(Path file) {
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
      try (Statement s = c.createStatement()) {
        s.execute("PRAGMA journal_mode=WAL");
        s.execute("PRAGMA busy_timeout=10000");
        s.execute("PRAGMA synchronous=NORMAL");
        s.execute(
            """
            CREATE TABLE IF NOT EXISTS jobs (
              id TEXT PRIMARY KEY,
              checksum TEXT NOT NULL,
              name TEXT NOT NULL,
              spec TEXT NOT NULL,
              format TEXT NOT NULL,
              state TEXT NOT NULL,
              stages TEXT NOT NULL DEFAULT '',
              error TEXT,
              snapshot TEXT,
              output TEXT,
              output_size INTEGER,
              output_digest TEXT,
              layers_built INTEGER,
              layers_reused INTEGER,
              requester TEXT,
              created INTEGER NOT NULL,
              started INTEGER,
              finished INTEGER)""");
        s.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created)");
        s.execute("CREATE INDEX IF NOT EXISTS jobs_checksum ON jobs(checksum, state)");
        s.execute(
            """
            CREATE TABLE IF NOT EXISTS tokens (
              name TEXT PRIMARY KEY,
              hash TEXT NOT NULL UNIQUE,
              created INTEGER NOT NULL)""");
      }
      return new ServerDatabase(c);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot open the service database " + file + ": " + e, e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The connection; callers hold this object's monitor while they use it. */
  Connection connection() {
    return c;
  }

  @Override
  public synchronized void close() {
    try {
      c.close();
    } catch (SQLException e) {
      // closing: nothing to do
    }
  }
}
