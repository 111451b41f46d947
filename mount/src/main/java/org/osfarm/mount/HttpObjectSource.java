package org.osfarm.mount;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.osfarm.core.CorruptObjectException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;

/**
 * A minimal remote {@link ObjectSource}: one {@code GET /v1/objects/HEX} per object, no batching. A
 * stand-in until the full remote source (package {@code org.osfarm.mount.remote}) is merged; {@link
 * ObjectSources#open} is the one place that picks it.
 */
final class HttpObjectSource implements ObjectSource {
  private final URI base;
  private final HttpClient http;
  private final AtomicLong fetched = new AtomicLong();

  HttpObjectSource(String url) {
    String u = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    if (!u.endsWith("/v1")) {
      u = u + "/v1";
    }
    this.base = URI.create(u + "/");
    this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  }

  @Override
  public Digest resolve(String refOrId) throws IOException {
    if (Digest.isHex(refOrId)) {
      return Digest.fromHex(refOrId);
    }
    String body =
        new String(get("refs/" + refOrId, "ref '" + refOrId + "'"), StandardCharsets.UTF_8);
    String hex = body.trim();
    if (!Digest.isHex(hex)) {
      throw new IOException(describe() + " answered a malformed id for ref '" + refOrId + "'");
    }
    return Digest.fromHex(hex);
  }

  @Override
  public byte[] read(Digest id) throws IOException {
    byte[] b = get("objects/" + id.hex(), "object " + id);
    fetched.addAndGet(b.length);
    if (!Digest.of(b).equals(id)) {
      throw new CorruptObjectException(describe() + " sent wrong bytes for object " + id);
    }
    return b;
  }

  private byte[] get(String path, String what) throws IOException {
    HttpRequest req =
        HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(60)).GET().build();
    HttpResponse<byte[]> r;
    try {
      r = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    if (r.statusCode() == 404) {
      throw new NotFoundException(describe() + " has no " + what);
    }
    if (r.statusCode() != 200) {
      throw new IOException(describe() + " answered " + r.statusCode() + " for " + what);
    }
    return r.body();
  }

  @Override
  public long bytesFetched() {
    return fetched.get();
  }

  @Override
  public String describe() {
    return base.toString();
  }

  @Override
  public void close() {
    http.close();
  }
}
