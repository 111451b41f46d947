package org.osfarm.server;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.osfarm.build.ImageBuilder;

/**
 * Everything the service needs to start. Each setting has an environment variable (read by {@link
 * #fromEnvironment}); command-line options override them.
 *
 * @param listen address to bind ({@code OSFARM_LISTEN}, {@code HOST:PORT}, default {@code
 *     127.0.0.1:8080}; port 0 picks a free port)
 * @param repository the repository directory ({@code OSFARM_REPO}; the CLI's default otherwise)
 * @param database the service's SQLite file with jobs and tokens ({@code OSFARM_SERVER_DB}, default
 *     {@code REPO/server.db})
 * @param dataDir job outputs, logs and cached exports ({@code OSFARM_SERVER_DATA}, default {@code
 *     REPO/server})
 * @param buildCache the builder's cache ({@code OSFARM_CACHE}, see {@link
 *     ImageBuilder#defaultCacheDir})
 * @param openRead reading and downloading without a token ({@code OSFARM_OPEN_READ}, default true);
 *     requests that change anything always need one unless {@code requireTokens} is false
 * @param requireTokens mutations need a token ({@code OSFARM_REQUIRE_TOKENS}, default true; false
 *     only for a single-user machine)
 * @param workers concurrent builds ({@code OSFARM_WORKERS}, default 2)
 * @param maxQueued jobs waiting at most; more are refused with 503 ({@code OSFARM_MAX_QUEUED},
 *     default 100)
 * @param uploadLimit largest accepted request body in bytes ({@code OSFARM_UPLOAD_LIMIT}, default 1
 *     MiB)
 * @param syncTimeout how long a synchronous request waits for its build ({@code
 *     OSFARM_SYNC_TIMEOUT}, ISO-8601 like {@code PT30M}, default 30 minutes)
 * @param exportsMax bytes of snapshot exports kept in {@code DATA/exports} ({@code
 *     OSFARM_EXPORTS_MAX}, default 20G); the least recently served go first
 */
public record Settings(
    InetSocketAddress listen,
    Path repository,
    Path database,
    Path dataDir,
    Path buildCache,
    boolean openRead,
    boolean requireTokens,
    int workers,
    int maxQueued,
    long uploadLimit,
    Duration syncTimeout,
    long exportsMax) {

  public Settings {
    if (workers < 1) {
      throw new IllegalArgumentException("workers must be at least 1, not " + workers);
    }
    if (maxQueued < 1) {
      throw new IllegalArgumentException("max queued jobs must be at least 1, not " + maxQueued);
    }
    if (uploadLimit < 1024) {
      throw new IllegalArgumentException("upload limit must be at least 1024 bytes");
    }
    if (exportsMax < 0) {
      throw new IllegalArgumentException("exports limit must not be negative");
    }
  }

  /** Defaults for a repository directory, overridden by the environment variables above. */
  public static Settings fromEnvironment(Path repository, Map<String, String> env) {
    Path repo = repository;
    if (repo == null) {
      String r = env.get("OSFARM_REPO");
      repo =
          r != null && !r.isBlank()
              ? Path.of(r)
              : Path.of(System.getProperty("user.home"), ".local", "share", "osfarm", "repo");
    }
    return new Settings(
        parseListen(env.getOrDefault("OSFARM_LISTEN", "127.0.0.1:8080")),
        repo,
        path(env, "OSFARM_SERVER_DB", repo.resolve("server.db")),
        path(env, "OSFARM_SERVER_DATA", repo.resolve("server")),
        ImageBuilder.defaultCacheDir(env),
        bool(env, "OSFARM_OPEN_READ", true),
        bool(env, "OSFARM_REQUIRE_TOKENS", true),
        Integer.parseInt(env.getOrDefault("OSFARM_WORKERS", "2")),
        Integer.parseInt(env.getOrDefault("OSFARM_MAX_QUEUED", "100")),
        parseSize(env.getOrDefault("OSFARM_UPLOAD_LIMIT", "1M")),
        Duration.parse(env.getOrDefault("OSFARM_SYNC_TIMEOUT", "PT30M")),
        parseSize(env.getOrDefault("OSFARM_EXPORTS_MAX", "20G")));
  }

  public Settings withListen(InetSocketAddress a) {
    return new Settings(
        a,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withOpenRead(boolean open) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        open,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withWorkers(int n) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        n,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withUploadLimit(long bytes) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        bytes,
        syncTimeout,
        exportsMax);
  }

  public Settings withBuildCache(Path dir) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        dir,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withRequireTokens(boolean require) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        require,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withDatabase(Path file) {
    return new Settings(
        listen,
        repository,
        file,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withDataDir(Path dir) {
    return new Settings(
        listen,
        repository,
        database,
        dir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withMaxQueued(int n) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        n,
        uploadLimit,
        syncTimeout,
        exportsMax);
  }

  public Settings withSyncTimeout(Duration d) {
    return new Settings(
        listen,
        repository,
        database,
        dataDir,
        buildCache,
        openRead,
        requireTokens,
        workers,
        maxQueued,
        uploadLimit,
        d,
        exportsMax);
  }

  /** Parses {@code HOST:PORT} (IPv6 hosts in brackets). */
  public static InetSocketAddress parseListen(String s) {
    int colon = s.lastIndexOf(':');
    if (colon < 0) {
      throw new IllegalArgumentException("listen address wants HOST:PORT, not '" + s + "'");
    }
    String host = s.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(s.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad port in listen address '" + s + "'");
    }
    return new InetSocketAddress(host.isEmpty() ? "0.0.0.0" : host, port);
  }

  /** Parses a size like {@code 1048576}, {@code 512K}, {@code 1M}, {@code 2G}. */
  public static long parseSize(String s) {
    String t = s.trim().toUpperCase(java.util.Locale.ROOT);
    long mult = 1;
    if (t.endsWith("K") || t.endsWith("M") || t.endsWith("G")) {
      mult =
          switch (t.charAt(t.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            default -> 1L << 30;
          };
      t = t.substring(0, t.length() - 1);
    }
    try {
      return Long.parseLong(t) * mult;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad size '" + s + "': use bytes or 512K, 1M, 2G");
    }
  }

  private static Path path(Map<String, String> env, String key, Path dflt) {
    String v = env.get(key);
    return v == null || v.isBlank() ? dflt : Path.of(v);
  }

  private static boolean bool(Map<String, String> env, String key, boolean dflt) {
    String v = env.get(key);
    if (v == null || v.isBlank()) {
      return dflt;
    }
    return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
      case "1", "true", "yes", "on" -> true;
      case "0", "false", "no", "off" -> false;
      default -> throw new IllegalArgumentException(key + " wants true or false, not '" + v + "'");
    };
  }
}
