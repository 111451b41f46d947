package org.osfarm.server;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.GZIPInputStream;

/**
 * Live package search over an apt repository's package index ({@code
 * dists/SUITE/COMPONENT/binary-ARCH/Packages.gz}, fetched once per TTL and kept in {@code
 * DATA/indices}; {@code file:} mirrors are read in place). An index is parsed into a sorted array
 * held in memory (about 64k packages, a few MB for Debian main); a search ranks exact name, then
 * name prefix, then name substring, then description matches.
 */
final class PackageIndex {
  /** One package of an index. */
  record Package(String name, String version, String section, String description) {}

  private record Loaded(List<Package> packages, Instant at) {}

  private final Path cacheDir;
  private final Duration ttl;
  private final HttpClient http =
      HttpClient.newBuilder()
          .followRedirects(HttpClient.Redirect.NORMAL)
          .connectTimeout(Duration.ofSeconds(20))
          .build();
  private final ConcurrentHashMap<String, Loaded> loaded = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();

  PackageIndex(Path cacheDir, Duration ttl) {
    this.cacheDir = cacheDir;
    this.ttl = ttl;
  }

  /** Searches the index of {@code mirror suite component arch}; at most {@code max} results. */
  List<Package> search(
      String mirror, String suite, String component, String arch, String query, int max)
      throws IOException {
    String q = query == null ? "" : query.trim().toLowerCase(Locale.ROOT);
    if (q.isEmpty()) {
      return List.of();
    }
    List<Package> all = packages(mirror, suite, component, arch);
    List<Package> exact = new ArrayList<>();
    List<Package> prefix = new ArrayList<>();
    List<Package> inside = new ArrayList<>();
    List<Package> described = new ArrayList<>();
    for (Package p : all) {
      if (p.name().equals(q)) {
        exact.add(p);
      } else if (p.name().startsWith(q)) {
        prefix.add(p);
      } else if (p.name().contains(q)) {
        inside.add(p);
      } else if (described.size() < max && p.description().toLowerCase(Locale.ROOT).contains(q)) {
        described.add(p);
      }
    }
    List<Package> out = new ArrayList<>(exact);
    for (List<Package> l : List.of(prefix, inside, described)) {
      for (Package p : l) {
        if (out.size() >= max) {
          return out;
        }
        out.add(p);
      }
    }
    return out;
  }

  List<Package> packages(String mirror, String suite, String component, String arch)
      throws IOException {
    for (String part : List.of(suite, component, arch)) {
      if (part == null || !part.matches("[A-Za-z0-9._-]{1,64}")) {
        throw Problem.badRequest("bad suite, component or architecture '" + part + "'");
      }
    }
    String m = mirror.endsWith("/") ? mirror : mirror + "/";
    URI uri =
        URI.create(m + "dists/" + suite + "/" + component + "/binary-" + arch + "/Packages.gz");
    String key = JobQueue.sha256(uri.toString());
    Loaded l = loaded.get(key);
    if (l != null && l.at().plus(ttl).isAfter(Instant.now())) {
      return l.packages();
    }
    synchronized (locks.computeIfAbsent(key, k -> new Object())) {
      l = loaded.get(key);
      if (l != null && l.at().plus(ttl).isAfter(Instant.now())) {
        return l.packages();
      }
      Path file = fetch(uri, key);
      List<Package> parsed;
      try (InputStream in = new GZIPInputStream(Files.newInputStream(file), 1 << 16)) {
        parsed = parse(in);
      }
      parsed.sort(java.util.Comparator.comparing(Package::name));
      List<Package> frozen = List.copyOf(parsed);
      loaded.put(key, new Loaded(frozen, Instant.now()));
      return frozen;
    }
  }

  private Path fetch(URI uri, String key) throws IOException {
    if ("file".equals(uri.getScheme())) {
      Path p = Path.of(uri);
      if (!Files.exists(p)) {
        throw Problem.notFound("no package index at " + uri);
      }
      return p;
    }
    Path file = cacheDir.resolve(key + ".gz");
    if (Files.exists(file)
        && Files.getLastModifiedTime(file).toInstant().plus(ttl).isAfter(Instant.now())) {
      return file;
    }
    Files.createDirectories(cacheDir);
    Path tmp = Files.createTempFile(cacheDir, "index-", ".part");
    try {
      HttpResponse<Path> r =
          http.send(
              HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(2)).build(),
              HttpResponse.BodyHandlers.ofFile(tmp));
      if (r.statusCode() != 200) {
        throw new Problem(
            502,
            "mirror-error",
            "Mirror error",
            "the mirror answered " + r.statusCode() + " for " + uri);
      }
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      return file;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while fetching " + uri, e);
    } catch (java.net.ConnectException e) {
      throw new Problem(
          502, "mirror-error", "Mirror unreachable", "cannot reach " + uri + ": " + e);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Parses deb822 stanzas (Package, Version, Section, Description's first line). */
  static List<Package> parse(InputStream in) throws IOException {
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    List<Package> out = new ArrayList<>();
    String name = null;
    String version = "";
    String section = "";
    String desc = "";
    String line;
    while (true) {
      line = r.readLine();
      if (line == null || line.isEmpty()) {
        if (name != null) {
          out.add(new Package(name, version, section, desc));
        }
        name = null;
        version = "";
        section = "";
        desc = "";
        if (line == null) {
          return out;
        }
        continue;
      }
      if (line.startsWith("Package:")) {
        name = line.substring(8).trim();
      } else if (line.startsWith("Version:")) {
        version = line.substring(8).trim();
      } else if (line.startsWith("Section:")) {
        section = line.substring(8).trim();
      } else if (line.startsWith("Description:")) {
        desc = line.substring(12).trim();
      }
    }
  }
}
