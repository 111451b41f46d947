package org.osfarm.transfer;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.Executors;
import java.util.function.UnaryOperator;

/**
 * A real HTTP peer in front of a real server that misbehaves: it forwards every request and lets a
 * test rewrite (or cut) the answers of one route. Stands for a corrupted, lying or vanishing peer.
 */
final class TamperingProxy implements AutoCloseable {
  private final HttpServer server;
  private final HttpClient client =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  volatile String route;
  volatile UnaryOperator<byte[]> rewrite = UnaryOperator.identity();

  /** Cut the answer of the route after this many bytes (closing the connection), or -1. */
  volatile long cutAfter = -1;

  /** Cut only the n-th answer (counting answers longer than {@link #cutAfter}), from 1. */
  volatile int cutOnHit = 1;

  private final java.util.concurrent.atomic.AtomicInteger hits =
      new java.util.concurrent.atomic.AtomicInteger();

  TamperingProxy(URI target) throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    server.createContext(
        "/",
        ex -> {
          try (ex) {
            byte[] body = ex.getRequestBody().readAllBytes();
            HttpRequest.Builder b =
                HttpRequest.newBuilder(URI.create(target + ex.getRequestURI().toString()));
            b.method(ex.getRequestMethod(), HttpRequest.BodyPublishers.ofByteArray(body));
            HttpResponse<byte[]> r;
            try {
              r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            } catch (InterruptedException e) {
              throw new IOException(e);
            }
            byte[] answer = r.body();
            boolean hit = route != null && ex.getRequestURI().getPath().endsWith(route);
            if (hit) {
              answer = rewrite.apply(answer);
            }
            if (hit
                && cutAfter >= 0
                && cutAfter < answer.length
                && hits.incrementAndGet() == cutOnHit) {
              // Announce the full length, send part of it, then drop the connection.
              ex.sendResponseHeaders(r.statusCode(), answer.length);
              OutputStream o = ex.getResponseBody();
              o.write(answer, 0, (int) cutAfter);
              o.flush();
              ex.getHttpContext().getServer(); // keep the exchange referenced
              throw new IOException("cut on purpose");
            }
            ex.sendResponseHeaders(r.statusCode(), answer.length == 0 ? -1 : answer.length);
            try (OutputStream o = ex.getResponseBody()) {
              o.write(answer);
            }
          }
        });
    server.start();
  }

  URI uri() {
    return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
  }

  /** Rewrites every object of a pack with {@code f}, keeping its claimed id: a lying peer. */
  static byte[] rewritePack(byte[] pack, UnaryOperator<byte[]> f) {
    try (ObjectPack.Reader r = new ObjectPack.Reader(new ByteArrayInputStream(pack))) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      try (ObjectPack.Writer w = new ObjectPack.Writer(out, 1)) {
        ObjectPack.Item it;
        while ((it = r.next()) != null) {
          w.write(it.type(), it.claimedId(), f.apply(it.data()));
        }
      }
      return out.toByteArray();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static InputStream nothing() {
    return InputStream.nullInputStream();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
