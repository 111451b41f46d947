package org.osfarm.build;

import java.io.IOException;
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
import org.osfarm.core.Digest;

/**
 * The state of an archive: the SHA-256 of its suite's InRelease (or Release) file. The Release file
 * lists the digests of every package index, so equal Release hashes mean equal indices and so equal
 * package resolution: it pins "the resolved package versions" of a layer key without resolving
 * them. A fetched state is remembered for the class's TTL ({@code mirror/} in the cache directory),
 * which bounds how long layers built from a moving suite are trusted.
 */
final class MirrorState {
  private final Path dir;
  private HttpClient http; // made on the first fetch: its TLS set-up costs ~0.3 s of start-up

  MirrorState(Path cacheDir) {
    this.dir = memoDir(cacheDir);
  }

  private synchronized HttpClient http() {
    if (http == null) {
      http =
          HttpClient.newBuilder()
              .connectTimeout(Duration.ofSeconds(10))
              .followRedirects(HttpClient.Redirect.NORMAL)
              .build();
    }
    return http;
  }

  /** The Release-file digest of {@code mirror}'s {@code suite}, fetched at most once per TTL. */
  String release(String mirror, String suite, Duration ttl, boolean refresh) {
    String base = mirror.endsWith("/") ? mirror : mirror + "/";
    Path memo = memo(dir, mirror, suite);
    try {
      if (!refresh && Files.exists(memo)) {
        String[] f = Files.readString(memo).strip().split(" ");
        if (f.length == 2
            && Instant.ofEpochMilli(Long.parseLong(f[0])).plus(ttl).isAfter(Instant.now())) {
          return f[1];
        }
      }
      byte[] body = fetch(base + "dists/" + suite + "/InRelease");
      if (body == null) {
        body = fetch(base + "dists/" + suite + "/Release");
      }
      if (body == null) {
        throw new SpecException(
            "suite '"
                + suite
                + "' not found on mirror "
                + mirror
                + " (no dists/"
                + suite
                + "/InRelease)");
      }
      String hex = Digest.of(body).hex();
      Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, ".memo", ".tmp");
      Files.writeString(tmp, System.currentTimeMillis() + " " + hex + "\n");
      Files.move(tmp, memo, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      return hex;
    } catch (IOException | NumberFormatException e) {
      throw new BuildException("mirror " + mirror + " unreachable: " + describe(e), e);
    }
  }

  /** The file remembering the state of {@code mirror}'s {@code suite}: "epoch-millis hex". */
  static Path memo(Path memoDir, String mirror, String suite) {
    String base = mirror.endsWith("/") ? mirror : mirror + "/";
    return memoDir.resolve(Digest.of((base + " " + suite).getBytes(StandardCharsets.UTF_8)).hex());
  }

  /** The memo directory of a cache directory. */
  static Path memoDir(Path cacheDir) {
    return cacheDir.resolve("mirror");
  }

  private static String describe(Exception e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }

  private byte[] fetch(String url) throws IOException {
    HttpRequest req =
        HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build();
    try {
      HttpResponse<byte[]> r = http().send(req, HttpResponse.BodyHandlers.ofByteArray());
      if (r.statusCode() == 404) {
        return null;
      }
      if (r.statusCode() != 200) {
        throw new IOException("HTTP " + r.statusCode() + " for " + url);
      }
      return r.body();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }
}
