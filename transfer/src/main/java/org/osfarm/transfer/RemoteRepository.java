package org.osfarm.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.RefUpdate;

/**
 * The client side of the object protocol (see {@link ObjectProtocol}): one remote repository at
 * {@code base}/v1. Counts the body bytes it sends and receives. Thread-safe.
 */
final class RemoteRepository {
  private final URI base;
  private final HttpClient http;
  private final AtomicLong wire = new AtomicLong();
  private final String token;

  RemoteRepository(URI base) {
    this(base, null);
  }

  /** A remote whose requests carry {@code Authorization: Bearer token} (null: none). */
  RemoteRepository(URI base, String token) {
    if (token != null && (token.isBlank() || !token.matches("[\\x21-\\x7e]+"))) {
      throw new IllegalArgumentException(
          "the token must be one word of printable ASCII (as 'osfarm token create' prints it)");
    }
    this.token = token;
    String s = base.toString();
    while (s.endsWith("/")) {
      s = s.substring(0, s.length() - 1);
    }
    if (!s.startsWith("http://") && !s.startsWith("https://")) {
      throw new IllegalArgumentException("remote must be an http:// or https:// URL: " + base);
    }
    this.base = URI.create(s);
    this.http = newClient();
  }

  static HttpClient newClient() {
    return HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(15))
        .build();
  }

  URI base() {
    return base;
  }

  long wireBytes() {
    return wire.get();
  }

  private URI uri(String path) {
    return URI.create(base + "/v1" + path);
  }

  static String encodeRef(String name) {
    StringBuilder sb = new StringBuilder();
    for (String part : name.split("/", -1)) {
      if (!sb.isEmpty()) {
        sb.append('/');
      }
      sb.append(URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20"));
    }
    return sb.toString();
  }

  /** The snapshot id {@code name} names on the remote, if it exists. */
  Optional<Digest> ref(String name) {
    HttpResponse<InputStream> r = send(HttpRequest.newBuilder(uri("/refs/" + encodeRef(name))));
    if (r.statusCode() == 404) {
      drain(r);
      return Optional.empty();
    }
    String s = new String(body(r), StandardCharsets.US_ASCII).trim();
    if (!Digest.isHex(s)) {
      throw new PeerDataException("remote answered ref '" + name + "' with '" + s + "'");
    }
    return Optional.of(Digest.fromHex(s));
  }

  /** The ids among {@code ids} the remote lacks, in batches. */
  List<Digest> missing(Collection<Digest> ids) {
    List<Digest> out = new ArrayList<>();
    List<Digest> all = new ArrayList<>(ids);
    for (int i = 0; i < all.size(); i += ObjectProtocol.MAX_BATCH) {
      List<Digest> batch = all.subList(i, Math.min(all.size(), i + ObjectProtocol.MAX_BATCH));
      HttpResponse<InputStream> r =
          send(
              HttpRequest.newBuilder(uri("/objects/missing"))
                  .POST(HttpRequest.BodyPublishers.ofByteArray(idBytes(batch))));
      byte[] b = body(r);
      if (b.length % Digest.LENGTH != 0 || b.length > batch.size() * Digest.LENGTH) {
        throw new PeerDataException("remote sent a malformed missing-object list");
      }
      for (int o = 0; o < b.length; o += Digest.LENGTH) {
        out.add(Digest.fromBytes(b, o));
      }
    }
    return out;
  }

  private byte[] idBytes(List<Digest> ids) {
    byte[] b = new byte[ids.size() * Digest.LENGTH];
    for (int i = 0; i < ids.size(); i++) {
      ids.get(i).copyTo(b, i * Digest.LENGTH);
    }
    wire.addAndGet(b.length);
    return b;
  }

  /** Opens a pack of {@code ids} (at most {@link ObjectProtocol#MAX_BATCH}); caller closes it. */
  InputStream pack(List<Digest> ids) {
    HttpResponse<InputStream> r =
        send(
            HttpRequest.newBuilder(uri("/objects/pack"))
                .POST(HttpRequest.BodyPublishers.ofByteArray(idBytes(ids))));
    check(r);
    return r.body();
  }

  /** A pack body being produced while it is sent. */
  interface PackProducer {
    void write(ObjectPack.Writer w) throws IOException;
  }

  /** Streams a pack to the remote; returns its answer. */
  String receivePack(PackProducer producer) {
    BoundedPipe pipe = new BoundedPipe(64);
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Thread t =
        Thread.ofVirtual()
            .start(
                () -> {
                  try (ObjectPack.Writer w =
                      new ObjectPack.Writer(new CountingOut(pipe.out, wire), 1)) {
                    producer.write(w);
                  } catch (Throwable e) {
                    failed.set(e);
                    pipe.fail(new IOException("the pack could not be produced: " + e));
                  }
                });
    HttpResponse<InputStream> r;
    try {
      r =
          send(
              HttpRequest.newBuilder(uri("/objects"))
                  .header("Content-Type", "application/x-osfarm-pack")
                  .POST(HttpRequest.BodyPublishers.ofInputStream(() -> pipe.in)));
    } finally {
      try {
        pipe.in.close();
      } catch (IOException ignored) {
        // an in-memory pipe
      }
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    check(r); // the server's reason first: it may have stopped reading because it refused
    if (failed.get() != null) {
      Throwable e = failed.get();
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new TransferException("push failed: " + e.getMessage(), e);
    }
    return new String(body(r), StandardCharsets.UTF_8).trim();
  }

  RefUpdate updateRef(String name, Digest old, Digest neu) {
    String b = (old == null ? "-" : old.hex()) + " " + (neu == null ? "-" : neu.hex()) + "\n";
    HttpResponse<InputStream> r =
        send(
            HttpRequest.newBuilder(uri("/refs/" + encodeRef(name)))
                .POST(HttpRequest.BodyPublishers.ofString(b)));
    if (r.statusCode() == 409) {
      drain(r);
      return RefUpdate.REJECTED_CHANGED;
    }
    String s = new String(body(r), StandardCharsets.US_ASCII).trim();
    try {
      return RefUpdate.valueOf(s);
    } catch (IllegalArgumentException e) {
      throw new PeerDataException("remote answered a ref update with '" + s + "'");
    }
  }

  HttpResponse<InputStream> send(HttpRequest.Builder b) {
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    HttpRequest req = b.timeout(Duration.ofMinutes(30)).build();
    try {
      HttpResponse<InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
      return new CountedResponse(r, new CountingInputStream(r.body(), wire));
    } catch (ConnectException e) {
      throw new TransferException("cannot connect to " + base + " (is 'osfarm serve' running?)", e);
    } catch (IOException e) {
      throw new TransferException(req.method() + " " + req.uri() + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new TransferException("interrupted", e);
    }
  }

  /** Throws a clear error for a non-2xx answer. */
  static void check(HttpResponse<InputStream> r) {
    int s = r.statusCode();
    if (s >= 200 && s < 300) {
      return;
    }
    String msg;
    try (InputStream in = r.body()) {
      msg = new String(in.readNBytes(4096), StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      msg = "";
    }
    String where = r.request().method() + " " + r.request().uri();
    if (s == 401) {
      throw new TransferException(
          "remote refused "
              + where
              + " (401): "
              + (r.request().headers().firstValue("Authorization").isPresent()
                  ? "the token is not valid there"
                  : "it needs a token: set OSFARM_TOKEN or use --token-file")
              + (msg.isEmpty() ? "" : " (" + msg + ")"));
    }
    if (s == 404) {
      throw new NotFoundException(
          "remote: " + (msg.isEmpty() ? "not found" : msg) + " (" + where + ")");
    }
    throw new TransferException("remote answered " + s + " to " + where + ": " + msg);
  }

  static byte[] body(HttpResponse<InputStream> r) {
    check(r);
    try (InputStream in = r.body()) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new TransferException("reading the answer of " + r.request().uri() + " failed", e);
    }
  }

  private static void drain(HttpResponse<InputStream> r) {
    try (InputStream in = r.body()) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
    } catch (IOException ignored) {
      // nothing to keep
    }
  }

  /** Counts bytes written. */
  static final class CountingOut extends java.io.FilterOutputStream {
    private final AtomicLong n;

    CountingOut(java.io.OutputStream out, AtomicLong n) {
      super(out);
      this.n = n;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      n.addAndGet(len);
    }

    @Override
    public void write(int b) throws IOException {
      out.write(b);
      n.incrementAndGet();
    }
  }

  /** A response whose body is counted. */
  private record CountedResponse(HttpResponse<InputStream> r, InputStream counted)
      implements HttpResponse<InputStream> {
    @Override
    public int statusCode() {
      return r.statusCode();
    }

    @Override
    public HttpRequest request() {
      return r.request();
    }

    @Override
    public Optional<HttpResponse<InputStream>> previousResponse() {
      return r.previousResponse();
    }

    @Override
    public java.net.http.HttpHeaders headers() {
      return r.headers();
    }

    @Override
    public InputStream body() {
      return counted;
    }

    @Override
    public Optional<javax.net.ssl.SSLSession> sslSession() {
      return r.sslSession();
    }

    @Override
    public URI uri() {
      return r.uri();
    }

    @Override
    public HttpClient.Version version() {
      return r.version();
    }
  }
}
