package org.osfarm.transfer;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.osfarm.core.NotFoundException;

/**
 * Serves the object protocol (under {@code /v1}) and the image protocol (under {@code /v1/images})
 * with the JDK's built-in HTTP server, one virtual thread per request. A minimal adapter: the
 * handlers themselves know nothing of the server, so a web framework can mount them instead.
 */
public final class TransferServer implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();

  /**
   * Starts serving on {@code address} (port 0 picks a free port).
   *
   * @param objects the object protocol, or null to serve none
   * @param images the image protocol, or null to serve none
   */
  public TransferServer(InetSocketAddress address, ProtocolHandler objects, ProtocolHandler images)
      throws IOException {
    server = HttpServer.create(address, 128);
    server.setExecutor(executor);
    server.createContext("/v1/", ex -> dispatch(ex, objects, images));
    server.createContext("/", ex -> respond(ex, ProtocolResponse.text(404, "osfarm: try /v1/\n")));
    server.start();
  }

  /** The address actually bound (with the chosen port). */
  public InetSocketAddress address() {
    return server.getAddress();
  }

  private static void dispatch(HttpExchange ex, ProtocolHandler objects, ProtocolHandler images)
      throws IOException {
    String raw = ex.getRequestURI().getRawPath().substring("/v1".length());
    ProtocolHandler h = objects;
    if (raw.equals("/images") || raw.startsWith("/images/")) {
      h = images;
      raw = raw.substring("/images".length());
      if (raw.isEmpty()) {
        raw = "/";
      }
    }
    String path = URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8);
    ProtocolResponse resp;
    try (InputStream body = ex.getRequestBody()) {
      try {
        if (h == null) {
          resp =
              ProtocolResponse.text(404, "this server does not serve " + ex.getRequestURI() + "\n");
        } else {
          resp = h.handle(new ProtocolRequest(ex.getRequestMethod(), path, query(ex), body));
        }
      } catch (NotFoundException e) {
        resp = ProtocolResponse.text(404, e.getMessage() + "\n");
      } catch (TransferException | IllegalArgumentException e) {
        resp = ProtocolResponse.text(400, e.getMessage() + "\n");
      } catch (RuntimeException | IOException e) {
        resp = ProtocolResponse.text(500, "internal error: " + e + "\n");
      }
      if (resp.status() >= 400) {
        drainQuietly(body);
      }
    }
    respond(ex, resp);
  }

  /**
   * Reads and drops what is left of a refused request's body (at most {@value #DRAIN_LIMIT} bytes).
   * The JDK server closes a connection whose request body is left unread past 64 KiB, and a client
   * still sending (a refused push streams its pack) then gets a reset instead of the answer that
   * says why.
   */
  private static void drainQuietly(InputStream body) {
    try {
      byte[] b = new byte[64 << 10];
      long n = 0;
      for (int r; n < DRAIN_LIMIT && (r = body.read(b)) >= 0; ) {
        n += r;
      }
    } catch (IOException e) {
      // the client went away: nothing to answer
    }
  }

  private static final long DRAIN_LIMIT = 256L << 20;

  private static Map<String, String> query(HttpExchange ex) {
    Map<String, String> q = new HashMap<>();
    String raw = ex.getRequestURI().getRawQuery();
    if (raw != null) {
      for (String kv : raw.split("&")) {
        int i = kv.indexOf('=');
        String k = URLDecoder.decode(i < 0 ? kv : kv.substring(0, i), StandardCharsets.UTF_8);
        String v = i < 0 ? "" : URLDecoder.decode(kv.substring(i + 1), StandardCharsets.UTF_8);
        q.putIfAbsent(k, v);
      }
    }
    return q;
  }

  private static void respond(HttpExchange ex, ProtocolResponse r) throws IOException {
    try (ex) {
      ex.getResponseHeaders().set("Content-Type", r.contentType());
      r.headers().forEach((k, v) -> ex.getResponseHeaders().set(k, v));
      boolean head = ex.getRequestMethod().equals("HEAD");
      if (head) {
        ex.getResponseHeaders().set("Content-Length", Long.toString(Math.max(0, r.length())));
        ex.sendResponseHeaders(r.status(), -1);
        return;
      }
      ex.sendResponseHeaders(r.status(), r.length() < 0 ? 0 : (r.length() == 0 ? -1 : r.length()));
      if (r.length() != 0) {
        try (OutputStream out = ex.getResponseBody()) {
          r.body().writeTo(out);
        } catch (IOException | RuntimeException e) {
          // Headers are gone: the client sees a broken stream and rejects it (packs have trailers,
          // block streams a known length and hashes).
        }
      }
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.close();
  }
}
